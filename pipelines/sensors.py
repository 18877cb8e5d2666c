"""One sensor per landing feed: a run for files whose content the sensor has not seen yet.

Each tick lists ``landing/<feed>/`` (``transforms.landing.discover``), hashes the files
(``sha256_file``; a file's hash is cached by path, size and mtime so an unchanged folder is
not re-read) and requests one run of ``ingest_<feed>`` for at most ``MAX_FILES_PER_TICK``
unseen contents; the rest wait for the next tick. The cursor holds the contents seen
(16-hex-digit SHA-256 prefixes); the run key is ``<feed>:<sha256>`` (of the file, or of the
sorted hashes of the batch), so the same content never triggers a second run, whatever its
name, unless its run fails: the sensor follows the runs it requested (``Cursor.pending``) and
requests a content whose run failed or was cancelled again on a later tick (run key
``…#2``, ``…#3``), up to ``MAX_ATTEMPTS`` runs (a warehouse held past the lock wait, a full
disk). A content the sensor skips is still landed by the daily schedule or the next run:
raw.files, not the cursor, is the record of what was received.

Default status: STOPPED. Turn the sensors on in the UI (Automation) or with
``dagster sensor start``; set ``LABWH_AUTOMATION=1`` to have them (and the daily schedule)
start RUNNING, e.g. on a shared deployment.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
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
CURSOR_VERSION = 2
MAX_ATTEMPTS = 3  # runs requested for one content when the earlier ones failed
RUN_KEY_TAG = "dagster/run_key"  # Dagster's tags on a sensor's runs
SENSOR_NAME_TAG = "dagster/sensor_name"


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


@dataclass
class Cursor:
    """What a landing sensor remembers between ticks.

    ``seen``: the contents it has requested a run for; ``pending``: its requested runs whose
    end it has not seen yet (run key → the contents' keys); ``attempts``: how many runs each
    content has had. A content whose run failed or was cancelled is not seen any more, so the
    next tick requests it again (another run key: ``…#2``), up to ``MAX_ATTEMPTS`` runs.
    """

    seen: set[str] = field(default_factory=set)
    pending: dict[str, list[str]] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)


def load_cursor(cursor: str | None) -> Cursor:
    if not cursor:
        return Cursor()
    data = json.loads(cursor)
    return Cursor(
        seen=set(data.get("seen", [])),
        pending={k: list(v) for k, v in (data.get("pending") or {}).items()},
        attempts={k: int(v) for k, v in (data.get("attempts") or {}).items()},
    )


def dump_cursor(cursor: Cursor) -> str:
    data = {
        "v": CURSOR_VERSION,
        "seen": sorted(cursor.seen),
        "pending": {k: sorted(v) for k, v in sorted(cursor.pending.items())},
        "attempts": dict(sorted(cursor.attempts.items())),
    }
    return json.dumps(data, separators=(",", ":"))


def settle_pending(cursor: Cursor, status_of) -> list[str]:
    """Forget the pending runs that ended: a success for good; a failure or a cancellation
    makes its contents unseen again while they have attempts left. ``status_of(run_key)``
    is the run's ``DagsterRunStatus``, or None while Dagster has no run for the key yet.
    Returns the keys of contents that used their last attempt."""
    given_up: list[str] = []
    for key, contents in list(cursor.pending.items()):
        status = status_of(key)
        if status == dg.DagsterRunStatus.SUCCESS:
            del cursor.pending[key]
            for c in contents:
                cursor.attempts.pop(c, None)
        elif status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
            del cursor.pending[key]
            for c in contents:
                if cursor.attempts.get(c, 1) < MAX_ATTEMPTS:
                    cursor.seen.discard(c)
                else:
                    cursor.attempts.pop(c, None)
                    given_up.append(c)
    return given_up


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


def run_key(feed: str, shas: list[str], attempt: int = 1) -> str:
    shas = sorted(shas)
    digest = shas[0] if len(shas) == 1 else hashlib.sha256("\n".join(shas).encode()).hexdigest()
    return f"{feed}:{digest}" + (f"#{attempt}" if attempt > 1 else "")


def _run_status(instance: dg.DagsterInstance, sensor_name: str):
    def status_of(key: str):
        runs = instance.get_runs(
            filters=dg.RunsFilter(tags={RUN_KEY_TAG: key, SENSOR_NAME_TAG: sensor_name}),
            limit=1,
        )
        return runs[0].status if runs else None

    return status_of


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
        try:
            steps.check_landing(warehouse.landing_dir())
        except steps.LandingMissing as err:
            context.log.warning(str(err))
            return dg.SkipReason("the landing folder is missing (an unmounted share?)")
        cursor = load_cursor(context.cursor)
        given_up = settle_pending(cursor, _run_status(context.instance, f"landing_{feed}"))
        if given_up:
            context.log.warning(
                f"{len(given_up)} {feed} content(s) failed {MAX_ATTEMPTS} runs: left for the "
                "daily schedule or a manual run (labwh run); see the failed runs' logs"
            )
        unreadable: list[str] = []
        files = new_files(warehouse.landing_dir(), feed, cursor.seen, max_files, unreadable)
        if unreadable:  # error types only: a file name may hold anything
            context.log.warning(
                f"{len(unreadable)} {feed} file(s) could not be read this tick "
                f"({', '.join(sorted(set(unreadable)))}); they are tried again on the next"
            )
        if not files:
            settled = dump_cursor(cursor)
            if context.cursor is not None and settled != context.cursor:
                return dg.SensorResult(skip_reason=f"no new {feed} files", cursor=settled)
            return dg.SkipReason(f"no new {feed} files")
        shas = [sha for _, sha, _ in files]
        keys = [key for _, _, key in files]
        # each content counts its own runs (a new file batched with a retried one starts at
        # 1); the batch's run key carries the highest
        for k in keys:
            cursor.attempts[k] = cursor.attempts.get(k, 0) + 1
        attempt = max(cursor.attempts[k] for k in keys)
        # a misplaced file's run has its own key: the right folder's is another
        key = run_key(feed, [sha + k[SEEN_PREFIX:] for _, sha, k in files], attempt)
        cursor.seen.update(keys)
        cursor.pending[key] = keys
        retry = f" (attempt {attempt})" if attempt > 1 else ""
        context.log.info(
            f"{len(files)} new {feed} file(s){retry}: " + ", ".join(s[:12] for s in shas)
        )
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=key,
                    tags={"labwh/feed": feed, "labwh/new_files": str(len(files))},
                )
            ],
            cursor=dump_cursor(cursor),
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
