"""Build the quality report of a run (docs/quality.md).

Reads the warehouse read-only with the queries of ``warehouse/queries/quality/`` (parameters
bound), renders with ``transforms.reporting.quality_html`` and writes
``reports/quality/quality_report.html`` (the latest run) and
``reports/quality/runs/<run_id>.html`` (every run), both self-contained, with relative links
to the Great Expectations Data Docs under ``reports/quality/data_docs/``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from pathlib import Path

from transforms.reporting.quality_html import QualityReportData, render_quality_report
from warehouse.home import Home
from warehouse.identity import known_words
from warehouse.quality_gx import data_docs_dir, quality_dir
from warehouse.quality_queries import connect_read_only, query, table_exists

REPORT_NAME = "quality_report.html"
N_EXAMPLES = 5
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _rows(frame) -> list[dict]:
    return frame.to_dicts()


def data_docs_links(home: Home, run_id: str, prefix: str) -> tuple[dict[str, str], str | None]:
    """Table → relative link of its newest Data Docs validation page for ``run_id``."""
    root = data_docs_dir(home)
    links: dict[str, tuple[str, str]] = {}
    validations = root / "validations"
    if validations.is_dir():
        # validations/<schema>/<table>/<run_name>/<run_time>/<batch>.html
        for page in validations.glob(f"*/*/{run_id}/*/*.html"):
            schema, table, _, run_time = page.relative_to(validations).parts[:4]
            name = f"{schema}.{table}"
            rel = prefix + page.relative_to(root.parent).as_posix()
            if name not in links or run_time > links[name][0]:
                links[name] = (run_time, rel)
    index = root / "index.html"
    index_link = prefix + index.relative_to(root.parent).as_posix() if index.exists() else None
    return {k: v[1] for k, v in links.items()}, index_link


def load_report_data(home: Home, run_id: str | None = None) -> QualityReportData:
    known = known_words(home.identity_db)
    con = connect_read_only(home.warehouse)
    try:
        runs = _rows(query(con, "runs"))
        if run_id is None and runs:
            run_id = runs[-1]["run_id"]
        p = {"run_id": run_id, "n_examples": N_EXAMPLES}
        has_gx = table_exists(con, "quality.gx_results")
        return QualityReportData(
            run_id=run_id,
            generated_at=dt.datetime.now().replace(microsecond=0).isoformat(sep=" "),
            runs=runs,
            feed_stats=_rows(query(con, "run_feed_stats")),
            files=_rows(query(con, "run_files", p)),
            reasons=_rows(query(con, "quarantine_reasons", p)),
            open_by_run=_rows(query(con, "quarantine_open_by_run")),
            released_here=_rows(query(con, "quarantine_released_by_run", p)),
            examples=_rows(query(con, "quarantine_examples", p)),
            gx=_rows(query(con, "gx_results", p)) if has_gx else [],
            gx_runs=_rows(query(con, "gx_runs")) if has_gx else [],
            known=known,
        )
    finally:
        con.close()


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_quality_report(home: Home, run_id: str | None = None) -> Path:
    """Write the report of ``run_id`` (default: the latest run); returns its path.

    The per-run copy is always written; ``quality_report.html`` only when the run is the
    latest one (so it always shows the newest run).
    """
    data = load_report_data(home, run_id)
    out = quality_dir(home)
    latest = data.runs[-1]["run_id"] if data.runs else None
    main = out / REPORT_NAME
    if data.run_id is None:
        _write(main, render_quality_report(data))
        return main
    if not _RUN_ID.match(data.run_id):
        raise ValueError("run id is not usable as a file name")
    data.gx_links, data.gx_index = data_docs_links(home, data.run_id, "../")
    per_run = out / "runs" / f"{data.run_id}.html"
    _write(per_run, render_quality_report(data))
    if data.run_id != latest:
        return per_run
    data.gx_links, data.gx_index = data_docs_links(home, data.run_id, "")
    _write(main, render_quality_report(data))
    return main
