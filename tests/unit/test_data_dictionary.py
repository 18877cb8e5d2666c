"""The data dictionary and the DuckDB comments come from the Pandera models, and the committed
docs/data_dictionary.md is what the models render (regenerate:
``.venv/bin/python -m schemas.dictionary > docs/data_dictionary.md``)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from schemas.dictionary import (
    apply_comments,
    render_data_dictionary,
    sql_literal,
    table_models,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "data_dictionary.md"

CONTRACT_TABLES = {
    "core.fct_lab_result",
    "core.fct_lab_result_history",
    "core.fct_dexa_scan",
    "core.fct_medication",
    "core.medication_exposure",
    "core.dim_patient",
    "core.ref_omop_concept",
    "marts.feat_e2_exposure",
    "marts.feat_bmd_trend",
    "staging.stg_hl7__lab_result",
    "staging.stg_lab_csv__lab_result",
    "staging.stg_dexa__scan",
    "staging.stg_meds__medication",
    "raw.files",
    "raw.runs",
    "raw.feature_state",
    "quality.quarantine",
    "quality.run_feed_stats",
    "quality.gx_results",
}


def test_committed_dictionary_matches_the_models():
    assert DOC.read_text(encoding="utf-8") == render_data_dictionary(), (
        "docs/data_dictionary.md drifted from schemas/: run "
        "`.venv/bin/python -m schemas.dictionary > docs/data_dictionary.md`"
    )


def test_every_table_states_its_grain_and_every_column_is_described():
    models = table_models()
    assert set(models) == CONTRACT_TABLES
    for name, model in models.items():
        schema = model.to_schema()
        text = (schema.description or "").lower()
        assert "grain" in text or "one row per" in text, name
        for col, spec in schema.columns.items():
            assert spec.description and spec.description.strip(), f"{name}.{col}"


def test_contract_columns_of_docs_are_in_the_models():
    cols = {n: set(m.to_schema().columns) for n, m in table_models().items()}
    # DESIGN.md "The contract", docs/features.md column lists
    assert {"patient_key", "birth_year", "sex"} <= cols["core.dim_patient"]
    assert {
        "patient_key",
        "scan_date",
        "site",
        "side",
        "bmd_g_cm2",
        "sbmd_mg_cm2",
        "t_score",
        "z_score",
        "manufacturer",
        "model",
        "serial",
    } <= cols["core.fct_dexa_scan"]
    assert {
        "patient_key",
        "source_code",
        "source_system",
        "loinc_code",
        "analyte",
        "is_mapped",
        "collected_at",
        "value",
        "unit",
        "comparator",
        "original_value",
        "original_unit",
        "detection_limit",
        "method",
        "result_status",
        "file_sha256",
    } <= cols["core.fct_lab_result"]
    e2 = (
        "patient_key, threshold_pg_ml, period, first_date, last_date, n_results, n_dates, "
        "n_censored, mean_e2_pg_ml, min_e2_pg_ml, max_e2_pg_ml, followup_days, "
        "interpolated_days, below_days, gap_days, indeterminate_days, fraction_below, "
        "anastrozole_days, anastrozole_below_days"
    )
    e2_model = table_models()["marts.feat_e2_exposure"].to_schema()
    assert [c.strip() for c in e2.split(",")] == list(e2_model.columns)
    assert {
        "n_scans",
        "first_scan_date",
        "last_scan_date",
        "span_years",
        "first_bmd_g_cm2",
        "last_bmd_g_cm2",
        "change_g_cm2",
        "lsc_g_cm2",
        "exceeds_lsc",
        "slope_g_cm2_per_year",
        "slope_se_g_cm2_per_year",
        "slope_pct_per_year",
        "reason",
        "uses_sbmd",
        "sbmd_is_approximate",
        "n_manufacturers",
        "manufacturers",
    } <= cols["marts.feat_bmd_trend"]


@pytest.mark.parametrize(
    "text", ["plain", "patient's key", "a''b", "x'; DROP TABLE t; --", "µg/L ≥ 5 — “quoted”"]
)
def test_sql_literal_round_trips_through_duckdb(text):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (a INTEGER)")
    con.execute("COMMENT ON TABLE t IS " + sql_literal(text))
    assert con.execute("SELECT comment FROM duckdb_tables() WHERE table_name = 't'").fetchone() == (
        text,
    )
    assert con.execute("SELECT count(*) FROM t").fetchone() == (0,)  # still there


def test_sql_literal_refuses_nul():
    with pytest.raises(ValueError):
        sql_literal("a\x00b")


def test_apply_comments_sets_table_and_column_comments_of_present_tables():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA core")
    # only some columns present: comments go to what exists, nothing else is created
    con.execute("CREATE TABLE core.dim_patient (patient_key VARCHAR, birth_year BIGINT)")
    n = apply_comments(con)
    assert n == 3  # the table + its two present columns
    model = table_models()["core.dim_patient"].to_schema()
    (table_comment,) = con.execute(
        "SELECT comment FROM duckdb_tables() WHERE table_name = 'dim_patient'"
    ).fetchone()
    assert table_comment == " ".join(model.description.split())
    cols = dict(
        con.execute(
            "SELECT column_name, comment FROM duckdb_columns() WHERE table_name = 'dim_patient'"
        ).fetchall()
    )
    assert cols == {
        "patient_key": model.columns["patient_key"].description,
        "birth_year": model.columns["birth_year"].description,
    }
    tables = con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0]
    assert tables == 1


def test_rendered_dictionary_lists_every_column_once_per_table():
    text = render_data_dictionary()
    for name, model in table_models().items():
        section = text.split(f"### `{name}`", 1)[1].split("\n### ", 1)[0]
        for col in model.to_schema().columns:
            assert section.count(f"| `{col}` |") == 1, (name, col)
