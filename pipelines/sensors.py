"""One sensor per landing feed: a run for files whose content the sensor has not seen yet.

Each tick lists ``landing/<feed>/`` (``transforms.landing.discover``), hashes the files
(``sha256_file``; a file's hash is cached by path, size and mtime so an unchanged folder is
not re-read) and requests one run of ``ingest_<feed>`` for at most ``MAX_FILES_PER_TICK``
unseen contents; the rest wait for the next tick. The cursor holds the contents seen
(16-hex-digit SHA-256 prefixes); the run key is ``<feed>:<sha256>`` (of the file, or of the
sorted hashes of the batch), so the same content never triggers a second run, whatever its
name. A content the sensor skips is still landed by the daily schedule: raw.files, not the
cursor, is the record of what was received.

Default status: STOPPED. Turn the sensors on in the UI (Automation) or with
``dagster sensor start``; set ``LABWH_AUTOMATION=1`` to have them (and the daily schedule)
start RUNNING, e.g. on a shared deployment.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg

from pipelines.assets import PUBLISHED, RAW
from pipelines.ops import automation_on, feed_jobs
from pipelines.resources import WarehouseResource
from transforms.landing import FEEDS, discover, sha256_file, unsupported_reason
from warehouse import steps

MAX_FILES_PER_TICK = 50
SEEN_PREFIX = 16
UNSUPPORTED_MARK = "?"
CURSOR_VERSION = 1


def default_status() -> dg.DefaultSensorStatus:
    if automation_on():
        return dg.DefaultSensorStatus.RUNNING
    return dg.DefaultSensorStatus.STOPPED


_hash_cache: dict[tuple[str, int, int], str] = {}


def content_hash(path: Path) -> str:
    """sha256 of a file, cached by (path, size, mtime) for the life of the daemon process."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _hash_cache:
        _hash_cache[key] = sha256_file(path)
    return _hash_cache[key]


def load_cursor(cursor: str | None) -> set[str]:
    if not cursor:
        return set()
    data = json.loads(cursor)
    return set(data.get("seen", []))


def dump_cursor(seen: set[str]) -> str:
    return json.dumps({"v": CURSOR_VERSION, "seen": sorted(seen)}, separators=(",", ":"))


def new_files(
    landing: Path,
    feed: str,
    seen: set[str],
    limit: int = MAX_FILES_PER_TICK,
    unreadable: list[str] | None = None,
) -> list[tuple[str, str, str]]:
    """(name, sha256, seen key) of up to ``limit`` landing files whose key is not in ``seen``.

    The key is the content's (a prefix of the sha256), marked when the file sits where no
    parser takes it: the same bytes delivered again to the right folder are then new
    (the run re-points the file, warehouse/ingest.py), a copy elsewhere is not.
    A file that cannot be read now (no permission, moved away while listed) is left for a
    later tick, its error type appended to ``unreadable``: it never stops the other files.
    """
    found: dict[str, tuple[str, str]] = {}
    for lf in discover(Path(landing), (feed,)):
        try:
            sha = content_hash(lf.path)
        except OSError as err:
            if unreadable is not None:
                unreadable.append(type(err).__name__)
            continue
        key = sha[:SEEN_PREFIX]
        if unsupported_reason(lf.feed, lf.source, lf.name) is not None:
            key += UNSUPPORTED_MARK
        if key in seen or key in {k for _, k in found.values()}:
            continue
        found[lf.name] = (sha, key)
        if len(found) >= limit:
            break
    return [(name, sha, key) for name, (sha, key) in found.items()]


def run_key(feed: str, shas: list[str]) -> str:
    shas = sorted(shas)
    digest = shas[0] if len(shas) == 1 else hashlib.sha256("\n".join(shas).encode()).hexdigest()
    return f"{feed}:{digest}"


def landing_sensor(feed: str, max_files: int = MAX_FILES_PER_TICK) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"landing_{feed}",
        job=feed_jobs[feed],
        minimum_interval_seconds=30,
        default_status=default_status(),
        description=f"New contents under landing/{feed}/ → a run of ingest_{feed} "
        f"(≤ {max_files} files per tick, each content once).",
    )
    def _sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
        if not warehouse.landing_dir().is_dir():
            context.log.warning(f"no landing folder at {warehouse.landing_dir()}")
            return dg.SkipReason("the landing folder is missing (an unmounted share?)")
        seen = load_cursor(context.cursor)
        unreadable: list[str] = []
        files = new_files(warehouse.landing_dir(), feed, seen, max_files, unreadable)
        if unreadable:  # error types only: a file name may hold anything
            context.log.warning(
                f"{len(unreadable)} {feed} file(s) could not be read this tick "
                f"({', '.join(sorted(set(unreadable)))}); they are tried again on the next"
            )
        if not files:
            return dg.SkipReason(f"no new {feed} files")
        shas = [sha for _, sha, _ in files]
        seen.update(key for _, _, key in files)
        context.log.info(f"{len(files)} new {feed} file(s): " + ", ".join(s[:12] for s in shas))
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    # a misplaced file's run has its own key: the right folder's is another
                    run_key=run_key(feed, [sha + key[SEEN_PREFIX:] for _, sha, key in files]),
                    tags={"labwh/feed": feed, "labwh/new_files": str(len(files))},
                )
            ],
            cursor=dump_cursor(seen),
        )

    return _sensor


landing_sensors = [landing_sensor(feed) for feed in FEEDS]


@dg.run_failure_sensor(
    name="labwh_run_failed",
    minimum_interval_seconds=30,
    # runs launched outside the code location (`dagster asset materialize -m …`, no origin)
    # are skipped otherwise; the instance under $LABWH_HOME holds this project's runs only
    monitor_all_code_locations=True,
    # it only writes a run's status: on by default, whatever starts the other sensors
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A run that failed (a step raised, a blocking check failed) is recorded as "
    "'failure' in raw.runs, so that no report takes it for a finished or running run.",
)
def run_failed_sensor(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    # waits for the step of a run in progress to let go of the file, within the tick's time;
    # should the tick fail all the same, the next run records the failure (steps.start_run)
    if steps.mark_failed(warehouse.get_home(), context.dagster_run.run_id, wait_s=40):
        context.log.info(f"run {context.dagster_run.run_id} recorded as failure in raw.runs")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="labwh_run_succeeded",
    minimum_interval_seconds=30,
    monitor_all_code_locations=True,  # as labwh_run_failed: CLI-launched runs too
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A run that succeeded without the publish step (a partial asset selection, "
    "which Dagster calls a success) is recorded as 'success' in raw.runs; a whole run has "
    "already closed itself when it published.",
)
def run_succeeded_sensor(context: dg.RunStatusSensorContext, warehouse: WarehouseResource):
    # only a run that opened a raw.runs row (landing) and did not close it (publish) has
    # anything to record; any other leaves the warehouse alone, so no tick waits for the file
    # while the next run writes. Dagster's own event log tells which steps materialized.
    materialized = {
        e.dagster_event.asset_key
        for e in context.instance.all_logs(
            context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        )
        if e.dagster_event
    }
    if RAW not in materialized or PUBLISHED in materialized:
        return
    if steps.close_if_running(
        warehouse.get_home(), context.dagster_run.run_id, "success", wait_s=40
    ):
        context.log.info(f"run {context.dagster_run.run_id} recorded as success in raw.runs")
