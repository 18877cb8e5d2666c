"""What `labwh status` shows: the warehouse at a glance for the engineer who runs it.

While a run writes the warehouse, the published snapshot is read instead (its runs, masked
quarantine and tables as of the last publish), and the status says so.

The last runs with their record totals (queries/quality/runs.sql, as the quality report),
the records still held in quarantine, the row counts of the core and mart tables, and the
snapshot analysts read. Run ids, counts, check and table names only: no landing path, file
name or excerpt, which a source may have filled with a patient's name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from warehouse import locks
from warehouse.home import Home
from warehouse.quality_queries import connect_read_only, query

# how long status waits for a run's step to let go of the writer's file before it shows the
# published snapshot instead (a run holds the file for most of its steps)
WAIT_S = 3.0

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
    busy: str | None = None  # why the writer's file could not be read: the snapshot was


def read_status(home: Home, last: int = 5, wait_s: float = WAIT_S) -> Status:
    """Read the writer's warehouse read-only; while a run writes it (after ``wait_s``), the
    published snapshot, which a run never locks (it is swapped in whole)."""
    busy = None
    try:
        con = locks.connect(home.warehouse, read_only=True, wait_s=wait_s)
    except locks.WarehouseBusy as err:
        if not home.published.exists():
            raise
        busy = err.held
        con = connect_read_only(home.published)
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
        busy=busy,
    )
