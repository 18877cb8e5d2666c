"""Incremental refresh of the feature marts equals a full rebuild.

Build both marts in full, change the inputs of a few patients (a corrected value, a deleted
patient, new results, a new scan from another manufacturer, a new anastrozole episode, a new
patient), refresh only those patients, and compare every row and column with a fresh full
rebuild of the same inputs.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
from feature_reference import (
    BMD,
    E2,
    Episode,
    Lab,
    Scan,
    assert_rows_equal,
    bmd_rows,
    build,
    default_params,
    e2_rows,
    insert,
    new_warehouse,
)

from warehouse import runner


def random_cohort(seed: int, n_patients: int = 25):
    rng = random.Random(seed)
    labs, scans, episodes = [], [], []
    for i in range(n_patients):
        key = f"p{i:02d}"
        day = dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(900))
        for _ in range(rng.randint(1, 9)):
            day += dt.timedelta(days=rng.choice([30, 90, 120, 180, 181, 200, 365]))
            comparator = rng.choice([None, None, None, "<"])
            labs.append(Lab(key, day.isoformat(), rng.randrange(0, 240) / 4, comparator))
        start = dt.date(2018, 1, 1) + dt.timedelta(days=rng.randrange(900))
        maker = rng.choice(["Hologic", "GE Lunar"])
        for k in range(rng.randint(0, 4)):
            when = (start + dt.timedelta(days=400 * k)).isoformat()
            bmd = 1.0 - 0.01 * k + rng.random() / 100
            scans.append(Scan(key, when, "lumbar_spine", bmd, maker, None, 1000 * bmd))
            scans.append(Scan(key, when, "total_hip", bmd - 0.1, maker, "left", 900 * bmd))
        if rng.random() < 0.5:
            es = dt.date(2018, 6, 1) + dt.timedelta(days=rng.randrange(900))
            episodes.append(Episode(key, es.isoformat(), (es + dt.timedelta(days=200)).isoformat()))
    return labs, scans, episodes


def change_some_patients(con) -> list[str]:
    """Edit the core tables for a few patients; returns the keys a run would report touched."""
    con.execute(  # a corrected result: the table holds the new value
        "UPDATE core.fct_lab_result SET value = value + 17.25, result_status = 'C'"
        " WHERE patient_key = 'p03' AND collected_at = (SELECT min(collected_at)"
        " FROM core.fct_lab_result WHERE patient_key = 'p03')"
    )
    con.execute("DELETE FROM core.fct_lab_result WHERE patient_key = 'p05'")
    con.execute("DELETE FROM core.fct_dexa_scan WHERE patient_key = 'p05'")
    insert(con, [Lab("p07", "2024-02-29 07:00", 8.5), Lab("p07", "2024-03-30", 40.0, "<")])
    insert(con, [Scan("p07", "2024-05-01", "lumbar_spine", 1.2, "Norland", None, 1111.0, True)])
    insert(con, [Episode("p09", "2019-01-01", "2021-12-31")])
    insert(
        con,
        [Lab("new", "2022-12-01", 12.0), Lab("new", "2023-02-01", 31.0)]
        + [Lab("new", "2023-02-01", 29.0)],
    )
    insert(con, [Scan("new", "2021-01-01", "femoral_neck", 0.8, side="right")])
    return ["p03", "p05", "p07", "p09", "new"]


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_refresh_equals_full_rebuild(tmp_path, seed):
    con = new_warehouse(tmp_path / "warehouse.duckdb")
    labs, scans, episodes = random_cohort(seed)
    insert(con, labs)
    insert(con, scans)
    insert(con, episodes)
    build(con)
    before_e2, before_bmd = e2_rows(con), bmd_rows(con)

    touched = change_some_patients(con)
    build(con, patient_keys=touched)
    incremental_e2, incremental_bmd = e2_rows(con), bmd_rows(con)

    build(con)  # fresh full rebuild of the same inputs
    full_e2, full_bmd = e2_rows(con), bmd_rows(con)

    assert_rows_equal(incremental_e2, full_e2)
    assert_rows_equal(incremental_bmd, full_bmd)
    # the change was real, and it reached only the touched patients
    assert not any(k[0] == "p05" for k in full_e2) and any(k[0] == "p05" for k in before_e2)
    assert any(k[0] == "new" for k in full_e2) and ("new", "femoral_neck") in full_bmd
    assert full_e2[("p03", 20.0, "overall")] != before_e2[("p03", 20.0, "overall")]
    assert full_bmd[("p07", "lumbar_spine")]["uses_sbmd"] is True
    # (doubles with the tolerance: parallel float aggregation may differ in the last bit)
    for before, after in ((before_e2, full_e2), (before_bmd, full_bmd)):
        assert_rows_equal(
            {k: v for k, v in after.items() if k[0] not in touched},
            {k: v for k, v in before.items() if k[0] not in touched},
        )


def test_refresh_of_no_patient_changes_nothing():
    con = new_warehouse()
    labs, scans, episodes = random_cohort(3, n_patients=8)
    insert(con, labs)
    insert(con, scans)
    insert(con, episodes)
    build(con)
    before = e2_rows(con), bmd_rows(con)
    assert runner.materialize(con, E2, default_params(), patient_keys=[]) == len(before[0])
    assert runner.materialize(con, BMD, default_params(), patient_keys=[]) == len(before[1])
    assert (e2_rows(con), bmd_rows(con)) == before


def test_incremental_run_on_a_missing_mart_builds_every_patient():
    # runner fix: the first run of a pipeline may be incremental; the mart must not end up
    # holding only the touched patients
    con = new_warehouse()
    labs, scans, episodes = random_cohort(4, n_patients=6)
    insert(con, labs)
    insert(con, scans)
    build(con, patient_keys=["p01"])
    partial_first = e2_rows(con), bmd_rows(con)
    build(con)
    assert_rows_equal(partial_first[0], e2_rows(con))
    assert_rows_equal(partial_first[1], bmd_rows(con))
    assert len({k[0] for k in partial_first[0]}) == 6
