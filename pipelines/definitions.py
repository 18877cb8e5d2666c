"""The whole Dagster graph, loaded from one place (``dagster dev -m pipelines.definitions``)."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import all_assets
from pipelines.checks import build_asset_checks
from pipelines.loggers import LOGGERS
from pipelines.ops import all_job, feed_jobs, reprocess_job
from pipelines.resources import WarehouseResource
from pipelines.schedules import daily_schedule
from pipelines.sensors import landing_sensors, run_failed_sensor, run_succeeded_sensor

everything = all_job

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=build_asset_checks(),
    jobs=[all_job, *feed_jobs.values(), reprocess_job],
    sensors=[*landing_sensors, run_failed_sensor, run_succeeded_sensor],
    schedules=[daily_schedule],
    resources={"warehouse": WarehouseResource()},
    executor=dg.in_process_executor,
    loggers=LOGGERS,
)
