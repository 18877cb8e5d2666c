"""Great Expectations suites over the warehouse tables, run on every pipeline run.

GX's SQL datasource does not work on DuckDB, so each table is pulled read-only as a frame
(``warehouse/queries/quality/gx_<table>.sql``, which also derives the integrity and date
columns) and validated with an ephemeral, offline GX context (analytics off). The suites
are declared in ``config/gx_suites.yaml``; plausible ranges come from
``config/plausible_ranges.csv``.

Patient identifiers never leave: results are computed with result format SUMMARY and
``partial_unexpected_count = 0`` (GX keeps no sample of failing values), and every stored
result is stripped of the value-bearing keys (``_strip_values``) anyway. Outputs per run:

- ``reports/quality/gx/<run_id>/<table>.json`` (stripped results) and ``summary.json``;
- one row per expectation in ``quality.gx_results``;
- Data Docs under ``reports/quality/data_docs/`` (index.html).

``import great_expectations`` takes seconds: it happens inside ``run_gx`` only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from schemas.validate import BMD_RANGE_SITES
from transforms.catalog import CONFIG_DIR, load_plausible_ranges
from transforms.records import latest_wall_clock
from transforms.reporting import offline_assets
from transforms.yamlfile import read_yaml
from warehouse.home import Home
from warehouse.quality_queries import connect_read_only, query, table_exists

SUITES_YAML = CONFIG_DIR / "gx_suites.yaml"

RESULT_FORMAT = {
    "result_format": "SUMMARY",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}
# keys of a GX result that can hold data values (never stored)
VALUE_KEYS = frozenset(
    {
        "partial_unexpected_list",
        "partial_unexpected_index_list",
        "partial_unexpected_counts",
        "unexpected_list",
        "unexpected_index_list",
        "unexpected_index_query",
        "unexpected_index_column_names",
        "unexpected_rows",
        "observed_value",
        "details",
    }
)
COUNT_KEYS = ("element_count", "unexpected_count", "unexpected_percent", "missing_count")
SITE_NAME = "labwh_quality"

log = logging.getLogger("labwh.quality_gx")


def quality_dir(home: Home) -> Path:
    return home.reports / "quality"


def data_docs_dir(home: Home) -> Path:
    return quality_dir(home) / "data_docs"


def results_dir(home: Home, run_id: str) -> Path:
    return quality_dir(home) / "gx" / run_id


def load_suites(path: Path = SUITES_YAML) -> dict[str, dict]:
    return read_yaml(path) or {}


def plausible_ranges() -> list[dict]:
    return load_plausible_ranges()


def expectation_specs(suite: dict, ranges: list[dict]) -> list[tuple[str, dict]]:
    """(GX expectation class name, keyword arguments) of one table's suite, in order."""
    out: list[tuple[str, dict]] = []
    for col in suite.get("not_null", []):
        out.append(("ExpectColumnValuesToNotBeNull", {"column": col}))
    for col in suite.get("unique", []):
        out.append(("ExpectColumnValuesToBeUnique", {"column": col}))
    for cols in suite.get("compound_unique", []):
        out.append(("ExpectCompoundColumnsToBeUnique", {"column_list": list(cols)}))
    for col, values in (suite.get("in_set") or {}).items():
        out.append(("ExpectColumnValuesToBeInSet", {"column": col, "value_set": list(values)}))
    for col, (lo, hi) in (suite.get("between") or {}).items():
        out.append(
            ("ExpectColumnValuesToBeBetween", {"column": col, "min_value": lo, "max_value": hi})
        )
    if suite.get("plausible_ranges"):
        col = suite["plausible_ranges"]
        for r in ranges:
            # a pandas query over config values (json.dumps quotes them), not SQL
            condition = f"analyte=={json.dumps(r['analyte'])} and unit=={json.dumps(r['unit'])}"
            out.append(
                (
                    "ExpectColumnValuesToBeBetween",
                    {
                        "column": col,
                        "min_value": r["min_value"],
                        "max_value": r["max_value"],
                        "row_condition": None if condition is None else str(condition),
                        "condition_parser": "pandas",
                    },
                )
            )
    return out


def _strip_values(obj: Any) -> Any:
    """A copy of a GX result with every value-bearing key removed, at any depth."""
    if isinstance(obj, dict):
        return {k: _strip_values(v) for k, v in obj.items() if k not in VALUE_KEYS}
    if isinstance(obj, list):
        return [_strip_values(v) for v in obj]
    return obj


def frame_params(as_of: dt.datetime) -> dict[str, Any]:
    """The parameters the suites' queries bind: the run date (the latest date anywhere at the
    run: the records' dates are their facility's), the BMD sites held to the main-site range."""
    return {"as_of": latest_wall_clock(as_of), "bmd_range_sites": list(BMD_RANGE_SITES)}


def load_frames(home: Home, suites: dict[str, dict], as_of: dt.datetime) -> dict[str, pl.DataFrame]:
    """The frame of every table that exists, from its quality query (read-only)."""
    con = connect_read_only(home.warehouse)
    try:
        return {
            table: query(con, suite["query"], frame_params(as_of))
            for table, suite in suites.items()
            if table_exists(con, table)
        }
    finally:
        con.close()


def _context(site_dir: Path):
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    ctx.add_data_docs_site(
        site_name=SITE_NAME,
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(site_dir),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    return gx, ctx


def _validate(gx, ctx, run_id: str, run_time: dt.datetime, frames, suites, ranges):
    import great_expectations.expectations as gxe
    from great_expectations.core.run_identifier import RunIdentifier

    source = ctx.data_sources.add_pandas("warehouse")
    results = {}
    for table, frame in frames.items():
        batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=table))
        for cls_name, kwargs in expectation_specs(suites[table], ranges):
            suite.add_expectation(getattr(gxe, cls_name)(**kwargs))
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=table, data=batch, suite=suite)
        )
        results[table] = vd.run(
            batch_parameters={"dataframe": frame.to_pandas()},
            result_format=RESULT_FORMAT,
            run_id=RunIdentifier(run_name=run_id, run_time=run_time),
        )
    return results


def _rows(run_id: str, evaluated_at: dt.datetime, table: str, result) -> list[dict]:
    rows = []
    for i, r in enumerate(result.results):
        kwargs = dict(r.expectation_config.kwargs)
        kwargs.pop("batch_id", None)
        column = kwargs.pop("column", None) or ",".join(kwargs.pop("column_list", []) or [])
        condition = kwargs.pop("row_condition", None)
        if isinstance(condition, dict):  # GX serializes a pandas condition as a dict
            condition = condition.get("pass_through_filter")
        condition = getattr(condition, "pass_through_filter", condition)
        kwargs.pop("condition_parser", None)
        counts = r.result or {}
        rows.append(
            {
                "run_id": run_id,
                "evaluated_at": evaluated_at,
                "table_name": table,
                "expectation_no": i,
                "expectation_type": r.expectation_config.type,
                "column_name": column or None,
                "row_condition": None if condition is None else str(condition),
                "arguments_json": json.dumps(kwargs, sort_keys=True, default=str),
                "success": bool(r.success),
                "element_count": counts.get("element_count"),
                "unexpected_count": counts.get("unexpected_count"),
                "unexpected_percent": counts.get("unexpected_percent"),
            }
        )
    return rows


GX_RESULT_SCHEMA = {
    "run_id": pl.String,
    "evaluated_at": pl.Datetime("us"),
    "table_name": pl.String,
    "expectation_no": pl.Int32,
    "expectation_type": pl.String,
    "column_name": pl.String,
    "row_condition": pl.String,
    "arguments_json": pl.String,
    "success": pl.Boolean,
    "element_count": pl.Int64,
    "unexpected_count": pl.Int64,
    "unexpected_percent": pl.Float64,
}


def _store_rows(home: Home, run_id: str, rows: list[dict]) -> None:
    from warehouse.steps import writer

    frame = pl.DataFrame(rows, schema=GX_RESULT_SCHEMA)
    with writer(home) as con:
        con.execute("BEGIN")
        con.execute("DELETE FROM quality.gx_results WHERE run_id = $r", {"r": run_id})
        con.register("_gx_rows", frame.to_arrow())
        try:
            con.execute("INSERT INTO quality.gx_results BY NAME SELECT * FROM _gx_rows")
        finally:
            con.unregister("_gx_rows")
        con.execute("COMMIT")


def make_offline(site: Path) -> None:
    """Give a built Data Docs site local copies of its CDN assets and point its pages at
    them (transforms/reporting/offline_assets.py); a remote tag without a copy is dropped and
    logged."""
    assets = offline_assets.load_assets()
    shutil.copytree(offline_assets.ASSETS_DIR, site / offline_assets.VENDOR_DIR, dirs_exist_ok=True)
    dropped: set[str] = set()
    for page in site.rglob("*.html"):
        html, gone = offline_assets.localize(
            page.read_text(encoding="utf-8"), assets, offline_assets.relative_root(page, site)
        )
        page.write_text(html, encoding="utf-8")
        dropped.update(gone)
    for url in sorted(dropped):
        log.warning(
            "Data Docs: no local copy of %s (config/data_docs_assets.yaml); tag dropped", url
        )


def run_gx(home: Home, run_id: str, *, as_of: dt.datetime | None = None) -> dict:
    """Validate every table of config/gx_suites.yaml; store results; build Data Docs.

    Returns a summary: overall success, per table the number of expectations and the failed
    ones (type, column, condition — no values), and where the outputs are.
    """
    as_of = as_of or dt.datetime.now().replace(microsecond=0)
    suites = load_suites()
    ranges = plausible_ranges()
    frames = load_frames(home, suites, as_of)
    # GX's site build keeps only the validations of its (ephemeral) context and drops every
    # other page: it builds into a scratch folder whose pages are then merged into the site,
    # so the pages of earlier runs (linked from their quality reports) stay
    quality_dir(home).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="data_docs_", dir=quality_dir(home)))
    try:
        gx, ctx = _context(scratch)
        results = _validate(gx, ctx, run_id, as_of, frames, suites, ranges)
        ctx.build_data_docs(site_names=[SITE_NAME])
        make_offline(scratch)
        shutil.copytree(scratch, data_docs_dir(home), dirs_exist_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    out_dir = results_dir(home, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    tables: dict[str, dict] = {}
    for table, result in results.items():
        stripped = _strip_values(result.to_json_dict())
        (out_dir / f"{table}.json").write_text(
            json.dumps(stripped, indent=1, sort_keys=True, default=str), encoding="utf-8"
        )
        table_rows = _rows(run_id, as_of, table, result)
        rows += table_rows
        failed = [
            {k: r[k] for k in ("expectation_type", "column_name", "row_condition")}
            | {"unexpected_count": r["unexpected_count"]}
            for r in table_rows
            if not r["success"]
        ]
        tables[table] = {
            "success": bool(result.success),
            "rows": frames[table].height,
            "n_expectations": len(table_rows),
            "n_failed": len(failed),
            "failed": failed,
        }
    _store_rows(home, run_id, rows)
    missing = sorted(set(suites) - set(frames))
    summary = {
        "run_id": run_id,
        "evaluated_at": as_of.isoformat(),
        # a table that could not be checked is not a pass
        "success": all(t["success"] for t in tables.values()) and not missing,
        "n_expectations": len(rows),
        "n_failed": sum(t["n_failed"] for t in tables.values()),
        "tables": tables,
        "missing_tables": missing,
        "data_docs": str(data_docs_dir(home) / "index.html"),
        "results_dir": str(out_dir),
    }
    (out_dir / "summary.json").write_text(
        json.dumps(summary, indent=1, sort_keys=True), encoding="utf-8"
    )
    return summary
