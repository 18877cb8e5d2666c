"""Jobs for data engineers: the whole graph, one ingest job per feed, and file reprocessing.

Every job runs in-process (one process per step costs 3-4 s on these machines) and carries
the warehouse writer tag, so the run queue (``pipelines.instance``) runs one at a time:
DuckDB has a single writer.
"""

import os

import dagster as dg

from pipelines.assets import OMOP, PUBLISHED, RAW, STAGED, FeatureConfig
from pipelines.instance import WRITER_TAG, ensure_instance
from pipelines.loggers import LOGGERS
from pipelines.resources import WarehouseResource
from transforms.landing import FEEDS
from warehouse import reprocess as rp
from warehouse.steps import env_flag

WRITER_TAGS = {WRITER_TAG: "writer"}
AUTOMATION_ENV = "LABWH_AUTOMATION"
"""Set to 1 to start the sensors and the daily schedule RUNNING (default: STOPPED)."""


def automation_on() -> bool:
    return env_flag(AUTOMATION_ENV)


all_job = dg.define_asset_job(
    "labwh_all",
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    tags=WRITER_TAGS,
    description="Every asset: land, stage every feed, core, marts, OMOP views, publish.",
)


def feed_job(feed: str):
    """raw + this feed's staged table + everything downstream of it (core, marts, publish)."""
    return dg.define_asset_job(
        f"ingest_{feed}",
        selection=dg.AssetSelection.assets(RAW)
        | dg.AssetSelection.assets(STAGED[feed]).downstream(),
        executor_def=dg.in_process_executor,
        tags={**WRITER_TAGS, "labwh/feed": feed},
        description=f"Land new files, stage the {feed} feed, rebuild core and marts, publish.",
    )


feed_jobs = {feed: feed_job(feed) for feed in FEEDS}


# --------------------------------------------------------------------------- reprocess
class ReprocessConfig(dg.Config):
    """Which received files to reprocess: one by content hash, or every file of one day."""

    file_sha256: str = ""
    """SHA-256 of the file (raw.files.file_sha256), or a unique prefix of ≥ 8 characters."""
    day: str = ""
    """YYYY-MM-DD: every file received that day (raw.files.received_at)."""
    features: FeatureConfig = FeatureConfig()


@dg.op(
    name="reprocess_files",
    retry_policy=dg.RetryPolicy(max_retries=2, delay=1, backoff=dg.Backoff.EXPONENTIAL),
    description="mark the files for restaging, stage them, rebuild core + marts, publish",
)
def reprocess_files(
    context: dg.OpExecutionContext, config: ReprocessConfig, warehouse: WarehouseResource
) -> None:
    try:
        result = rp.reprocess(
            warehouse.get_home(),
            context.run_id,
            file_sha256=config.file_sha256 or None,
            day=config.day or None,
            feature_overrides=config.features.overrides(),
            full_rebuild=config.features.full_rebuild,
            log=context.log.info,
        )
    except (ValueError, LookupError) as exc:  # a wrong selection: retrying cannot help
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    files = [f"{sha[:12]} {feed}" for sha, feed, _ in result.files]
    for feed, summary in result.feeds.items():
        context.log_event(
            dg.AssetMaterialization(
                asset_key=STAGED[feed],
                description="reprocessed",
                metadata={
                    "files": summary.files,
                    "records_received": summary.received,
                    "records_accepted": summary.accepted,
                    "records_quarantined": summary.quarantined,
                    "quarantined_by_check": dg.MetadataValue.json(summary.by_check),
                },
            )
        )
    for name, rows in {**result.core_rows, **result.feature_rows}.items():
        context.log_event(
            dg.AssetMaterialization(asset_key=name.split("."), metadata={"rows": rows})
        )
    context.log_event(dg.AssetMaterialization(asset_key=OMOP, description="views rebuilt"))
    context.log_event(
        dg.AssetMaterialization(
            asset_key=PUBLISHED,
            metadata={"reprocessed_files": dg.MetadataValue.json(files)},
        )
    )


@dg.job(
    name="reprocess_file",
    executor_def=dg.in_process_executor,
    logger_defs=LOGGERS,
    tags=WRITER_TAGS,
    description="Reprocess one received file (by SHA-256) or one day of files, end to end.",
)
def reprocess_job():
    reprocess_files()


def reprocess_run_config(
    *, file_sha256: str | None = None, day: str | None = None, features: dict | None = None
) -> dict:
    cfg = {"file_sha256": file_sha256 or "", "day": day or ""}
    if features:
        cfg["features"] = features
    return {"ops": {"reprocess_files": {"config": cfg}}}


def run_reprocess(
    home,
    *,
    file_sha256: str | None = None,
    day: str | None = None,
    features: dict | None = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """What ``labwh reprocess`` calls: the ``reprocess_file`` job, in-process, on ``home``.

    With ``instance`` None the local instance (``$LABWH_HOME/dagster``) records the run, so it
    shows in the UI's run history next to the scheduled runs.
    """
    if instance is None:
        os.environ["DAGSTER_HOME"] = str(ensure_instance(home))
        instance = dg.DagsterInstance.get()
    run_config = reprocess_run_config(file_sha256=file_sha256, day=day, features=features)
    # as `labwh run`: steps' own messages, not Dagster's DEBUG events (those stay in the UI)
    run_config["loggers"] = {"console": {"config": {"log_level": "INFO"}}}
    return reprocess_job.execute_in_process(
        run_config=run_config,
        instance=instance,
        resources={"warehouse": WarehouseResource(home=str(home.root))},
        raise_on_error=False,
    )
