"""Two processes on one warehouse: a reader during a run's step waits instead of failing it,
two writing runs never interleave, and a busy warehouse gives a clear error, not a
traceback (warehouse/locks.py)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

import duckdb
import pytest

from pipelines import cli
from warehouse import locks, steps

pytestmark = pytest.mark.integration

HOLD_DB = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("ready", flush=True)
time.sleep(float(sys.argv[3]))
con.close()
"""

HOLD_RUN_LOCK = """
import sys, time
from pathlib import Path
from warehouse import locks
with locks.run_lock(Path(sys.argv[1])):
    print("ready", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold(script: str, *args) -> subprocess.Popen:
    """Start a process that holds a lock, and return once it holds it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def warehouse(home):
    with steps.writer(home) as con:
        con.execute("CHECKPOINT")
    return home


def test_writer_waits_for_a_reader_of_another_process(warehouse):
    reader = hold(HOLD_DB, warehouse.warehouse, "ro", 1.5)
    try:
        # duckdb alone refuses at once: the situation the wait is for
        with pytest.raises(duckdb.IOException, match="Could not set lock"):
            duckdb.connect(str(warehouse.warehouse))
        t0 = time.monotonic()
        with steps.writer(warehouse) as con:
            waited = time.monotonic() - t0
            assert con.execute("SELECT count(*) FROM raw.runs").fetchone() == (0,)
    finally:
        reader.wait(timeout=30)
    assert reader.returncode == 0
    assert waited > 0.5  # it did wait for the reader, and then got in


def test_reader_waits_for_a_writer_step_of_another_process(warehouse):
    from warehouse.quality_queries import connect_read_only

    writer = hold(HOLD_DB, warehouse.warehouse, "rw", 1.0)
    try:
        con = connect_read_only(warehouse.warehouse)
        con.close()
    finally:
        writer.wait(timeout=30)


def test_busy_past_the_bound_names_the_holder(warehouse, monkeypatch):
    monkeypatch.setenv(locks.WAIT_ENV, "0.3")
    reader = hold(HOLD_DB, warehouse.warehouse, "ro", 30)
    try:
        t0 = time.monotonic()
        with pytest.raises(locks.WarehouseBusy) as err:
            locks.connect(warehouse.warehouse)
        assert 0.3 <= time.monotonic() - t0 < 5
        assert f"process {reader.pid}" in str(err.value)
        assert locks.WAIT_ENV in str(err.value)
    finally:
        reader.kill()
        reader.wait()


def test_other_io_errors_are_not_waited_for(tmp_path, monkeypatch):
    monkeypatch.setenv(locks.WAIT_ENV, "30")
    t0 = time.monotonic()
    with pytest.raises(duckdb.IOException):
        locks.connect(tmp_path / "no-such-folder" / "x.duckdb", read_only=True)
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("value", ["soon", "-1"])
def test_a_bad_wait_bound_is_refused(value, monkeypatch):  # noqa: D103
    monkeypatch.setenv(locks.WAIT_ENV, value)
    with pytest.raises(ValueError, match=locks.WAIT_ENV):
        locks.wait_bound()


def test_run_lock_excludes_another_process_and_reenters_in_process(home, monkeypatch):
    monkeypatch.setenv(locks.WAIT_ENV, "0.2")
    with locks.run_lock(home.run_lock), locks.run_lock(home.run_lock):  # re-entrant
        other = subprocess.run(
            [sys.executable, "-c", HOLD_RUN_LOCK, str(home.run_lock), "0"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": os.getcwd()},
        )
        assert other.returncode != 0
        assert f"another run (process {os.getpid()})" in other.stderr
    # released when the outer block ends
    with locks.run_lock(home.run_lock, wait_s=0):
        pass


def test_second_labwh_run_waits_then_fails_clearly(home, monkeypatch, capsys):
    monkeypatch.setenv(locks.WAIT_ENV, "0.5")
    holder = hold(HOLD_RUN_LOCK, home.run_lock, 30)
    try:
        assert cli.main(["run"]) == 3
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert f"another run (process {holder.pid}) is writing the warehouse" in err
    assert "Traceback" not in err
    assert not home.warehouse.exists()  # nothing of the refused run was written


def test_a_dagster_run_holds_the_run_lock_for_its_steps(home, monkeypatch):
    seen = []
    real = steps.build_core

    def probe(*args, **kwargs):
        with open(home.run_lock, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                seen.append("free")
            except BlockingIOError:
                seen.append("held")
        return real(*args, **kwargs)

    monkeypatch.setattr(steps, "build_core", probe)
    cli.run_pipeline(home, home.landing, quiet=True)
    assert seen == ["held"]
    # and lets go when the run ends
    with locks.run_lock(home.run_lock, wait_s=0):
        pass


def test_a_step_that_finds_the_warehouse_busy_fails_the_run_with_exit_3(warehouse, capsys):
    # the cause is named (Dagster wraps it in its own step error), the exit code says "busy"
    os.environ[locks.WAIT_ENV] = "0.5"
    reader = hold(HOLD_DB, warehouse.warehouse, "ro", 30)
    try:
        assert cli.main(["run"]) == 3
    finally:
        reader.kill()
        reader.wait()
        del os.environ[locks.WAIT_ENV]
    err = capsys.readouterr().err
    summary = err[err.index("FAILED") :].splitlines()
    assert summary[1].startswith(
        f"  raw__files: warehouse.duckdb is locked by process {reader.pid}"
    )
    # the log before the summary says it in one line a step, not in Dagster's stack traces
    # and one "Not executing" line for each of the later steps
    log = err[: err.index("FAILED")]
    assert "Stack Trace" not in log and "Traceback" not in log
    assert "Not executing" not in log
    [failed] = [line for line in log.splitlines() if "STEP_FAILURE" in line]
    assert failed.endswith(
        f'Execution of step "raw__files" failed. warehouse.duckdb is locked by process '
        f"{reader.pid} (opening it to write): waited 0.5s. Another labwh run, report, "
        "quarantine or dagster process is using it: try again when it ends, or raise "
        "$LABWH_LOCK_WAIT_S."
    )


def test_reprocess_while_a_run_holds_the_lock_exits_3(home, monkeypatch, capsys):
    from warehouse import params

    steps.build_core(home, params.core_params())  # a warehouse with a file of that day
    con = duckdb.connect(str(home.warehouse))
    con.execute(
        "INSERT INTO raw.files (file_sha256, feed, name, bytes, received_at, status) "
        "VALUES ('ab' || repeat('0', 62), 'hl7', 'hl7/a.hl7', 1, TIMESTAMP '2024-01-01 10:00', "
        "'parsed')"
    )
    con.close()
    monkeypatch.setenv(locks.WAIT_ENV, "0.3")
    holder = hold(HOLD_RUN_LOCK, home.run_lock, 30)
    try:
        assert cli.main(["reprocess", "--day", "2024-01-01"]) == 3
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert err.startswith("warehouse busy: another run") and "Traceback" not in err


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_a_bad_lock_wait_setting_is_a_message(home, monkeypatch, capsys, value):
    monkeypatch.setenv(locks.WAIT_ENV, value)
    assert cli.main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"setting: {locks.WAIT_ENV} must be a number") and value in err


def test_status_while_a_run_writes_shows_the_snapshot_and_says_so(warehouse, capsys):
    from warehouse import params
    from warehouse.publish import publish

    steps.start_run(warehouse, "published-run", warehouse.landing)
    steps.build_core(warehouse, params.core_params())
    writer = hold(HOLD_DB, warehouse.warehouse, "rw", 60)
    try:
        # nothing published yet: nothing else to show, the busy exit
        assert cli.main(["status"]) == 3
        assert f"process {writer.pid}" in capsys.readouterr().err
    finally:
        writer.kill()
        writer.wait()
    publish(warehouse)
    steps.start_run(warehouse, "writing-run", warehouse.landing)  # after the publish
    writer = hold(HOLD_DB, warehouse.warehouse, "rw", 60)
    try:
        t0 = time.monotonic()
        assert cli.main(["status"]) == 0
        waited = time.monotonic() - t0
    finally:
        writer.kill()
        writer.wait()
    out = capsys.readouterr().out
    assert waited < 30  # the short wait, not $LABWH_LOCK_WAIT_S (120 s)
    assert f"warehouse busy: warehouse.duckdb is locked by process {writer.pid}" in out
    assert "waited" not in out and "LABWH_LOCK_WAIT_S" not in out  # advice that does not apply
    assert "published-run" in out and "writing-run" not in out
    assert "core.fct_lab_result" in out
