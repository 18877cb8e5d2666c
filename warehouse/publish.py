"""Publishing the analysts' read-only snapshot: ``published/analytics.duckdb``.

The snapshot is written to a new file next to the published one and swapped in with an
atomic rename, so a reader that holds the old snapshot open keeps reading it undisturbed,
and the writer never waits for readers. It carries the analyst layers only (core, marts,
omop views, quality, run metadata); there is no identity table in the warehouse to copy.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from pathlib import Path

import duckdb
import polars as pl

from schemas.dictionary import apply_comments
from transforms.records import DUPLICATE_FILE
from transforms.reporting.masking import mask_identifiers, mask_identifiers_in
from warehouse.home import Home
from warehouse.identity import known_words, patient_identifiers
from warehouse.runner import MODELS_DIR, bind, model_sql, query_sql

PUBLISHED_SCHEMAS = ("core", "marts", "quality")
PUBLISHED_RAW_TABLES = ("raw.files", "raw.runs", "raw.feature_state")

# Landing paths (file names and source folders) are data a source chooses: one that names files by patient
# (``DOE_JOHN_MRN0042.hl7``) would reach analysts through them. The snapshot carries them
# masked (transforms/reporting/masking.py, as the quality reports show them); lineage is the
# file's sha256, and the writer's warehouse keeps the names for operations. Besides the
# patterns, every word that is a patient's name or identifier in the identity store goes.
MASK_FILE_NAMES = (
    "UPDATE raw.files SET name = mask_identifiers(name), source = mask_identifiers(source)",
    "UPDATE raw.runs SET landing_dir = mask_identifiers(landing_dir)",
    # a duplicate delivery's position quotes the path it came under; an unsupported file's
    # reason names its source folder
    "UPDATE quality.quarantine SET source = mask_identifiers(source), "
    "reason = mask_identifiers(reason), "
    "position = CASE WHEN check_name = $duplicate THEN mask_identifiers(position) "
    "ELSE position END",
)


def mask_free_text(con: duckdb.DuckDBPyConnection) -> int:
    """Mask the snapshot's free text (text results, unmapped analyte names, drug names,
    quarantine excerpts…: queries/publish/masked_text.sql) with the connection's
    ``mask_identifiers``; returns the number of distinct texts masked. The lab texts are
    masked in the history: rebuild the current versions after (``rebuild_current_results``)."""
    con.execute(query_sql("publish", "masked_text"))
    try:
        masked = con.execute("SELECT count(*) FROM masked_text").fetchone()[0]
        if masked:
            con.execute(query_sql("publish", "apply_masked_text"))
    finally:
        con.execute("DROP TABLE IF EXISTS masked_text")
    return masked


def rebuild_current_results(con: duckdb.DuckDBPyConnection) -> None:
    """core.fct_lab_result from the (masked) history, by its own model."""
    con.execute(
        "CREATE OR REPLACE TABLE core.fct_lab_result AS "  # noqa: S608 - model text
        + model_sql("core.fct_lab_result")
    )


def mask_lineage_ids(con: duckdb.DuckDBPyConnection, identifiers: pl.DataFrame, key: bytes) -> int:
    """Mask a patient's identifiers inside the ids a sender chose for that patient's records
    (order numbers, message and scan ids), re-keying the ids of the results whose number is
    masked with ``key`` (queries/publish/*masked_lineage_ids.sql); ``identifiers``:
    ``identity.patient_identifiers``. Returns the number of ids masked. The lab ids are
    masked in the history: rebuild the current versions after."""
    if identifiers.is_empty():
        return 0
    con.register("patient_identifiers", identifiers)
    functions = {
        "mask_identifiers_in": (mask_identifiers_in, ["VARCHAR", "VARCHAR[]"]),
        "keyed_result_id": (
            lambda rid: hmac.new(key, rid.encode(), hashlib.sha256).hexdigest()[:32],
            ["VARCHAR"],
        ),
    }
    for name, (fn, args) in functions.items():
        con.create_function(name, fn, args, "VARCHAR")
    try:
        con.execute(query_sql("publish", "masked_lineage_ids"))
        masked = con.execute("SELECT count(*) FROM masked_lineage_ids").fetchone()[0]
        if masked:
            con.execute(query_sql("publish", "apply_masked_lineage_ids"))
        con.execute("DROP TABLE masked_lineage_ids")
        con.execute("DROP TABLE rekeyed_results")
    finally:
        con.unregister("patient_identifiers")
        for name in functions:
            con.remove_function(name)
    return masked


def path_literal(path: Path) -> str:
    """A SQL string literal for a file path we created (ATTACH cannot bind parameters)."""
    text = str(path)
    if "'" in text or "\\" in text or "\x00" in text:
        raise ValueError("refusing a path with quotes, backslashes or NUL in ATTACH")
    return "'" + text + "'"


def _tables(con, database: str, schemas) -> list[str]:
    rows = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        "WHERE database_name = $d AND list_contains($s, schema_name) "
        "ORDER BY 1",
        {"d": database, "s": list(schemas)},
    ).fetchall()
    return [r[0] for r in rows]


def remove_stale_snapshots(folder: Path) -> list[str]:
    """Temp snapshots a killed publish left behind (full copies of analyst data).

    Runs are serialized (one writer), so any temp file present when a publish starts is
    stale."""
    removed = []
    for stale in folder.glob(".analytics-*"):
        stale.unlink(missing_ok=True)
        removed.append(stale.name)
    return removed


def publish_run(home: Home, run_id: str) -> Path:
    """A run's last writing step: write the snapshot, record the run finished, then swap the
    snapshot in. The snapshot shows the run as recorded: 'success', at the same
    ``finished_at``; when recording fails the new snapshot is dropped, not published."""
    from warehouse import steps

    finished_at = steps.now()
    return publish(
        home,
        finished_run=(run_id, finished_at),
        before_swap=lambda: steps.finish_run(home, run_id, at=finished_at),
    )


def publish(
    home: Home,
    *,
    comment_hook=apply_comments,
    finished_run: tuple[str, object] | None = None,
    before_swap=None,
) -> Path:
    """Write a fresh snapshot and swap it in atomically; returns the published path.

    ``comment_hook`` writes the table/column descriptions into the snapshot (default: the
    Pandera models' descriptions); ``finished_run`` (run id, time) is the run publishing,
    shown finished in the snapshot's raw.runs, and ``before_swap`` runs between writing the
    snapshot and swapping it in (``publish_run``)."""
    target = home.published
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_snapshots(target.parent)
    tmp = target.parent / f".analytics-{uuid.uuid4().hex}.duckdb"
    dst = duckdb.connect(str(tmp))
    try:
        # ATTACH takes no bound parameters; the path is the home's own, checked here
        dst.execute("ATTACH " + path_literal(home.warehouse) + " AS wh (READ_ONLY)")
        for schema in (*PUBLISHED_SCHEMAS, "raw", "omop"):
            dst.execute("CREATE SCHEMA IF NOT EXISTS " + schema)
        for table in _tables(dst, "wh", PUBLISHED_SCHEMAS) + list(PUBLISHED_RAW_TABLES):
            dst.execute("CREATE TABLE " + table + " AS SELECT * FROM wh." + table)  # noqa: S608
        dst.execute("DETACH wh")
        if finished_run:
            dst.execute(
                "UPDATE raw.runs SET status = 'success', finished_at = $t "
                "WHERE run_id = $r AND status = 'running'",
                {"r": finished_run[0], "t": finished_run[1]},
            )
        known = known_words(home.identity_db)
        dst.create_function(
            "mask_identifiers", lambda text: mask_identifiers(text, known), ["VARCHAR"], "VARCHAR"
        )
        for statement in MASK_FILE_NAMES:
            dst.execute(statement, bind(statement, {"duplicate": DUPLICATE_FILE}))
        texts = mask_free_text(dst)
        ids = mask_lineage_ids(dst, patient_identifiers(home.identity_db), home.hmac_key())
        if texts or ids:
            rebuild_current_results(dst)
        for path in sorted((MODELS_DIR / "omop").glob("*.sql")):
            view = "omop." + path.stem
            dst.execute("CREATE OR REPLACE VIEW " + view + " AS " + model_sql(view))  # noqa: S608
        if comment_hook:
            comment_hook(dst)
        dst.execute("CHECKPOINT")
    finally:
        dst.close()
    try:
        if before_swap:
            before_swap()
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        for leftover in (tmp, Path(str(tmp) + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    return target
