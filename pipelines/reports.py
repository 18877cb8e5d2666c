"""Building the reports (thin: the work is in warehouse/ and transforms/reporting)."""

from __future__ import annotations

import json

from warehouse.cohort_report import build_cohort_report, latest_run
from warehouse.home import Home
from warehouse.quality_queries import connect_read_only
from warehouse.quality_report import build_quality_report


def gx(home: Home, run_id: str) -> dict:
    """The GX suites over the warehouse for ``run_id`` (imported lazily: ~6 s); its summary."""
    from warehouse.quality_gx import run_gx

    return run_gx(home, run_id)


def quality(home: Home, run_id: str, *, gx_again: bool = True) -> dict:
    """GX suites, then the quality report of ``run_id``.

    ``gx_again=False`` (the pipeline's report step, ``labwh report``) keeps the results the
    run stored, evaluated as of the run, and validates only a run that has none.
    """
    from warehouse.quality_gx import results_dir

    stored = results_dir(home, run_id) / "summary.json"
    if not gx_again and stored.exists():
        summary = json.loads(stored.read_text(encoding="utf-8"))
    else:
        summary = gx(home, run_id)
    path = build_quality_report(home, run_id)
    failed = sum(t.get("n_failed", 0) for t in summary.get("tables", {}).values())
    return {"html_path": str(path), "gx_success": bool(summary.get("success")), "gx_failed": failed}


def cohort(home: Home, run_id: str | None = None) -> dict:
    return build_cohort_report(home, run_id)


def build_all(home: Home) -> dict[str, str]:
    """Both reports for the latest run (``labwh report``)."""
    con = connect_read_only(home.warehouse)
    try:
        run_id = latest_run(con)
    finally:
        con.close()
    out = {}
    if run_id:
        out["quality report"] = quality(home, run_id, gx_again=False)["html_path"]
    out["cohort report"] = cohort(home, run_id)["html_path"]
    return out
