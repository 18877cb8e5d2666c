"""Build one core model from hand-written staged rows and received files (no parsing)."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from schemas.staging import columns_of
from warehouse.runner import materialize


def core_from_staged(
    model: str,
    staging_table: str,
    staged_model: type,
    rows: list[dict],
    files: dict[str, tuple[str, dt.datetime]],
) -> duckdb.DuckDBPyConnection:
    """``rows`` carry their ``file_sha256`` and ``position``; ``files`` maps each sha to its
    (landing name, received_at). Every file is parsed and no record is held."""
    con = duckdb.connect()
    con.execute(
        "CREATE SCHEMA staging; CREATE SCHEMA raw; CREATE SCHEMA quality; CREATE SCHEMA core"
    )
    frame = pl.DataFrame(rows, schema=columns_of(staged_model))
    con.from_arrow(frame.to_arrow()).create("staging." + staging_table)
    con.execute(
        "CREATE TABLE raw.files (file_sha256 VARCHAR, name VARCHAR, received_at TIMESTAMP, "
        "status VARCHAR)"
    )
    con.executemany(
        "INSERT INTO raw.files VALUES ($1, $2, $3, 'parsed')",
        [(sha, name, at) for sha, (name, at) in files.items()],
    )
    con.execute("CREATE TABLE quality.held_records (file_sha256 VARCHAR, position VARCHAR)")
    materialize(con, model, {})
    return con
