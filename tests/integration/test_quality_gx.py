"""Great Expectations over a built warehouse: the planted problems are found, results are
stored per run (JSON, quality.gx_results, Data Docs) and no identifier or value leaks."""

from __future__ import annotations

import datetime as dt
import json
import re

import duckdb
import pytest
import quality_fixture as qf

from schemas.checks import validate_table
from schemas.quality import QUALITY_MODELS
from warehouse.quality_gx import run_gx
from warehouse.quality_report import build_quality_report

AS_OF = dt.datetime(2024, 6, 1)


pytestmark = pytest.mark.integration


def _all_text(home) -> str:
    parts = []
    for path in sorted(home.reports.rglob("*")):
        if path.is_file():
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
            parts.append(path.name)
    return "\n".join(parts)


def _assert_pages_load_only_local_assets(site):
    """No Data Docs page loads a script, stylesheet or image from another host, and every
    local one it loads is in the site."""
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", html, flags=re.IGNORECASE):
            url = re.search(r"""\s(?:src|href)\s*=\s*["']([^"']*)["']""", tag)
            if url is None or url.group(1).startswith(("data:", "#")):
                continue
            assert not re.match(r"(?:https?:)?//", url.group(1)), (page.name, tag)
            assert (page.parent / url.group(1)).resolve().is_file(), (page.name, url.group(1))


def test_gx_finds_planted_problems_and_stores_no_values(home):
    qf.build_quality_warehouse(home)  # + an orphan, a future and a before-birth result
    summary = run_gx(home, qf.RUN_2, as_of=AS_OF)

    lab = summary["tables"]["core.fct_lab_result"]
    failed = {(f["column_name"], f["row_condition"]): f["unexpected_count"] for f in lab["failed"]}
    assert failed == {
        ("patient_in_dim", None): 1,  # PK_ORPHAN is not in core.dim_patient
        ("days_after_run_date", None): 1,  # collected 2999-01-01
        ("years_after_birth_year", None): 1,  # collected 1950, born 1958
        ("value", 'analyte=="testosterone_total" and unit=="ng/dL"'): 1,  # 98765 > 3000
    }
    assert lab["rows"] == 6 + 3
    others = {t: s["success"] for t, s in summary["tables"].items() if t != "core.fct_lab_result"}
    assert others == {
        "core.fct_dexa_scan": True,
        "core.fct_medication": True,
        "core.dim_patient": True,
        "marts.feat_e2_exposure": True,
        "marts.feat_bmd_trend": True,
    }
    assert summary["success"] is False and summary["n_failed"] == 4

    con = duckdb.connect(str(home.warehouse), read_only=True)
    rows = con.execute(
        "SELECT table_name, expectation_type, column_name, row_condition, arguments_json, "
        "success, element_count, unexpected_count FROM quality.gx_results WHERE run_id = $r",
        {"r": qf.RUN_2},
    ).fetchall()
    con.close()
    assert len(rows) == summary["n_expectations"]
    assert sum(1 for r in rows if not r[5]) == 4
    # one range expectation per analyte × unit of config/plausible_ranges.csv (11 rows)
    assert sum(1 for r in rows if r[0] == "core.fct_lab_result" and r[3]) == 11

    # outputs per run: stripped JSON per table, a summary, Data Docs pages for this run
    out = home.reports / "quality" / "gx" / qf.RUN_2
    assert {p.name for p in out.iterdir()} == {f"{t}.json" for t in summary["tables"]} | {
        "summary.json"
    }
    assert json.loads((out / "summary.json").read_text())["n_failed"] == 4
    docs = home.reports / "quality" / "data_docs"
    assert (docs / "index.html").exists()
    assert list((docs / "validations" / "core" / "fct_lab_result" / qf.RUN_2).rglob("*.html"))
    _assert_pages_load_only_local_assets(docs)

    report = build_quality_report(home)
    html = report.read_text()
    assert 'href="data_docs/validations/core/fct_lab_result/run-0002/' in html

    # no identifier, key or planted value anywhere under reports/ nor in quality.gx_results
    text = _all_text(home) + "\n".join(map(str, rows))
    leaked = [s for s in qf.SECRETS if s in text]
    assert leaked == []

    # the bookkeeping tables the report reads keep their contracts (schemas/quality.py)
    con = duckdb.connect(str(home.warehouse), read_only=True)
    for table in QUALITY_MODELS:
        assert validate_table(con, table)[:3] == (True, 0, {}), table
    con.close()

    # the same run again replaces its rows
    run_gx(home, qf.RUN_2, as_of=AS_OF)
    con = duckdb.connect(str(home.warehouse), read_only=True)
    n = con.execute(
        "SELECT count(*) FROM quality.gx_results WHERE run_id = $r", {"r": qf.RUN_2}
    ).fetchone()[0]
    con.close()
    assert n == len(rows)

    # another run's validation keeps this run's pages (its quality report links to them)
    run_gx(home, qf.RUN_1, as_of=AS_OF)
    for run in (qf.RUN_1, qf.RUN_2):
        assert list((docs / "validations" / "core" / "fct_lab_result" / run).rglob("*.html")), run
    assert not [p for p in (home.reports / "quality").iterdir() if p.name.startswith("data_docs_")]

    # `labwh report` keeps the results a run stored (evaluated as of the run), only the report
    # is rebuilt
    from pipelines import reports

    reports.quality(home, qf.RUN_2, gx_again=False)
    con = duckdb.connect(str(home.warehouse), read_only=True)
    evaluated = con.execute(
        "SELECT DISTINCT evaluated_at FROM quality.gx_results WHERE run_id = $r", {"r": qf.RUN_2}
    ).fetchall()
    con.close()
    assert evaluated == [(AS_OF,)]


def test_gx_frames_keep_one_row_per_row_when_dim_patient_repeats_a_key(home):
    from warehouse.quality_gx import frame_params, load_suites
    from warehouse.quality_queries import query

    qf.build_quality_warehouse(home)
    con = duckdb.connect(str(home.warehouse))
    try:
        # a patient twice in dim_patient (a broken contract its own suite reports)
        con.execute(
            "INSERT INTO core.dim_patient SELECT patient_key, birth_year + 1, sex "
            "FROM core.dim_patient LIMIT 1"
        )
        for table, suite in load_suites().items():
            frame = query(con, suite["query"], frame_params(AS_OF))
            (n,) = con.execute("SELECT count(*) FROM " + table).fetchone()  # noqa: S608
            assert frame.height == n, table
    finally:
        con.close()
