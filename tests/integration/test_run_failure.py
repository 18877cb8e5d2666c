"""A failed run is recorded as 'failure' in raw.runs: by `labwh run` in-process, and by the
run-failure sensor for runs the Dagster daemon launched. A partial selection that succeeded
without reaching the publish is closed as 'success' by the run-success sensor."""

from __future__ import annotations

import dagster as dg
import duckdb
import pytest

from pipelines import cli
from pipelines.assets import PUBLISHED, RAW, STAGED, all_assets
from pipelines.resources import WarehouseResource
from pipelines.sensors import run_failed_sensor, run_succeeded_sensor
from warehouse import steps

pytestmark = pytest.mark.integration

MEDS = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity\n"
    "P1,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30\n"
)


def runs(home) -> list[tuple]:
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return con.execute(
            "SELECT run_id, status, finished_at IS NOT NULL FROM raw.runs"
        ).fetchall()
    finally:
        con.close()


def test_labwh_run_that_fails_is_recorded_and_exits_1(home, monkeypatch, capsys):
    (home.landing / "meds").mkdir(parents=True)
    (home.landing / "meds" / "m.csv").write_text(MEDS)

    def broken(*_args, **_kwargs):
        raise RuntimeError("core build broke")

    monkeypatch.setattr(steps, "build_core", broken)
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "core build broke" in err
    # an unexpected error keeps its stack trace in the log (the everyday ones, such as a busy
    # warehouse, get one line: test_locks.py)
    log = err[: err.index("FAILED")]
    assert "Stack Trace" in log and 'in broken\n    raise RuntimeError("core build broke")' in log
    [(run_id, status, finished)] = runs(home)
    assert (status, finished) == ("failure", True)
    assert run_id in err
    # a finished run keeps its status
    assert steps.mark_failed(home, run_id) is False


def test_a_run_on_a_warehouse_that_cannot_be_opened_says_so_without_a_traceback(
    home, monkeypatch, capsys
):
    # a warehouse file that cannot be written (read-only mount, immutable file): the run
    # fails, and recording the failure fails the same way; the user gets the run's summary
    (home.landing / "meds").mkdir(parents=True)
    (home.landing / "meds" / "m.csv").write_text(MEDS)

    def cannot_open(*_args, **_kwargs):
        raise duckdb.IOException(
            'IO Error: Cannot open file "warehouse.duckdb": Operation not permitted'
        )

    monkeypatch.setattr(steps, "start_run", cannot_open)
    monkeypatch.setattr(steps, "mark_failed", cannot_open)
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert "FAILED" in err and "Operation not permitted" in err
    assert "could not be recorded in raw.runs" in err
    assert "Traceback" not in err.split("FAILED", 1)[1]


def test_a_missing_landing_folder_is_an_error_not_an_empty_delivery(home, capsys):
    # an unmounted share: `labwh run` (the home's own landing folder) stops with exit 2, and
    # nothing recreates the folder to make it look like an empty delivery
    home.landing.rmdir()
    assert cli.main(["run"]) == 2
    assert f"no landing folder at {home.landing}" in capsys.readouterr().err
    assert not home.landing.exists() and not home.warehouse.exists()
    with pytest.raises(steps.LandingMissing, match="not an empty delivery"):
        steps.land(home, home.landing, "r1")


def test_failure_sensor_marks_a_daemon_run(home):
    # a run the daemon launched: raw.runs says 'running' until the sensor sees its failure
    @dg.op
    def fails():
        raise RuntimeError("boom")

    @dg.job
    def doomed():
        fails()

    instance = dg.DagsterInstance.ephemeral()
    result = doomed.execute_in_process(instance=instance, raise_on_error=False)
    steps.start_run(home, result.run_id, home.landing)
    assert runs(home)[0][1] == "running"
    with _status_context("labwh_run_failed", result, instance, home) as status_ctx:
        run_failed_sensor(status_ctx.for_run_failure())
    assert runs(home) == [(result.run_id, "failure", True)]


def _status_context(sensor_name, result, instance, home):
    # the resource has a run lifecycle (the run lock): sensor contexts open it as a context
    return dg.build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=(
            result.get_run_success_event() if result.success else result.get_run_failure_event()
        ),
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id),
        resources={"warehouse": WarehouseResource(home=str(home.root))},
    )


def _partial_run(home):
    """Landing + meds staging only: the publish, which closes a run, is not in the selection."""
    (home.landing / "meds").mkdir(parents=True)
    (home.landing / "meds" / "m.csv").write_text(MEDS)
    resources = {"warehouse": WarehouseResource(home=str(home.root))}
    instance = dg.DagsterInstance.ephemeral()
    partial = dg.materialize(
        all_assets, selection=[RAW, STAGED["meds"]], resources=resources, instance=instance
    )
    assert partial.success
    return partial, instance, resources


def test_success_sensor_closes_a_partial_selection_and_leaves_a_whole_run_alone(home):
    partial, instance, _ = _partial_run(home)
    assert runs(home) == [(partial.run_id, "running", False)]
    with _status_context("labwh_run_succeeded", partial, instance, home) as ctx:
        run_succeeded_sensor(ctx)
    assert runs(home) == [(partial.run_id, "success", True)]
    # a run the next run already recorded as failure (the sensor came late) keeps it
    steps.start_run(home, "dead-run", home.landing)
    steps.mark_failed(home, "dead-run")
    assert steps.close_if_running(home, "dead-run", "success") is False
    assert ("dead-run", "failure", True) in runs(home)


def test_the_next_run_closes_a_partial_run_dagster_saw_succeed_as_success(home):
    # the one-run queue starts the next run within seconds, before the success sensor ticks
    partial, instance, resources = _partial_run(home)
    steps.start_run(home, "died-outside-dagster", home.landing)
    nxt = dg.materialize(all_assets, selection=[RAW], resources=resources, instance=instance)
    assert sorted(runs(home)) == sorted(
        [
            (partial.run_id, "success", True),
            ("died-outside-dagster", "failure", True),
            (nxt.run_id, "running", False),
        ]
    )


@pytest.mark.parametrize("stand_in", [PUBLISHED, STAGED["meds"]], ids=["published", "no-landing"])
def test_success_sensor_takes_no_lock_after_a_run_with_nothing_to_close(
    home, monkeypatch, stand_in
):
    # a run that published closed itself; a run without the landing step opened no row.
    # A stand-in asset of that key: its materialization in the run's event log is the sign
    @dg.asset(key=stand_in)
    def stand_in_asset():
        return None

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([stand_in_asset], instance=instance)

    def touched(*_a, **_k):
        raise AssertionError("the warehouse was opened")

    monkeypatch.setattr(steps, "close_if_running", touched)
    with _status_context("labwh_run_succeeded", result, instance, home) as ctx:
        run_succeeded_sensor(ctx)


def test_next_run_records_a_dead_run_the_sensor_missed(home):
    from warehouse import locks

    steps.start_run(home, "dead-run", home.landing)  # its process died: no failure recorded
    steps.start_run(home, "outside-lock", home.landing)  # not under the run lock: no cleanup
    assert sorted(runs(home)) == [
        ("dead-run", "running", False),
        ("outside-lock", "running", False),
    ]
    with locks.run_lock(home.run_lock):
        steps.start_run(home, "next-run", home.landing)
    assert sorted(runs(home)) == [
        ("dead-run", "failure", True),
        ("next-run", "running", False),
        ("outside-lock", "failure", True),
    ]


def test_a_run_whose_finish_cannot_be_recorded_publishes_nothing(home, monkeypatch):
    # the snapshot would show the run 'success' while raw.runs keeps it 'running': it is
    # dropped instead, and the analysts keep the previous snapshot
    from warehouse import locks, params
    from warehouse.publish import publish, publish_run

    steps.build_core(home, params.core_params())
    publish(home)
    before = home.published.read_bytes()
    steps.start_run(home, "r2", home.landing)

    def busy(*args, **kwargs):
        raise locks.WarehouseBusy("warehouse.duckdb is locked by process 1")

    monkeypatch.setattr(steps, "finish_run", busy)
    with pytest.raises(locks.WarehouseBusy):
        publish_run(home, "r2")
    assert home.published.read_bytes() == before
    assert [p.name for p in home.published.parent.iterdir()] == [home.published.name]
    assert runs(home) == [("r2", "running", False)]
