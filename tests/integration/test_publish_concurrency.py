"""Readers never block runs and runs never block readers (published snapshot swap)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from warehouse import params, steps
from warehouse.publish import publish

pytestmark = pytest.mark.integration

MEDS_HEADER = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity\n"
)


def _meds(i: int) -> str:
    return (
        MEDS_HEADER
        + f"MRN{i:07d},NORTH_CLINIC,dispense,199224,anastrozole 1 MG,1,mg,daily,2020-01-01,,30,30\n"
    )


def _run(home, landing, run_id):
    steps.start_run(home, run_id, landing)
    steps.land(home, landing, run_id)
    steps.stage(home, "meds", run_id)
    steps.build_core(home, params.core_params())
    publish(home)


READER = textwrap.dedent(
    """
    import os, sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    first = con.execute("SELECT count(*) FROM core.fct_medication").fetchone()[0]
    print("open", first, flush=True)
    deadline = time.time() + 120
    while not os.path.exists(sys.argv[2]) and time.time() < deadline:
        time.sleep(0.05)
    again = con.execute("SELECT count(*) FROM core.fct_medication").fetchone()[0]
    print("again", again, flush=True)
    """
)


def test_reader_holding_snapshot_open_while_run_publishes(home, tmp_path):
    landing = tmp_path / "landing"
    go = tmp_path / "go"
    (landing / "meds").mkdir(parents=True)
    (landing / "meds" / "a.csv").write_text(_meds(1))
    _run(home, landing, "r1")

    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(home.published), str(go)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().split() == ["open", "1"]
    # while the reader holds the old snapshot open, a run writes and publishes
    (landing / "meds" / "b.csv").write_text(_meds(2))
    _run(home, landing, "r2")  # would fail or hang if the open reader blocked the publish
    go.write_text("")
    out, err = reader.communicate(timeout=30)
    assert reader.returncode == 0, err
    assert out.split() == ["again", "1"]  # the reader's snapshot did not change under it
    con = duckdb.connect(str(home.published), read_only=True)
    assert con.execute("SELECT count(*) FROM core.fct_medication").fetchone()[0] == 2
    con.close()
