"""Build the cohort report of a run (docs/cohort_report.md).

Reads the published snapshot (``published/analytics.duckdb``), or the writer's warehouse
read-only when nothing is published yet, with the queries of ``warehouse/queries/cohort/``
(parameters bound, never pasted); statistics and rendering are in ``transforms/reporting``.
Writes ``reports/cohort/cohort_report.html`` and its PNG figures, and the same files under
``reports/cohort/runs/<run_id>/``. Wired into Dagster and ``labwh report``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from transforms import feature_config
from transforms.reporting import cohort_config, cohort_format
from transforms.reporting.cohort_select import CohortData
from warehouse import locks
from warehouse.home import Home
from warehouse.runner import bind, query_sql

HTML_NAME = "cohort_report.html"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def run_query(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> pd.DataFrame:
    """Run ``warehouse/queries/cohort/<name>.sql`` with the parameters it uses bound."""
    sql = query_sql("cohort", name)
    return con.execute(sql, bind(sql, params)).df()


def load_data(con: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> CohortData:
    return CohortData(
        patients=run_query(con, "patients", params),
        fractions=run_query(con, "fraction_below", params),
        bmd_trend=run_query(con, "bmd_trend", params),
        labs=run_query(con, "lab_values", params),
        dexa=run_query(con, "dexa_values", params),
    )


def _connect(home: Home) -> tuple[duckdb.DuckDBPyConnection, str]:
    if home.published.exists():
        return locks.connect(home.published, read_only=True), "published snapshot"
    if home.warehouse.exists():
        return locks.connect(home.warehouse, read_only=True), "warehouse (read-only)"
    raise FileNotFoundError("no published snapshot and no warehouse under the home folder")


def _provenance(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """The data date and the feature parameters of the snapshot, for the report's header."""
    dates = run_query(con, "data_through", {}).iloc[0]
    # to the month: the last day with data is one patient's event date
    through = ", ".join(
        f"{what} {value:%Y-%m}"
        for what, value in (("labs", dates["last_lab_date"]), ("DXA", dates["last_scan_date"]))
        if not pd.isna(value)
    )
    try:
        state = run_query(con, "feature_state", {})
    except duckdb.CatalogException:  # a snapshot published before raw.feature_state was
        state = pd.DataFrame(columns=["model", "params_json"])
    params = {r.model: json.loads(r.params_json).get("params", {}) for r in state.itertuples()}
    return [
        ("Data through", through or "no dated record"),
        ("Feature parameters", cohort_format.feature_parameters(params)),
    ]


def _version() -> str:
    try:
        return importlib.metadata.version("labwh")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree not installed
        return "(source tree)"


def latest_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The latest pipeline run that did not fail (``raw.runs``), or None."""
    try:
        row = run_query(con, "latest_run", {})
    except duckdb.CatalogException:
        return None
    return None if row.empty else str(row["run_id"].iloc[0])


def _checked_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise ValueError("run_id may hold letters, digits, '.', '_' and '-' only")
    return run_id


def _write(path: Path, data: bytes) -> None:
    """Write atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_report(folder: Path, html: str, figures) -> tuple[Path, list[Path]]:
    pngs = []
    for f in figures:
        p = folder / f"{f.name}.png"
        _write(p, f.png)
        pngs.append(p)
    html_path = folder / HTML_NAME
    _write(html_path, html.encode("utf-8"))
    return html_path, pngs


def build_cohort_report(
    home: Home | str | os.PathLike | None,
    run_id: str | None = None,
    config_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Build the cohort report; returns its paths and a markdown preview table.

    ``home``: a ``Home`` or its root folder (None: ``$LABWH_HOME``). ``run_id``: names the
    per-run copy (default: the latest run in ``raw.runs`` that did not fail, else ``adhoc-<time>``).
    ``config_path``: cohort definitions (default ``config/cohorts.yaml``).
    """
    # scipy.stats and matplotlib take seconds to import: only when a report is built, not
    # when Dagster loads the definitions that reference this function
    from transforms.reporting.cohort_build import build_content

    home = home if isinstance(home, Home) else Home.from_env(home)
    cfg = cohort_config.load(config_path)
    ingredient = feature_config.load().e2.anastrozole_ingredient
    generated = dt.datetime.now().replace(microsecond=0)
    con, source = _connect(home)
    try:
        data = load_data(con, cfg.query_params(ingredient))
        run_id = run_id or latest_run(con) or f"adhoc-{generated:%Y%m%dT%H%M%S}"
        provenance = _provenance(con)
    finally:
        con.close()
    run_id = _checked_run_id(run_id)
    config_file = Path(config_path or cohort_config.CONFIG_PATH)
    config_sha = hashlib.sha256(config_file.read_bytes()).hexdigest()[:12]
    meta = [
        ("Run", run_id),
        ("Generated", generated.astimezone().isoformat(sep=" ")),
        ("Source", source),
        *provenance,
        ("Cohort definitions", f"{config_file.name} (sha256 {config_sha}…)"),
        ("Software", f"labwh {_version()}"),
    ]
    content = build_content(cfg, data, meta)
    out_dir = home.reports / "cohort"
    run_html, run_pngs = _write_report(out_dir / "runs" / run_id, content.html, content.figures)
    html_path, pngs = _write_report(out_dir, content.html, content.figures)
    return {
        "run_id": run_id,
        "source": source,
        "html_path": str(html_path),
        "figure_paths": [str(p) for p in pngs],
        "run_html_path": str(run_html),
        "run_figure_paths": [str(p) for p in run_pngs],
        "preview_markdown": content.preview_markdown,
    }
