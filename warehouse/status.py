"""What `labwh status` shows: the warehouse at a glance for the engineer who runs it.

The last runs with their record totals (queries/quality/runs.sql, as the quality report),
the records still held in quarantine, the row counts of the core and mart tables, and the
snapshot analysts read. Run ids, counts, check and table names only: no landing path, file
name or excerpt, which a source may have filled with a patient's name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from warehouse.home import Home
from warehouse.quality_queries import connect_read_only, query

# the tables whose sizes tell an engineer the warehouse is filled; absent before a first run
COUNTED_TABLES = (
    "core.dim_patient",
    "core.fct_lab_result",
    "core.fct_dexa_scan",
    "core.fct_medication",
    "core.medication_exposure",
    "marts.feat_e2_exposure",
    "marts.feat_bmd_trend",
)


@dataclass
class Status:
    runs: list[dict[str, Any]]  # newest first
    n_runs: int
    open_quarantine: list[dict[str, Any]]
    table_rows: dict[str, int | None]  # None: the table does not exist yet
    snapshot_published_at: dt.datetime | None


def read_status(home: Home, last: int = 5) -> Status:
    """Read the writer's warehouse (read-only; waits while a run's step writes)."""
    con = connect_read_only(home.warehouse)
    try:
        runs = query(con, "runs").to_dicts()
        held = query(con, "quarantine_open").to_dicts()
        present = {
            r[0]
            for r in con.execute(
                "SELECT schema_name || '.' || table_name FROM duckdb_tables()"
            ).fetchall()
        }
        rows: dict[str, int | None] = {}
        for table in COUNTED_TABLES:
            rows[table] = (
                con.execute("SELECT count(*) FROM " + table).fetchone()[0]  # noqa: S608 - constant names
                if table in present
                else None
            )
    finally:
        con.close()
    published = home.published
    return Status(
        runs=list(reversed(runs))[: max(last, 0)],
        n_runs=len(runs),
        open_quarantine=held,
        table_rows=rows,
        snapshot_published_at=(
            dt.datetime.fromtimestamp(published.stat().st_mtime).replace(microsecond=0)
            if published.exists()
            else None
        ),
    )
