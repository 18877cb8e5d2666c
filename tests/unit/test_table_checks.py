"""Table contracts (schemas/core.py) as checks: counts and check names, never values."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from schemas.checks import asset_check_specs, validate_frame, validate_table
from schemas.core import DimPatient, FeatBmdTrend, FeatE2Exposure

SECRET = "pkSECRETKEY123"


def _e2_row(**kw):
    row = {
        "patient_key": "p1",
        "threshold_pg_ml": 20.0,
        "period": "overall",
        "first_date": dt.date(2022, 1, 1),
        "last_date": dt.date(2022, 3, 2),
        "n_results": 2,
        "n_dates": 2,
        "n_censored": 0,
        "mean_e2_pg_ml": 15.0,
        "min_e2_pg_ml": 10.0,
        "max_e2_pg_ml": 20.0,
        "followup_days": 60,
        "interpolated_days": 60,
        "below_days": 60,
        "gap_days": 0,
        "indeterminate_days": 0,
        "fraction_below": 1.0,
        "anastrozole_days": 0,
        "anastrozole_below_days": 0,
    }
    row.update(kw)
    return row


def test_valid_frame_passes():
    frame = pl.DataFrame([_e2_row(), _e2_row(period="2022")])
    assert validate_frame(FeatE2Exposure, frame) == (True, 0, {}, 0)


def test_duplicate_and_null_keys_are_counted_without_values():
    frame = pl.DataFrame(
        {"patient_key": [SECRET, SECRET, None], "birth_year": [1950, 1951, 1960], "sex": "M"}
    )
    result = validate_frame(DimPatient, frame)
    # two rows share a key (both are failure cases), one key is NULL
    assert result == (
        False,
        3,
        {"patient_key:field_uniqueness": 2, "patient_key:not_nullable": 1},
        3,
    )
    assert SECRET not in repr(result)


def test_table_rule_counts_rows_breaking_the_day_arithmetic():
    good = _e2_row()
    bad_sum = _e2_row(period="2021", followup_days=61)  # 61 != 60 + 0 + 0
    bad_below = _e2_row(period="2023", below_days=61, fraction_below=None)  # below > interpolated
    bad_period = _e2_row(period="22")  # neither 'overall' nor YYYY
    frame = pl.DataFrame([good, bad_sum, bad_below, bad_period])
    passed, n, by_check, rows = validate_frame(FeatE2Exposure, frame)
    assert not passed
    assert by_check["day_counts_consistent"] == 2
    assert [k for k in by_check if k.startswith("period:")] == [
        "period:str_matches('^(overall|[0-9]{4})$')"
    ]
    assert rows == 3 and n == 3


def test_bmd_slope_must_exist_exactly_when_no_reason():
    base = {
        "patient_key": "p1",
        "site": "total_hip",
        "n_scans": 2,
        "first_scan_date": dt.date(2020, 1, 1),
        "last_scan_date": dt.date(2022, 1, 1),
        "span_years": 2.0,
        "first_bmd_g_cm2": 1.0,
        "last_bmd_g_cm2": 0.98,
        "change_g_cm2": -0.02,
        "lsc_g_cm2": 0.025,
        "exceeds_lsc": False,
        "slope_g_cm2_per_year": -0.01,
        "slope_se_g_cm2_per_year": None,
        "slope_pct_per_year": -1.0,
        "reason": None,
        "uses_sbmd": False,
        "sbmd_is_approximate": False,
        "n_manufacturers": 1,
        "manufacturers": "Hologic",
    }
    bad = dict(base, site="femoral_neck", reason="span_below_minimum")  # slope kept anyway
    out = validate_frame(FeatBmdTrend, pl.DataFrame([base, bad]))
    assert out[0] is False and out[2] == {"slope_null_iff_reason": 1}


def test_validate_table_reads_duckdb_and_reports_missing_tables():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    assert validate_table(con, "core.dim_patient")[:3] == (False, 1, {"table_exists": 1})
    con.execute(
        "CREATE TABLE core.dim_patient (patient_key VARCHAR, birth_year INTEGER, sex VARCHAR)"
    )
    con.execute("INSERT INTO core.dim_patient VALUES ('a', 1950, 'M'), ('b', NULL, NULL)")
    passed, n, by_check, meta = validate_table(con, "core.dim_patient")
    assert (passed, n, by_check) == (True, 0, {})  # INTEGER birth_year coerced to the contract
    assert meta["rows"] == 2
    con.execute("INSERT INTO core.dim_patient VALUES ('a', 1960, 'M')")
    assert validate_table(con, "core.dim_patient")[2] == {"patient_key:field_uniqueness": 2}


def test_specs_block_core_and_marts_only():
    specs = {s.table: s.blocking for s in asset_check_specs()}
    assert specs["core.fct_lab_result"] and specs["marts.feat_bmd_trend"]
    assert not specs["staging.stg_hl7__lab_result"]
    assert len(specs) == 13  # 4 staged + 7 core + 2 marts tables


def _lab_row(result_id, loinc, value, unit, **kw):
    from schemas.core import FctLabResult

    row = dict.fromkeys(FctLabResult.to_schema().columns)
    row.update(
        result_id=result_id,
        patient_key="p1",
        feed="hl7",
        source_system="LIS",
        loinc_code=loinc,
        is_mapped=loinc is not None,
        collected_at=dt.datetime(2023, 1, 5, 8, 30),
        value=value,
        unit=unit,
        result_status="F",
        n_versions=1,
        file_sha256="0" * 64,
        position="m0/s3",
        is_corrected=False,
    )
    row.update(kw)
    return row


def test_catalogued_results_must_be_in_the_canonical_unit_and_not_negative():
    from schemas.core import FctLabResult

    rows = [
        _lab_row("ok-e2", "2243-4", 18.4, "pg/mL"),
        _lab_row("ok-molar-e2", "14715-7", 20.0, "pg/mL"),  # converted from pmol/L
        _lab_row("ok-t", "2986-8", 450.0, "ng/dL"),
        _lab_row("ok-text", "2243-4", None, None, value_text="see note"),
        _lab_row("ok-unmapped", None, -3.0, "furlong"),  # outside the catalog: as sent
        _lab_row("bad-unit", "2243-4", 67.5, "pmol/L"),  # never converted
        _lab_row("bad-no-unit", "2986-8", 450.0, None),
        _lab_row("bad-sign", "2243-4", -1.0, "pg/mL"),
    ]
    passed, n, by_check, failed_rows = validate_frame(
        FctLabResult, pl.DataFrame(rows, schema=FctLabResult.to_schema().columns.keys())
    )
    assert (passed, by_check, failed_rows) == (False, {"canonical_unit": 3}, 3)


def test_main_site_bmd_must_be_in_its_range():
    from schemas.core import FctDexaScan

    def scan(site, bmd, l2_l4=None):
        return {"patient_key": "p1", "scan_date": dt.date(2022, 1, 1), "site": site,
                "side": None, "bmd_g_cm2": bmd, "bmd_l2_l4_g_cm2": l2_l4, "file_sha256": "f",
                "position": "line 2", "source_system": "hologic"}  # fmt: skip

    ok = [scan("wards", 0.19), scan("tb_head", 2.64), scan("lumbar_spine", 1.0, 1.1)]
    frame = pl.concat(
        [pl.DataFrame(schema=FctDexaScan.to_schema().columns.keys()), pl.DataFrame(ok)],
        how="diagonal_relaxed",
    )
    assert validate_frame(FctDexaScan, frame)[0]
    bad = pl.concat([frame, pl.DataFrame([scan("femoral_neck", 0.19)])], how="diagonal_relaxed")
    passed, _, by_check, rows = validate_frame(FctDexaScan, bad)
    assert not passed and rows == 1 and any("site_bmd_range" in k for k in by_check)
