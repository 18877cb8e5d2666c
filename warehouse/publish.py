"""Publishing the analysts' read-only snapshot: ``published/analytics.duckdb``.

The snapshot is written to a new file next to the published one and swapped in with an
atomic rename, so a reader that holds the old snapshot open keeps reading it undisturbed,
and the writer never waits for readers. It carries the analyst layers only (core, marts,
omop views, quality, run metadata); there is no identity table in the warehouse to copy.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from warehouse.home import Home
from warehouse.runner import MODELS_DIR, model_sql

PUBLISHED_SCHEMAS = ("core", "marts", "quality")
PUBLISHED_RAW_TABLES = ("raw.files", "raw.runs")


def _tables(con, schemas) -> list[str]:
    rows = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        "WHERE database_name = current_database() AND list_contains($s, schema_name) "
        "ORDER BY 1",
        {"s": list(schemas)},
    ).fetchall()
    return [r[0] for r in rows]


def publish(home: Home, *, comment_hook=None) -> Path:
    """Write a fresh snapshot and swap it in atomically; returns the published path."""
    target = home.published
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".analytics-{uuid.uuid4().hex}.duckdb"
    src = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        src.execute("ATTACH $p AS pub", {"p": str(tmp)})
        for schema in (*PUBLISHED_SCHEMAS, "raw", "omop"):
            src.execute("CREATE SCHEMA IF NOT EXISTS pub." + schema)
        for table in _tables(src, PUBLISHED_SCHEMAS) + list(PUBLISHED_RAW_TABLES):
            src.execute("CREATE TABLE pub." + table + " AS SELECT * FROM " + table)  # noqa: S608
        src.execute("DETACH pub")
    finally:
        src.close()
    dst = duckdb.connect(str(tmp))
    try:
        for path in sorted((MODELS_DIR / "omop").glob("*.sql")):
            dst.execute(
                "CREATE OR REPLACE VIEW omop." + path.stem + " AS " + model_sql("omop." + path.stem)
            )  # noqa: S608
        if comment_hook:
            comment_hook(dst)
        dst.execute("CHECKPOINT")
    finally:
        dst.close()
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target
