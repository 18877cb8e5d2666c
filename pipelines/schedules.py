"""The daily run of the whole graph (catches anything the sensors did not trigger).

Runs ``labwh_all`` at 02:00 (``LABWH_SCHEDULE_TZ``, default UTC) with the default feature
parameters of config/features.yaml; stopped by default like the sensors (``LABWH_AUTOMATION=1``
starts it RUNNING).
"""

from __future__ import annotations

import os

import dagster as dg

from pipelines.ops import all_job, automation_on

DAILY_CRON = "0 2 * * *"

FEATURE_RUN_CONFIG_EXAMPLE = {
    "ops": {
        "feature_marts": {
            "config": {
                "thresholds_pg_ml": [10.0, 20.0, 30.0],
                "max_gap_days": 180,
                "censored_fraction": 0.5,
                "min_span_years": 1.0,
                "full_rebuild": False,
            }
        }
    }
}
"""Run configuration of the feature parameters (docs/operations.md); omitted keys default."""


daily_schedule = dg.ScheduleDefinition(
    name="labwh_daily",
    cron_schedule=DAILY_CRON,
    job=all_job,
    execution_timezone=os.environ.get("LABWH_SCHEDULE_TZ", "UTC"),
    default_status=(
        dg.DefaultScheduleStatus.RUNNING if automation_on() else dg.DefaultScheduleStatus.STOPPED
    ),
    description="Every asset once a day at 02:00: land, stage, core, marts, publish.",
)
