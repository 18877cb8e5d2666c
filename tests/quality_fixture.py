"""A small warehouse for the quality tests, built through the real steps.

Staged rows are written straight into the staged tables (no parser needed), then
``warehouse.steps.build_core`` / ``build_features`` build core and marts. Every identifier
and value is a recognisable fake so tests can grep outputs for leaks (``SECRETS``).
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from schemas import staging as stg
from warehouse import params, steps

PK_A = "pkFAKEKEYALPHA0001"
PK_B = "pkFAKEKEYBRAVO0002"
PK_ORPHAN = "pkFAKEORPHAN9999"  # in a fact, not in dim_patient (integrity failure)
E2_ODD_VALUE = 23.456789  # a distinctive accepted value
T_IMPLAUSIBLE = 98765.4321  # testosterone outside config/plausible_ranges.csv
FAKE_MRN = "MRN0099887"
FAKE_NAME = "DOEFAKE^JANEFAKE"
SECRETS = (PK_A, PK_B, PK_ORPHAN, "23.456789", "98765.4321", FAKE_MRN, "DOEFAKE", "JANEFAKE")

RUN_1 = "run-0001"
RUN_2 = "run-0002"
SHA_HL7 = "a" * 64
SHA_CSV = "b" * 64
SHA_DXA = "c" * 64


def _frame(model, rows: list[dict]) -> pl.DataFrame:
    cols = stg.columns_of(model)
    return pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], schema=cols)


def _lab(pk, n, collected, value, *, loinc="2243-4", analyte="estradiol", unit="pg/mL", **kw):
    row = {
        "file_sha256": SHA_HL7,
        "position": f"m{n}/s3",
        "source_system": "LABWH_LIS",
        "patient_key": pk,
        "message_control_id": f"MSG{n:04d}",
        "sending_facility": "NORTH_CLINIC",
        "message_at": collected,
        "message_index": n,
        "segment_index": 3,
        "filler_order_number": f"FIL{n:04d}",
        "collected_at": collected,
        "source_code": "E2" if loinc == "2243-4" else "X",
        "loinc_code": loinc,
        "analyte": analyte,
        "is_mapped": loinc is not None,
        "original_value": str(value),
        "original_unit": unit,
        "value": value,
        "unit": unit,
        "result_status": "F",
        "birth_year": 1958,
        "sex": "M",
    }
    row.update(kw)
    return row


def _insert(con, table: str, frame: pl.DataFrame) -> None:
    con.register("_rows", frame.to_arrow())
    try:
        con.execute("INSERT INTO " + table + " BY NAME SELECT * FROM _rows")  # noqa: S608
    finally:
        con.unregister("_rows")


def build_quality_warehouse(home, *, with_marts: bool = True, with_bad_rows: bool = True) -> None:
    """Two runs' worth of bookkeeping, two patients' results and scans, core and marts."""
    t = dt.datetime
    labs = [
        _lab(PK_A, 0, t(2022, 1, 10, 8, 30), 18.0),
        _lab(PK_A, 1, t(2022, 4, 10, 8, 30), E2_ODD_VALUE),
        _lab(PK_A, 2, t(2022, 7, 10, 8, 30), 5.0, comparator="<", detection_limit=5.0),
        _lab(PK_B, 3, t(2023, 2, 1, 9, 0), 31.0),
        _lab(
            PK_B,
            4,
            t(2023, 8, 1, 9, 0),
            512.0,
            loinc="2986-8",
            analyte="testosterone_total",
            unit="ng/dL",
        ),
        _lab(PK_B, 5, t(2023, 8, 1, 9, 0), 4.2, loinc=None, analyte="Ferritin", unit="ug/L"),
    ]
    scans = [
        {
            "file_sha256": SHA_DXA,
            "position": f"line {i + 2}",
            "source_system": "hologic",
            "patient_key": PK_A,
            "scan_id": f"S{i}",
            "scan_date": dt.date(2021 + i, 3, 1),
            "site": "lumbar_spine",
            "region": "L1-L4",
            "bmd_g_cm2": 1.10 - 0.01 * i,
            "t_score": -0.5,
            "z_score": -0.2,
            "manufacturer": "Hologic",
            "model": "Horizon A",
            "serial": "H1",
            "birth_year": 1958,
            "sex": "M",
        }
        for i in range(3)
    ]
    with steps.writer(home) as con:
        _insert(con, "staging.stg_hl7__lab_result", _frame(stg.StgLabResult, labs))
        _insert(con, "staging.stg_dexa__scan", _frame(stg.StgDexaScan, scans))
        _bookkeeping(con)
    steps.build_core(home, params.core_params())
    if with_marts:
        steps.build_features(home, params.feature_params(), RUN_2, full=True)
    if with_bad_rows:
        add_bad_core_rows(home)


def add_bad_core_rows(home) -> None:
    """Rows core itself would never produce: an orphan patient, an implausible value, a
    future collection and a collection before the patient's birth year."""
    con = duckdb.connect(str(home.warehouse))
    try:
        base = (
            "INSERT INTO core.fct_lab_result (result_id, patient_key, feed, source_system, "
            "loinc_code, analyte, is_mapped, collected_at, value, unit, result_status, "
            "n_versions, is_corrected, file_sha256, position) VALUES "
            "($id, $pk, 'hl7', 'LABWH_LIS', $loinc, $analyte, true, $t, $v, $u, 'F', 1, false, "
            "$sha, $pos)"
        )
        con.execute(
            base,
            {
                "id": "bad-orphan",
                "pk": PK_ORPHAN,
                "loinc": "2986-8",
                "analyte": "testosterone_total",
                "t": dt.datetime(2023, 9, 1),
                "v": T_IMPLAUSIBLE,
                "u": "ng/dL",
                "sha": SHA_HL7,
                "pos": "m9/s3",
            },
        )
        con.execute(
            base,
            {
                "id": "bad-future",
                "pk": PK_B,
                "loinc": "2243-4",
                "analyte": "estradiol",
                "t": dt.datetime(2999, 1, 1),
                "v": 20.0,
                "u": "pg/mL",
                "sha": SHA_HL7,
                "pos": "m10/s3",
            },
        )
        con.execute(
            base,
            {
                "id": "bad-before-birth",
                "pk": PK_A,
                "loinc": "2243-4",
                "analyte": "estradiol",
                "t": dt.datetime(1950, 1, 1),
                "v": 20.0,
                "u": "pg/mL",
                "sha": SHA_HL7,
                "pos": "m11/s3",
            },
        )
    finally:
        con.close()


def _bookkeeping(con) -> None:
    """raw.files, raw.runs, quality.run_feed_stats and quality.quarantine for two runs."""
    t1, t2 = dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 2, 10)
    con.execute(
        "INSERT INTO raw.runs (run_id, started_at, finished_at, status) VALUES "
        "($r1, $t1, $t1, 'success'), ($r2, $t2, $t2, 'success')",
        {"r1": RUN_1, "r2": RUN_2, "t1": t1, "t2": t2},
    )
    files = [
        (SHA_HL7, "hl7", None, "hl7/batch1.hl7", t1, RUN_1, 9, 6, 3),
        (SHA_CSV, "lab_csv", "northlab", "lab_csv/northlab/a.csv", t2, RUN_2, 4, 3, 1),
        (SHA_DXA, "dexa", "hologic", "dexa/hologic/x.csv", t2, RUN_2, 3, 3, 0),
    ]
    for sha, feed, source, name, t, run, rec, acc, q in files:
        con.execute(
            "INSERT INTO raw.files VALUES ($s, $f, $src, $n, 100, $t, 'parsed', $r, $rec, $acc, $q)",
            {
                "s": sha,
                "f": feed,
                "src": source,
                "n": name,
                "t": t,
                "r": run,
                "rec": rec,
                "acc": acc,
                "q": q,
            },
        )
        con.execute(
            "INSERT INTO quality.run_feed_stats VALUES ($r, $f, 1, $rec, $acc, $q)",
            {"r": run, "f": feed, "rec": rec, "acc": acc, "q": q},
        )
    quarantine = [
        (
            SHA_HL7,
            "m6/s3",
            "hl7",
            None,
            "unknown_unit",
            "unit 'pg/dL' has no conversion for estradiol",
            "estradiol 12 pg/dL",
            RUN_1,
            t1,
        ),
        (
            SHA_HL7,
            "m7",
            "hl7",
            None,
            "malformed_message",
            "segment id not 3 letters",
            f"PID|1||{FAKE_MRN}^^^NORTH_CLINIC^MR||{FAKE_NAME}||19580312|M",
            RUN_1,
            t1,
        ),
        (
            SHA_HL7,
            "m8/s3",
            "hl7",
            None,
            "implausible_value",
            "testosterone_total 99999 ng/dL outside",
            "testosterone_total 99999 ng/dL",
            RUN_1,
            t1,
        ),
        (
            SHA_CSV,
            "line 4",
            "lab_csv",
            "northlab",
            "unknown_unit",
            "unit 'pg/dL' has no conversion",
            "estradiol 11 pg/dL",
            RUN_2,
            t2,
        ),
    ]
    for row in quarantine:
        con.execute(
            "INSERT INTO quality.quarantine (file_sha256, position, feed, source, check_name, "
            "reason, excerpt, run_id, quarantined_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            list(row),
        )
