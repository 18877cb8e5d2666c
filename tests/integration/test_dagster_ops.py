"""Operations: feed sensors, the daily schedule, run config, retries, poison files, reprocess.

Every warehouse is built under pytest's tmp_path (the ``home`` fixture); Dagster runs use an
ephemeral or tmp_path instance. Expected values are worked out from the inline files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib

import dagster as dg
import duckdb
import pytest
import yaml

from pipelines.instance import WRITER_TAG, ensure_instance
from pipelines.ops import all_job, feed_jobs, reprocess_job, reprocess_run_config, run_reprocess
from pipelines.resources import WarehouseResource
from pipelines.schedules import FEATURE_RUN_CONFIG_EXAMPLE, daily_schedule
from pipelines.sensors import MAX_FILES_PER_TICK, landing_sensor
from warehouse import reprocess, steps

pytestmark = pytest.mark.integration

MEDS_HEADER = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity\n"
)


def meds_row(patient: str, start: str, drug: str = "anastrozole 1 MG Oral Tablet") -> str:
    return f"{patient},NORTH_CLINIC,dispense,199224,{drug},1,tablet,daily,{start},,30,30\n"


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    return path


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def query(home, sql: str, params=None):
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


@pytest.fixture
def resources(home):
    return {"warehouse": WarehouseResource(home=str(home.root))}


# --------------------------------------------------------------------------- instance
def test_instance_yaml_is_local_offline_and_single_writer(home):
    dagster_home = ensure_instance(home)
    assert dagster_home == home.root / "dagster"
    cfg = yaml.safe_load((dagster_home / "dagster.yaml").read_text())
    assert cfg["telemetry"] == {"enabled": False}
    assert cfg["storage"]["sqlite"]["base_dir"] == str(dagster_home / "storage")
    assert cfg["concurrency"]["runs"]["max_concurrent_runs"] == 1
    assert cfg["concurrency"]["runs"]["tag_concurrency_limits"] == [{"key": WRITER_TAG, "limit": 1}]
    # a run whose worker died is failed by run monitoring after 6 h (it holds the queue)
    assert cfg["run_monitoring"] == {"enabled": True, "max_runtime_seconds": 6 * 3600}
    # idempotent, and Dagster accepts it
    before = (dagster_home / "dagster.yaml").stat().st_mtime_ns
    assert ensure_instance(home) == dagster_home
    assert (dagster_home / "dagster.yaml").stat().st_mtime_ns == before
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert instance.run_monitoring_max_runtime_seconds == 6 * 3600
        assert str(dagster_home) in instance.root_directory
    finally:
        instance.dispose()


# --------------------------------------------------------------------------- sensors
def _tick(sensor, resources, cursor=None, instance=None):
    # the warehouse resource has a run lifecycle (the run lock): open the context as Dagster does
    with dg.build_sensor_context(
        instance=instance or dg.DagsterInstance.ephemeral(), cursor=cursor, resources=resources
    ) as ctx:
        return sensor(ctx)


@contextlib.contextmanager
def landing_away(home):
    """The landing share unmounted for the duration of the block."""
    away = home.root / "landing.away"
    home.landing.rename(away)
    try:
        yield
    finally:
        away.rename(home.landing)


def test_feed_sensor_requests_one_run_per_new_content(home, resources):
    a = MEDS_HEADER + meds_row("P1", "2023-01-01")
    b = MEDS_HEADER + meds_row("P2", "2023-02-01")
    write(home.landing / "meds" / "a.csv", a)
    write(home.landing / "hl7" / "x.hl7", "MSH|^~\\&|other feed\r")  # not this sensor's feed
    sensor = landing_sensor("meds")

    first = _tick(sensor, resources)
    assert [r.run_key for r in first.run_requests] == ["meds:" + sha(a)]
    assert first.run_requests[0].tags["labwh/feed"] == "meds"

    # same folder again: nothing
    again = _tick(sensor, resources, first.cursor)
    assert isinstance(again, dg.SkipReason)

    # same bytes under another name: nothing either (content already seen)
    write(home.landing / "meds" / "copy_of_a.csv", a)
    assert isinstance(_tick(sensor, resources, first.cursor), dg.SkipReason)

    # a new content: one run keyed by its hash
    write(home.landing / "meds" / "b.csv", b)
    third = _tick(sensor, resources, first.cursor)
    assert [r.run_key for r in third.run_requests] == ["meds:" + sha(b)]
    assert isinstance(_tick(sensor, resources, third.cursor), dg.SkipReason)


def test_a_missing_landing_folder_stops_the_sensor_and_fails_the_feed_job(home, resources):
    home.landing.rmdir()
    skip = _tick(landing_sensor("meds"), resources)
    assert isinstance(skip, dg.SkipReason) and "landing folder is missing" in skip.skip_message
    result = _run_feed_job("meds", resources)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "no landing folder at" in str(failure.event_specific_data.error)
    assert not home.landing.exists()


def test_a_content_whose_run_failed_is_requested_again(home, resources):
    # the sensor's run fails (here: the landing share unmounted while it ran); on a later
    # tick the same content gets another run, under a new key, which loads it
    text = MEDS_HEADER + meds_row("P1", "2023-01-01")
    write(home.landing / "meds" / "a.csv", text)
    instance = dg.DagsterInstance.ephemeral()
    sensor = landing_sensor("meds")

    def tick(cursor):
        return _tick(sensor, resources, cursor, instance)

    def run(key):
        return _run_feed_job("meds", resources, instance, run_key=key)

    first = tick(None)
    [request] = first.run_requests
    assert request.run_key == "meds:" + sha(text)
    assert isinstance(tick(first.cursor), dg.SkipReason)  # its run has not ended yet
    with landing_away(home):
        assert not run(request.run_key).success

    second = tick(first.cursor)
    [retry] = second.run_requests
    assert retry.run_key == "meds:" + sha(text) + "#2"
    assert run(retry.run_key).success
    assert query(home, "SELECT count(*) FROM staging.stg_meds__medication") == [(1,)]
    done = tick(second.cursor)
    assert not done.run_requests and "no new meds files" in done.skip_reason.skip_message
    assert isinstance(tick(done.cursor), dg.SkipReason)


def test_each_content_counts_its_own_failed_runs(home, resources):
    # content A fails once; B arrives and is batched with A's retry; that run fails too: A
    # has had 2 runs, B 1, so after a third failure A is given up and B gets its third run
    from pipelines.sensors import MAX_ATTEMPTS, load_cursor

    assert MAX_ATTEMPTS == 3
    a = MEDS_HEADER + meds_row("P1", "2023-01-01")
    b = MEDS_HEADER + meds_row("P2", "2023-02-01")
    instance = dg.DagsterInstance.ephemeral()
    sensor = landing_sensor("meds")

    def tick(cursor):
        return _tick(sensor, resources, cursor, instance)

    def fail(key):  # the run starts while the landing share is away
        with landing_away(home):
            assert not _run_feed_job("meds", resources, instance, run_key=key).success

    write(home.landing / "meds" / "a.csv", a)
    first = tick(None)
    fail(first.run_requests[0].run_key)
    write(home.landing / "meds" / "b.csv", b)
    second = tick(first.cursor)
    [request] = second.run_requests
    assert request.tags["labwh/new_files"] == "2" and request.run_key.endswith("#2")
    attempts = load_cursor(second.cursor).attempts
    assert (attempts[sha(a)[:16]], attempts[sha(b)[:16]]) == (2, 1)
    fail(request.run_key)
    third = tick(second.cursor)
    fail(third.run_requests[0].run_key)
    fourth = tick(third.cursor)
    [last] = fourth.run_requests
    assert last.tags["labwh/new_files"] == "1"  # b alone: a has had its three runs
    assert last.run_key == "meds:" + sha(b) + "#3"
    assert sha(a)[:16] not in load_cursor(fourth.cursor).attempts


def test_a_content_is_requested_at_most_max_attempts_times():
    from pipelines.sensors import MAX_ATTEMPTS, Cursor, settle_pending

    failed = dg.DagsterRunStatus.FAILURE
    cursor = Cursor(seen={"k"}, pending={"meds:x": ["k"]}, attempts={"k": 1})
    for attempt in range(1, MAX_ATTEMPTS):
        assert settle_pending(cursor, lambda _key: failed) == []
        assert cursor.seen == set() and cursor.pending == {}  # requested again next tick
        cursor.seen.add("k")
        cursor.pending[f"meds:x#{attempt + 1}"] = ["k"]
        cursor.attempts["k"] = attempt + 1
    assert settle_pending(cursor, lambda _key: failed) == ["k"]
    assert cursor.seen == {"k"} and cursor.pending == {} and cursor.attempts == {}
    # a run not created yet, or still going, stays pending; a success is forgotten
    cursor.pending = {"meds:y": ["j"]}
    assert settle_pending(cursor, lambda _key: None) == [] and "meds:y" in cursor.pending
    settle_pending(cursor, lambda _key: dg.DagsterRunStatus.SUCCESS)
    assert cursor.pending == {}


def test_bytes_moved_from_a_wrong_folder_get_a_run_of_their_own(home, resources):
    a = MEDS_HEADER + meds_row("P1", "2023-01-01")
    write(home.landing / "meds" / "a.pdf", a)  # meds must end in .csv or .txt: put aside
    sensor = landing_sensor("meds")
    first = _tick(sensor, resources)
    assert [r.run_key for r in first.run_requests] == ["meds:" + sha(a) + "?"]
    # the same bytes where a parser takes them: a new run (it re-points the file)
    write(home.landing / "meds" / "a.csv", a)
    second = _tick(sensor, resources, first.cursor)
    assert [r.run_key for r in second.run_requests] == ["meds:" + sha(a)]
    # further copies, right or wrong, are known content
    write(home.landing / "meds" / "copy.csv", a)
    write(home.landing / "meds" / "copy.pdf", a)
    assert isinstance(_tick(sensor, resources, second.cursor), dg.SkipReason)


def test_feed_sensor_caps_files_per_tick_and_keys_the_batch(home, resources):
    texts = [MEDS_HEADER + meds_row(f"P{i}", "2023-01-01") for i in range(3)]
    for i, t in enumerate(texts):
        write(home.landing / "meds" / f"f{i}.csv", t)
    sensor = landing_sensor("meds", max_files=2)
    first = _tick(sensor, resources)
    # discover order is by name: f0, f1 in the first batch, f2 in the next
    batch = sorted([sha(texts[0]), sha(texts[1])])
    expected = "meds:" + hashlib.sha256("\n".join(batch).encode()).hexdigest()
    assert [r.run_key for r in first.run_requests] == [expected]
    second = _tick(sensor, resources, first.cursor)
    assert [r.run_key for r in second.run_requests] == ["meds:" + sha(texts[2])]
    assert isinstance(_tick(sensor, resources, second.cursor), dg.SkipReason)
    assert MAX_FILES_PER_TICK >= 1


def test_an_unreadable_file_does_not_stop_the_sensor(home, resources, monkeypatch):
    # b.csv cannot be read this tick (no permission: injected, the tests run as root): a.csv
    # still gets its run; b.csv is not marked seen, so the next tick picks it up
    import pipelines.sensors as sensors

    a = MEDS_HEADER + meds_row("P1", "2023-01-01")
    b = MEDS_HEADER + meds_row("P2", "2023-02-01")
    write(home.landing / "meds" / "a.csv", a)
    bad = write(home.landing / "meds" / "b.csv", b)
    real_hash = sensors.content_hash

    def denied(path):
        if path == bad:
            raise PermissionError(13, "Permission denied")
        return real_hash(path)

    monkeypatch.setattr(sensors, "content_hash", denied)
    sensor = landing_sensor("meds")
    first = _tick(sensor, resources)
    assert [r.run_key for r in first.run_requests] == ["meds:" + sha(a)]
    monkeypatch.setattr(sensors, "content_hash", real_hash)
    second = _tick(sensor, resources, first.cursor)
    assert [r.run_key for r in second.run_requests] == ["meds:" + sha(b)]


def test_sensors_target_their_feed_job(home):
    from pipelines.definitions import defs

    for feed, job in feed_jobs.items():
        sensor = defs.resolve_sensor_def(f"landing_{feed}")
        assert sensor.job_name == job.name == f"ingest_{feed}"
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
        resolved = defs.resolve_job_def(job.name)
        keys = {k.to_user_string() for k in resolved.asset_layer.selected_asset_keys}
        assert {"raw/files", "core/fct_lab_result", "published/analytics"} <= keys
        staged = {k for k in keys if k.startswith("staging/")}
        assert len(staged) == 1 and feed.replace("_", "") in staged.pop().replace("_", "")
        assert resolved.tags[WRITER_TAG] == "writer"


# --------------------------------------------------------------------------- schedule
def test_daily_schedule_requests_a_whole_graph_run():
    assert daily_schedule.cron_schedule == "0 2 * * *"
    assert daily_schedule.job_name == "labwh_all" == all_job.name
    ctx = dg.build_schedule_context(scheduled_execution_time=dt.datetime(2024, 3, 1, 2, 0))
    data = daily_schedule.evaluate_tick(ctx)
    assert len(data.run_requests) == 1
    assert data.run_requests[0].run_config == {}


def test_feature_run_config_example_is_valid_and_bad_values_are_rejected():
    from pipelines.definitions import defs

    job = defs.resolve_job_def("labwh_all")
    resolved = dg.validate_run_config(job, FEATURE_RUN_CONFIG_EXAMPLE)
    cfg = resolved["ops"]["feature_marts"]["config"]
    assert cfg["thresholds_pg_ml"] == [10.0, 20.0, 30.0] and cfg["max_gap_days"] == 180
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(
            job, {"ops": {"feature_marts": {"config": {"max_gap_days": "half a year"}}}}
        )
    ok = dg.validate_run_config(reprocess_job, reprocess_run_config(day="2024-01-05"))
    assert ok["ops"]["reprocess_files"]["config"]["day"] == "2024-01-05"


def test_bad_feature_parameters_stop_the_run_before_anything_lands(home, resources):
    # a negative threshold passes the config schema (a list of floats): the run must stop at
    # its first step, naming the value, and not rebuild the marts with it after landing
    from pipelines.definitions import defs

    write(home.landing / "meds" / "a.csv", MEDS_HEADER + meds_row("P1", "2023-01-01"))
    bad = {"ops": {"feature_marts": {"config": {"thresholds_pg_ml": [-10.0, 20.0]}}}}
    result = defs.resolve_job_def("labwh_all").execute_in_process(
        run_config=bad,
        instance=dg.DagsterInstance.ephemeral(),
        resources=resources,
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.step_key == "raw__files"
    assert "thresholds_pg_ml must be numbers > 0" in str(failure.event_specific_data.error)
    # nothing landed: the warehouse was not even opened
    assert not home.warehouse.exists()


# --------------------------------------------------------------------------- retries
def test_transient_error_in_staging_is_retried_and_the_run_succeeds(home, resources, monkeypatch):
    from pipelines.assets import RAW, STAGED, all_assets

    write(home.landing / "meds" / "a.csv", MEDS_HEADER + meds_row("P1", "2023-01-01"))
    real_stage = steps.stage
    calls = []

    def flaky_stage(h, feed, run_id, **kw):
        calls.append(feed)
        if calls.count(feed) == 1:
            raise TimeoutError("injected: warehouse busy")
        return real_stage(h, feed, run_id, **kw)

    monkeypatch.setattr(steps, "stage", flaky_stage)
    result = dg.materialize(
        all_assets,
        selection=[RAW, STAGED["meds"]],
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    assert calls == ["meds", "meds"]
    retried = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retried) == 1
    assert query(home, "SELECT count(*) FROM staging.stg_meds__medication") == [(1,)]


# --------------------------------------------------------------------------- poison files
def _poison_meds_parser(monkeypatch, marker: str):
    import transforms.meds as meds

    real = meds.parse_meds_csv

    def parse(data: bytes, **kw):
        if marker.encode() in data:
            raise ValueError("injected parser crash on MRN-like text P-SECRET")
        return real(data, **kw)

    monkeypatch.setattr(meds, "parse_meds_csv", parse)


# --------------------------------------------------------------------------- reprocess
def _load_all(home, run_id: str):
    from warehouse import params

    steps.start_run(home, run_id, home.landing)
    steps.land(home, home.landing, run_id)
    steps.stage(home, "meds", run_id)
    steps.build_core(home, params.core_params())
    steps.build_features(home, params.feature_params(), run_id)


def test_reprocess_one_file_after_a_fix_and_again_is_idempotent(home, monkeypatch):
    bad = MEDS_HEADER + meds_row("P1", "2023-01-01", drug="POISON") + meds_row("P1", "2023-03-01")
    good = MEDS_HEADER + meds_row("P2", "2023-01-01")
    write(home.landing / "meds" / "a.csv", bad)
    write(home.landing / "meds" / "b.csv", good)
    with monkeypatch.context() as m:
        _poison_meds_parser(m, "POISON")
        _load_all(home, "r1")
    assert query(home, "SELECT count(*) FROM staging.stg_meds__medication") == [(1,)]

    # the parser is fixed (un-patched): reprocess the failed file by a hash prefix
    result = reprocess.reprocess(home, "r2", file_sha256=sha(bad)[:10])
    assert [f[0] for f in result.files] == [sha(bad)]
    assert (result.feeds["meds"].received, result.feeds["meds"].accepted) == (2, 2)
    assert dict(query(home, "SELECT file_sha256, status FROM raw.files")) == {
        sha(bad): "parsed",
        sha(good): "parsed",
    }
    assert query(home, "SELECT count(*) FROM staging.stg_meds__medication") == [(3,)]
    assert query(
        home, "SELECT check_name, release_run_id FROM quality.quarantine WHERE position = 'file'"
    ) == [("unreadable_file", "r2")]
    assert home.published.exists()
    core_before = query(home, "SELECT count(*) FROM core.fct_medication")

    # a whole day again: nothing changes
    day = query(home, "SELECT CAST(min(received_at) AS DATE) FROM raw.files")[0][0]
    again = reprocess.reprocess(home, "r3", day=day.isoformat())
    assert sorted(f[0] for f in again.files) == sorted([sha(bad), sha(good)])
    assert query(home, "SELECT count(*) FROM staging.stg_meds__medication") == [(3,)]
    assert query(home, "SELECT count(*) FROM core.fct_medication") == core_before
    assert query(home, "SELECT status FROM raw.runs WHERE run_id = 'r3'") == [("success",)]


def test_reprocess_never_publishes_a_core_that_breaks_its_contract(home, monkeypatch):
    # core.fct_medication built with every record twice (a broken model): the reprocess run
    # stops before publishing, names the table and is recorded as a failure
    from warehouse import runner

    write(home.landing / "meds" / "a.csv", MEDS_HEADER + meds_row("P1", "2023-01-01"))
    _load_all(home, "r1")
    real = runner.model_sql

    def doubled(name: str) -> str:
        sql = real(name)
        if name != "core.fct_medication":
            return sql
        return "SELECT * FROM (" + sql + ") UNION ALL SELECT * FROM (" + sql + ")"  # noqa: S608 - a test wraps a model file

    monkeypatch.setattr(runner, "model_sql", doubled)
    with pytest.raises(reprocess.ContractBroken, match="core.fct_medication") as err:
        reprocess.reprocess(home, "r2", file_sha256=sha(MEDS_HEADER + meds_row("P1", "2023-01-01")))
    assert "core.fct_medication" in err.value.failures
    assert not home.published.exists()
    assert query(home, "SELECT status FROM raw.runs WHERE run_id = 'r2'") == [("failure",)]


def test_reprocess_selection_errors(home):
    with steps.writer(home) as con:
        with pytest.raises(ValueError):
            reprocess.select_files(con)
        with pytest.raises(ValueError):
            reprocess.select_files(con, file_sha256="abc")
        with pytest.raises(ValueError, match="is not a SHA-256"):
            reprocess.select_files(con, file_sha256="zzzzzzzzzz")
        with pytest.raises(ValueError, match="is not a date"):
            reprocess.select_files(con, day="yesterday")
    with pytest.raises(LookupError):
        reprocess.reprocess(home, "r1", file_sha256="0" * 64)


def test_reprocess_job_from_dagster_records_materializations(home, resources, tmp_path, capfd):
    write(home.landing / "meds" / "a.csv", MEDS_HEADER + meds_row("P1", "2023-01-01"))
    _load_all(home, "r1")
    content = MEDS_HEADER + meds_row("P1", "2023-01-01")
    capfd.readouterr()
    with dg.instance_for_test() as instance:
        result = run_reprocess(home, file_sha256=sha(content), instance=instance)
        assert result.success
        # the console shows the steps' messages, not Dagster's DEBUG events (as `labwh run`)
        assert " - DEBUG - " not in capfd.readouterr().err
        keys = {
            m.asset_key.to_user_string()
            for m in result.asset_materializations_for_node("reprocess_files")
        }
        assert {
            "staging/stg_meds__medication",
            "core/fct_medication",
            "published/analytics",
        } <= keys
        # a wrong hash fails at once, without retries
        bad = run_reprocess(home, file_sha256="f" * 64, instance=instance)
        assert not bad.success
        assert not [e for e in bad.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


# --------------------------------------------------------------------------- feed job runs
def _run_feed_job(feed: str, resources, instance=None, run_key: str | None = None):
    """The feed's job in-process; with ``run_key``, as the feed's sensor launches it."""
    from pipelines.definitions import defs

    tags = {"dagster/run_key": run_key, "dagster/sensor_name": f"landing_{feed}"} if run_key else {}
    return defs.resolve_job_def(f"ingest_{feed}").execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        resources=resources,
        tags=tags,
        raise_on_error=False,
    )


def test_sensor_run_request_runs_the_feed_job_end_to_end(home, resources):
    text = MEDS_HEADER + meds_row("P1", "2023-01-01") + meds_row("P2", "2023-02-01")
    write(home.landing / "meds" / "a.csv", text)
    tick = _tick(landing_sensor("meds"), resources)
    (request,) = tick.run_requests
    result = _run_feed_job("meds", resources)
    assert result.success
    assert query(home, "SELECT file_sha256, status FROM raw.files") == [(sha(text), "parsed")]
    assert query(home, "SELECT count(*) FROM staging.stg_meds__medication") == [(2,)]
    assert home.published.exists()
    # a second run on the same folder changes nothing
    assert _run_feed_job("meds", resources).success
    assert query(home, "SELECT count(*) FROM staging.stg_meds__medication") == [(2,)]
    assert request.run_key == "meds:" + sha(text)


def test_poison_file_is_quarantined_and_the_run_goes_on(home, resources, monkeypatch):
    bad = MEDS_HEADER + meds_row("P1", "2023-01-01", drug="POISON")
    good = MEDS_HEADER + meds_row("P2", "2023-01-01") + meds_row("P3", "2023-02-01")
    write(home.landing / "meds" / "a_bad.csv", bad)  # staged first (name order)
    write(home.landing / "meds" / "b_good.csv", good)
    _poison_meds_parser(monkeypatch, "POISON")
    result = _run_feed_job("meds", resources)
    assert result.success
    assert dict(query(home, "SELECT file_sha256, status FROM raw.files")) == {
        sha(bad): "failed",
        sha(good): "parsed",
    }
    assert query(
        home, "SELECT file_sha256, count(*) FROM staging.stg_meds__medication GROUP BY ALL"
    ) == [(sha(good), 2)]
    q = query(home, "SELECT file_sha256, position, check_name, reason FROM quality.quarantine")
    assert [r[:3] for r in q] == [(sha(bad), "file", "unreadable_file")]
    assert "ValueError" in q[0][3] and "P-SECRET" not in q[0][3]  # no file text in the reason
    # bad: 1 record quarantined; good: 2 accepted
    assert query(
        home, "SELECT n_files, n_received, n_accepted, n_quarantined FROM quality.run_feed_stats"
    ) == [(2, 3, 2, 1)]
    meta = [
        m.metadata for m in result.asset_materializations_for_node("staging__stg_meds__medication")
    ]
    assert meta[0]["records_quarantined"].value == 1


def test_run_summary_names_the_slowest_steps_first():
    import time

    from pipelines.cli import step_seconds

    @dg.asset
    def quick():
        return 1

    @dg.asset
    def slow(quick):
        time.sleep(0.4)
        return quick

    @dg.asset
    def broken(slow):
        raise RuntimeError("no")

    result = dg.materialize([quick, slow, broken], raise_on_error=False)
    timed = step_seconds(result)
    # a failed step has no duration to show; the one that slept leads with at least its sleep
    assert [step for step, _ in timed] == ["slow", "quick"]
    assert timed[0][1] >= 0.4 > timed[1][1]
