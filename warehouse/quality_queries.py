"""The quality queries (``warehouse/queries/quality/<name>.sql``) and read-only access.

Each query is one SELECT with ``$name`` parameters bound by DuckDB (warehouse/runner.py's
``bind``); results come back as polars frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from warehouse import locks
from warehouse.runner import bind, query_sql


def query(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | None = None):
    """Run ``queries/quality/<name>.sql`` with the parameters it uses; a polars frame."""
    sql = query_sql("quality", name)
    return con.execute(sql, bind(sql, params or {})).pl()


def connect_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection; waits while a writer step holds the lock (warehouse/locks.py)."""
    return locks.connect(path, read_only=True)


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema || '.' || table_name = $t",
            {"t": table},
        ).fetchone()[0]
    )
