"""Landing → raw → staged (+ quarantine): the warehouse side of ingestion.

- ``register_deliveries``: every landing file is hashed; new content is archived (bytes kept
  whole under ``archive/<sha[:2]>/<sha>``) and recorded once in ``raw.files``; known content
  under a new name is a duplicate delivery (one ``duplicate_file`` quarantine row). A path
  already seen with the same content is ignored, so re-running on the same landing folder
  changes nothing.
- ``stage_file``: parses one received file, validates its rows (``schemas.validate``), and in
  one transaction replaces that file's staged rows, adds its quarantine rows and records its
  counts. Re-staging a file (crash recovery, release after a mapping fix) is idempotent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from schemas import staging as stg
from schemas.validate import validate
from transforms.landing import LandingFile, sha256_file, unsupported_reason
from transforms.parsers import RECORD_KIND, STAGED_TABLE, iter_parse_file
from transforms.records import (
    DUPLICATE_FILE,
    FILE_TOO_LARGE,
    NO_RECORDS,
    UNREADABLE_FILE,
    UNSUPPORTED_FILE,
    Pseudonymizer,
    Reject,
    latest_wall_clock,
)
from warehouse.home import Home
from warehouse.identity import IdentityStore
from warehouse.runner import apply_ddl, setting

MODELS = {
    "staging.stg_hl7__lab_result": stg.StgLabResult,
    "staging.stg_lab_csv__lab_result": stg.StgLabResult,
    "staging.stg_dexa__scan": stg.StgDexaScan,
    "staging.stg_meds__medication": stg.StgMedication,
}


# feeds whose parser streams (memory flat in file size); others read a file whole
STREAMING_FEEDS = frozenset({"hl7"})
MAX_WHOLE_FILE_BYTES = 256 * 1024 * 1024


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """DDL files, then the staged tables created from their Pandera models."""
    apply_ddl(con)
    for table, model in MODELS.items():
        con.register("_empty", stg.empty_frame(model).to_arrow())
        try:
            con.execute("CREATE TABLE IF NOT EXISTS " + table + " AS SELECT * FROM _empty")  # noqa: S608
        finally:
            con.unregister("_empty")


@dataclass
class FileStats:
    feed: str
    file_sha256: str
    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    by_check: dict[str, int] = field(default_factory=dict)
    patient_keys: set[str] = field(default_factory=set)


@dataclass
class DeliveryResult:
    new_files: list[tuple[LandingFile, str]]  # (file, sha256) received for the first time
    duplicates: list[FileStats]


def archive_path(home: Home, sha: str) -> Path:
    return home.archive / sha[:2] / sha


def _archive(home: Home, src: Path, sha: str) -> None:
    dest = archive_path(home, sha)
    if dest.exists():
        return
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # received bytes: owner-only
    os.close(fd)
    shutil.copyfile(src, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


def register_deliveries(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    files: Iterable[LandingFile],
    *,
    run_id: str,
    now: dt.datetime,
) -> DeliveryResult:
    new_files: list[tuple[LandingFile, str]] = []
    new_shas: set[str] = set()
    duplicates: list[FileStats] = []
    for lf in files:
        sha = sha256_file(lf.path)
        seen = con.execute(
            "SELECT 1 FROM raw.deliveries WHERE name = $n AND file_sha256 = $s",
            {"n": lf.name, "s": sha},
        ).fetchone()
        if seen:
            continue
        known = con.execute(
            "SELECT feed, source, name, status <> 'received' AND coalesce(n_accepted, 0) = 0 "
            "FROM raw.files WHERE file_sha256 = $s",
            {"s": sha},
        ).fetchone()
        con.execute("BEGIN")
        try:
            if known is not None and _out_of_the_wrong_folder(known, lf):
                con.execute(
                    "UPDATE raw.files SET feed = $f, source = $src, name = $n, "
                    "status = 'received' WHERE file_sha256 = $s",
                    {"s": sha, "f": lf.feed, "src": lf.source, "n": lf.name},
                )
                known = None  # staged anew from here; an unsupported_file row is released then
            elif known is None:
                _archive(home, lf.path, sha)
                con.execute(
                    "INSERT INTO raw.files (file_sha256, feed, source, name, bytes, received_at, status, run_id) "
                    "VALUES ($s, $f, $src, $n, $b, $t, 'received', $r)",
                    {
                        "s": sha,
                        "f": lf.feed,
                        "src": lf.source,
                        "n": lf.name,
                        "b": lf.path.stat().st_size,
                        "t": now,
                        "r": run_id,
                    },
                )
            else:
                _insert_rejects(
                    con,
                    sha,
                    lf.feed,
                    lf.source,
                    [
                        Reject(
                            position=f"delivery {lf.name}",
                            check_name=DUPLICATE_FILE,
                            reason="identical bytes were already received under another name",
                        )
                    ],
                    run_id=run_id,
                    now=now,
                )
                duplicates.append(
                    FileStats(lf.feed, sha, received=1, quarantined=1, by_check={DUPLICATE_FILE: 1})
                )
            con.execute(
                "INSERT INTO raw.deliveries VALUES ($n, $s, $f, $t, $d, $r)",
                {
                    "n": lf.name,
                    "s": sha,
                    "f": lf.feed,
                    "t": now,
                    "d": known is not None,
                    "r": run_id,
                },
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        if known is None and sha not in new_shas:
            new_files.append((lf, sha))
            new_shas.add(sha)
    return DeliveryResult(new_files, duplicates)


def _out_of_the_wrong_folder(recorded: tuple, lf: LandingFile) -> bool:
    """Known bytes delivered again, where a parser takes them, that count as the delivery
    rather than a duplicate: first recorded where no parser takes them (a wrong or unmapped
    folder, a wrong extension: ``unsupported_file``), or staged with nothing accepted under
    another feed or source (a medication export put in a lab folder)."""
    feed, source, name, accepted_nothing = recorded
    if unsupported_reason(lf.feed, lf.source, lf.name) is not None:
        return False
    moved = (feed, source) != (lf.feed, lf.source)
    return unsupported_reason(feed, source, name) is not None or (moved and accepted_nothing)


def _insert_rejects(con, sha, feed, source, rejects: list[Reject], *, run_id, now) -> None:
    # one row per (position, check): the first reject in file order speaks for the record
    # (a DXA record fails once per region; which one is kept must not depend on timing)
    seen: set[tuple[str, str]] = set()
    rejects = [
        r
        for r in rejects
        if (r.position, r.check_name) not in seen and not seen.add((r.position, r.check_name))
    ]
    if not rejects:
        return
    frame = pl.DataFrame(
        {
            "file_sha256": [sha] * len(rejects),
            "position": [r.position for r in rejects],
            "feed": [feed] * len(rejects),
            "source": [source] * len(rejects),
            "check_name": [r.check_name for r in rejects],
            "reason": [r.reason for r in rejects],
            "excerpt": [r.excerpt for r in rejects],
            "message_control_id": [r.message_control_id for r in rejects],
            "run_id": [run_id] * len(rejects),
            "quarantined_at": [now] * len(rejects),
        },
        schema_overrides={
            "source": pl.String,
            "excerpt": pl.String,
            "message_control_id": pl.String,
        },
    )
    con.register("_rejects", frame.to_arrow())
    try:
        con.execute(
            "INSERT INTO quality.quarantine (file_sha256, position, feed, source, "
            "check_name, reason, excerpt, message_control_id, run_id, quarantined_at) "
            "SELECT file_sha256, position, feed, source, check_name, reason, excerpt, "
            "message_control_id, run_id, quarantined_at FROM _rejects "
            # a record that fails again after a release is held again (first sighting kept)
            "ON CONFLICT (file_sha256, position, check_name) "
            "DO UPDATE SET released_at = NULL, release_run_id = NULL"
        )
    finally:
        con.unregister("_rejects")


def files_to_stage(con, feed: str) -> list[tuple[str, str | None, str]]:
    """(sha256, source, name) of received files of ``feed`` not yet staged."""
    return con.execute(
        "SELECT file_sha256, source, name FROM raw.files WHERE feed = $f AND status = 'received' "
        "ORDER BY received_at, name",
        {"f": feed},
    ).fetchall()


def stage_file(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    identities: IdentityStore,
    *,
    feed: str,
    source: str | None,
    name: str,
    file_sha256: str,
    pseudonymize: Pseudonymizer,
    run_id: str,
    as_of: dt.datetime,
) -> FileStats:
    """Parse, validate and stage one archived file (idempotent)."""
    table = STAGED_TABLE[feed]
    kind = RECORD_KIND[feed]
    path = archive_path(home, file_sha256)

    def put_aside(check_name: str, reason: str) -> FileStats:
        return _stage_whole_file_reject(
            con,
            file_sha256,
            feed,
            source,
            run_id=run_id,
            now=as_of,
            reject=Reject(position="file", check_name=check_name, reason=reason),
        )

    unsupported = unsupported_reason(feed, source, name)
    if unsupported:
        return put_aside(UNSUPPORTED_FILE, unsupported)
    size = path.stat().st_size
    if feed not in STREAMING_FEEDS and size > MAX_WHOLE_FILE_BYTES:
        return put_aside(
            FILE_TOO_LARGE,
            f"{size} bytes exceeds the {MAX_WHOLE_FILE_BYTES} bytes a {feed} file may have "
            "(split the export)",
        )
    stats = FileStats(feed, file_sha256)
    produced: set[tuple[str, str]] = set()  # (position, check) of this parse's rejects
    appender = StagedAppender(con, table)
    con.execute("BEGIN")
    try:
        stats.patient_keys.update(_clear_staged(con, table, file_sha256))
        chunks = iter_parse_file(
            feed, source, name, path, file_sha256=file_sha256, pseudonymize=pseudonymize
        )
        while True:
            try:
                result = next(chunks, None)
            except Exception as exc:  # a parser bug or hostile bytes: the file is poison
                con.execute("ROLLBACK")
                # the exception text may quote the file's content: only its type
                return put_aside(
                    UNREADABLE_FILE,
                    f"the {feed} parser failed on this file ({type(exc).__name__}); "
                    "bytes kept in the archive for replay",
                )
            if result is None:
                appender.flush()
                break
            _stage_chunk(
                con,
                appender,
                kind,
                result,
                stats,
                produced,
                identities,
                file_sha256=file_sha256,
                feed=feed,
                source=source,
                run_id=run_id,
                as_of=as_of,
            )
            # a chunk is committed as it is staged, so memory stays flat in file size; the
            # file is only 'parsed' (and visible to core) once its last chunk is in
            con.execute("COMMIT")
            con.execute("BEGIN")
        if stats.received == 0:
            con.execute("ROLLBACK")
            return put_aside(
                NO_RECORDS,
                f"the {feed} parser found no record in this file "
                "(empty, header only, or not this feed's format)",
            )
        _release_resolved(con, file_sha256, produced, run_id=run_id, now=as_of)
        for _, check in produced:
            stats.by_check[check] = stats.by_check.get(check, 0) + 1
        stats.accepted = stats.received - stats.quarantined
        _set_file_status(con, file_sha256, "parsed", stats, run_id)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # no transaction left open
            con.execute("ROLLBACK")
        raise
    return stats


def _stage_chunk(
    con,
    appender: StagedAppender,
    kind,
    result,
    stats: FileStats,
    produced,
    identities,
    *,
    file_sha256,
    feed,
    source,
    run_id,
    as_of,
) -> None:
    """Validate and insert one parsed chunk; count its records (a record never spans chunks)."""
    rejects = list(result.rejects) + validate(kind, result.rows, latest_wall_clock(as_of))
    identities.add(result.identities)
    positions: set[str] = set()
    if result.rows.height:
        appender.add(result.rows)
        positions.update(result.rows["position"].unique().to_list())
        stats.patient_keys.update(k for k in result.rows["patient_key"].unique().to_list() if k)
    _insert_rejects(con, file_sha256, feed, source, rejects, run_id=run_id, now=as_of)
    bad = {r.position for r in rejects}
    positions |= bad
    produced.update((r.position, r.check_name) for r in rejects)
    stats.received += len(positions)
    stats.quarantined += len(bad)


def insert_staged(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame) -> None:
    """Append a parsed chunk to its staged table, by column name (DuckDB scans the frame's
    Arrow buffers in place). bench/bench_hl7.py measures ingestion through this function.

    The insert runs on one DuckDB thread: scanning one in-memory chunk in parallel gained no
    time on the 2-core host and cost ~50 % more CPU (docs/benchmarks_hl7.md); the thread
    count the database had is restored afterwards.
    """
    con.register("_rows", rows.to_arrow())
    try:
        with setting(con, "threads", 1):
            con.execute("INSERT INTO " + table + " BY NAME SELECT * FROM _rows")  # noqa: S608
    finally:
        con.unregister("_rows")


# DuckDB's row group size (rows): an INSERT of whole row groups is compressed and written
# to the database file as it runs; a partial one is kept in memory, and each such tail made
# the next checkpoint rewrite the table's end (as much CPU again as the inserts)
ROW_GROUP_ROWS = 122_880


class StagedAppender:
    """Appends one file's parsed chunks to its staged table in whole DuckDB row groups.

    ``add`` holds a chunk until the next one comes, then inserts the largest whole number
    of row groups of what it holds and keeps the rest (a slice: at most one earlier chunk
    stays in memory); ``flush`` inserts what is left in one INSERT (a file of one chunk is
    one INSERT) and must run before the file's last commit. Rows of a chunk may so be
    inserted in a later chunk's transaction: the file is only 'parsed' once all are in, and
    re-staging clears its rows first.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        self.con = con
        self.table = table
        self.held: pl.DataFrame | None = None

    def add(self, rows: pl.DataFrame) -> None:
        if self.held is None:
            self.held = rows
            return
        rows = pl.concat([self.held, rows], how="vertical")
        self.held = None
        whole = rows.height - rows.height % ROW_GROUP_ROWS
        if whole:
            insert_staged(self.con, self.table, rows.slice(0, whole))
        if whole < rows.height:
            self.held = rows.slice(whole)

    def flush(self) -> None:
        if self.held is not None:
            insert_staged(self.con, self.table, self.held)
            self.held = None


def _clear_staged(con, table: str, sha: str) -> set[str]:
    """Delete a file's staged rows; returns their patients (their features must refresh)."""
    keys = {
        k
        for (k,) in con.execute(
            "SELECT DISTINCT patient_key FROM " + table + " WHERE file_sha256 = $s",  # noqa: S608
            {"s": sha},
        ).fetchall()
        if k
    }
    con.execute("DELETE FROM " + table + " WHERE file_sha256 = $s", {"s": sha})  # noqa: S608
    return keys


def _set_file_status(con, sha: str, status: str, stats: FileStats, run_id: str) -> None:
    con.execute(
        "UPDATE raw.files SET status = $st, n_received = $r, n_accepted = $a, "
        "n_quarantined = $q, run_id = $run WHERE file_sha256 = $s",
        {
            "st": status,
            "r": stats.received,
            "a": stats.accepted,
            "q": stats.quarantined,
            "run": run_id,
            "s": sha,
        },
    )


def _stage_whole_file_reject(con, sha, feed, source, *, reject: Reject, run_id, now) -> FileStats:
    """A file no parser can read counts as one quarantined record; the feed keeps flowing."""
    table = STAGED_TABLE[feed]
    stats = FileStats(feed, sha, received=1, quarantined=1, by_check={reject.check_name: 1})
    con.execute("BEGIN")
    try:
        stats.patient_keys.update(_clear_staged(con, table, sha))
        _insert_rejects(con, sha, feed, source, [reject], run_id=run_id, now=now)
        _release_resolved(con, sha, {(reject.position, reject.check_name)}, run_id=run_id, now=now)
        _set_file_status(con, sha, "failed", stats, run_id)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return stats


def _release_resolved(con, sha: str, produced: set[tuple[str, str]], *, run_id: str, now) -> None:
    """Quarantine rows of this file that the current parse no longer produces are released."""
    open_rows = con.execute(
        "SELECT quarantine_id, position, check_name FROM quality.quarantine "
        "WHERE file_sha256 = $s AND released_at IS NULL AND check_name <> 'duplicate_file'",
        {"s": sha},
    ).fetchall()
    resolved = [qid for qid, pos, check in open_rows if (pos, check) not in produced]
    if resolved:
        con.execute(
            "UPDATE quality.quarantine SET released_at = $t, release_run_id = $r "
            "WHERE list_contains($ids, quarantine_id)",
            {"t": now, "r": run_id, "ids": resolved},
        )


def mark_for_restage(con, file_shas: Iterable[str]) -> int:
    """Put files back in the queue (release after a mapping fix re-parses them)."""
    shas = sorted(set(file_shas))
    if shas:
        con.execute(
            "UPDATE raw.files SET status = 'received' WHERE list_contains($s, file_sha256)",
            {"s": shas},
        )
    return len(shas)
