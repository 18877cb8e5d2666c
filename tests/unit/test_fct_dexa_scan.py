"""core.fct_dexa_scan: a measurement exported more than once is kept once, the last copy."""

from __future__ import annotations

import datetime as dt

from staging_fixture import core_from_staged

from schemas.staging import StgDexaScan

RUN_1 = dt.datetime(2024, 1, 1)
RUN_2 = dt.datetime(2024, 2, 1)
SCAN = {
    "source_system": "hologic",
    "patient_key": "pk",
    "scan_date": dt.date(2023, 6, 1),
    "site": "lumbar_spine",
    "region": "L1-L4",
    "manufacturer": "Hologic",
}


def kept_bmd(rows: list[dict], files: dict) -> list[tuple]:
    con = core_from_staged(
        "core.fct_dexa_scan", "stg_dexa__scan", StgDexaScan, [{**SCAN, **r} for r in rows], files
    )
    return con.execute("SELECT bmd_g_cm2 FROM core.fct_dexa_scan").fetchall()


def test_the_last_line_of_a_file_wins_in_number_order():
    # a rescan the same day at lines 9 and 10: line 10 (text order would pick 'line 9')
    rows = [
        {"file_sha256": "f1", "position": "line 9", "bmd_g_cm2": 0.901},
        {"file_sha256": "f1", "position": "line 10", "bmd_g_cm2": 0.902},
    ]
    assert kept_bmd(rows, {"f1": ("dexa/hologic/a.csv", RUN_1)}) == [(0.902,)]


def test_the_last_landing_name_wins_within_a_run_and_a_later_run_over_both():
    # sha order (ff after aa) would pick 0.800; the landing names make b.csv the later export
    rows = [
        {"file_sha256": "ff", "position": "line 2", "bmd_g_cm2": 0.800},
        {"file_sha256": "aa", "position": "line 2", "bmd_g_cm2": 0.900},
    ]
    files = {"ff": ("dexa/hologic/a.csv", RUN_1), "aa": ("dexa/hologic/b.csv", RUN_1)}
    assert kept_bmd(rows, files) == [(0.900,)]
    files = {"ff": ("dexa/hologic/a.csv", RUN_2), "aa": ("dexa/hologic/b.csv", RUN_1)}
    assert kept_bmd(rows, files) == [(0.800,)]
