"""Operations on received files: stage a feed without letting one bad file stop it, and
re-process one file (or one day of files) end to end, leaving the warehouse consistent.

- ``stage_guarded``: ``steps.stage`` for a feed; when staging one file raises (the parser or
  the validation cannot read it), that file is quarantined whole (``unreadable_file``, status
  ``failed``, its staged rows removed) and the rest of the feed goes on. Transient errors
  (lock held, timeout) are re-raised so the caller's retry policy can run the step again.
- ``reprocess``: put the chosen files back in the staging queue, re-stage them (each file in
  one transaction, ``ingest.stage_file``), rebuild core, refresh the features of every patient
  the files touched before *or* after, rebuild the OMOP views and publish.
"""

from __future__ import annotations

import datetime as dt
import traceback
from dataclasses import dataclass, field

import duckdb

from transforms.parsers import STAGED_TABLE
from warehouse import ingest, params, steps
from warehouse.home import Home
from warehouse.publish import publish

UNREADABLE_FILE = "unreadable_file"
"""check_name of a file whose staging raised: one quarantine record at position ``file``."""
FILE_POSITION = "file"

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    ConnectionError,
    BlockingIOError,
    InterruptedError,
    duckdb.IOException,  # e.g. the database file is locked by another writer
    duckdb.TransactionException,  # write-write conflict
)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_ERRORS)


def failing_file(exc: BaseException) -> str | None:
    """The file being staged when ``exc`` was raised inside ``ingest.stage_file``, else None."""
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        if frame.f_code is ingest.stage_file.__code__:
            return frame.f_locals.get("file_sha256")
    return None


def _touch_staged(con, run_id: str, feed: str, shas: list[str]) -> None:
    """Record as touched by ``run_id`` every patient that ``shas``' staged rows hold now."""
    table = STAGED_TABLE[feed]
    keys = con.execute(
        "SELECT DISTINCT patient_key FROM " + table + " "  # noqa: S608 - constant table name
        "WHERE list_contains($s, file_sha256) AND patient_key IS NOT NULL",
        {"s": shas},
    ).fetchall()
    steps._record_touched(con, run_id, {k for (k,) in keys})


def quarantine_file(
    home: Home, *, feed: str, file_sha256: str, run_id: str, error: BaseException
) -> ingest.FileStats:
    """Put a whole file aside: one quarantine record, status ``failed``, no staged rows.

    The reason names the exception type only: parser messages may quote file contents.
    Reprocessing the file (after a parser or mapping fix) releases the record.
    """
    stats = ingest.FileStats(
        feed, file_sha256, received=1, quarantined=1, by_check={UNREADABLE_FILE: 1}
    )
    at = steps.now()
    reason = (
        f"the {feed} parser could not read this file ({type(error).__name__}); "
        "fix the parser or its configuration, then reprocess the file"
    )
    with steps.writer(home) as con:
        con.execute("BEGIN")
        try:
            _touch_staged(con, run_id, feed, [file_sha256])
            con.execute(
                "DELETE FROM " + STAGED_TABLE[feed] + " WHERE file_sha256 = $s",  # noqa: S608
                {"s": file_sha256},
            )
            con.execute(
                "INSERT INTO quality.quarantine (file_sha256, position, feed, source, check_name, "
                "reason, run_id, quarantined_at) "
                "SELECT file_sha256, $p, feed, source, $c, $why, $r, $t FROM raw.files "
                "WHERE file_sha256 = $s "
                "ON CONFLICT (file_sha256, position, check_name) DO UPDATE SET "
                "reason = excluded.reason, run_id = excluded.run_id, "
                "quarantined_at = excluded.quarantined_at, released_at = NULL, release_run_id = NULL",
                {
                    "s": file_sha256,
                    "p": FILE_POSITION,
                    "c": UNREADABLE_FILE,
                    "why": reason,
                    "r": run_id,
                    "t": at,
                },
            )
            con.execute(
                "UPDATE raw.files SET status = 'failed', n_received = 1, n_accepted = 0, "
                "n_quarantined = 1, run_id = $r WHERE file_sha256 = $s",
                {"r": run_id, "s": file_sha256},
            )
            steps._record_stats(con, run_id, stats)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return stats


def stage_guarded(home: Home, feed: str, run_id: str, *, log=None) -> steps.FeedSummary:
    """``steps.stage`` that quarantines a file it cannot stage and carries on with the feed.

    Only errors raised while staging one particular file are treated as that file's fault;
    transient errors and errors outside ``ingest.stage_file`` propagate unchanged.
    """
    with steps.writer(home) as con:
        pending = [sha for sha, _, _ in ingest.files_to_stage(con, feed)]
    failed: set[str] = set()
    while True:
        try:
            steps.stage(home, feed, run_id, log=log)
            break
        except Exception as exc:
            sha = failing_file(exc)
            if is_transient(exc) or sha is None or sha in failed:
                raise
            quarantine_file(home, feed=feed, file_sha256=sha, run_id=run_id, error=exc)
            failed.add(sha)
            if log:
                log(
                    f"[{feed}] file {sha[:12]} quarantined whole: staging raised {type(exc).__name__}"
                )
    with steps.writer(home) as con:
        return feed_summary(con, feed, pending)


def feed_summary(con, feed: str, shas: list[str]) -> steps.FeedSummary:
    """What staging ``shas`` gave, read back from the warehouse (files, records, open checks)."""
    summary = steps.FeedSummary(feed)
    if not shas:
        return summary
    rows = con.execute(
        "SELECT file_sha256, coalesce(n_received, 0), coalesce(n_accepted, 0), "
        "coalesce(n_quarantined, 0) FROM raw.files WHERE list_contains($s, file_sha256) "
        "ORDER BY file_sha256",
        {"s": shas},
    ).fetchall()
    checks: dict[str, dict[str, int]] = {}
    for sha, check, n in con.execute(
        "SELECT file_sha256, check_name, count(DISTINCT position) FROM quality.quarantine "
        "WHERE list_contains($s, file_sha256) AND released_at IS NULL "
        "AND check_name <> 'duplicate_file' GROUP BY ALL",
        {"s": shas},
    ).fetchall():
        checks.setdefault(sha, {})[check] = n
    for sha, received, accepted, quarantined in rows:
        summary.add(
            ingest.FileStats(feed, sha, received, accepted, quarantined, checks.get(sha, {}))
        )
    return summary


# --------------------------------------------------------------------------- reprocess
@dataclass
class ReprocessResult:
    run_id: str
    files: list[tuple[str, str, str]]  # (file_sha256, feed, name)
    feeds: dict[str, steps.FeedSummary] = field(default_factory=dict)
    core_rows: dict[str, int] = field(default_factory=dict)
    feature_rows: dict[str, int] = field(default_factory=dict)


def select_files(
    con, *, file_sha256: str | None = None, day: dt.date | str | None = None
) -> list[tuple[str, str, str]]:
    """(sha, feed, name) of received files: one by hash (or unique prefix ≥ 8), or one day's.

    ``day`` is the date the file was received (``raw.files.received_at``).
    """
    if bool(file_sha256) == bool(day):
        raise ValueError("give exactly one of file_sha256 or day")
    if file_sha256:
        prefix = file_sha256.strip().lower()
        if len(prefix) < 8:
            raise ValueError("a file hash prefix needs at least 8 hex characters")
        rows = con.execute(
            "SELECT file_sha256, feed, name FROM raw.files WHERE starts_with(file_sha256, $p) "
            "ORDER BY file_sha256",
            {"p": prefix},
        ).fetchall()
        if len(rows) > 1:
            raise ValueError(f"hash prefix {prefix!r} matches {len(rows)} files; give more of it")
        return rows
    day = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return con.execute(
        "SELECT file_sha256, feed, name FROM raw.files WHERE CAST(received_at AS DATE) = $d "
        "ORDER BY feed, name",
        {"d": day},
    ).fetchall()


def reprocess(
    home: Home,
    run_id: str,
    *,
    file_sha256: str | None = None,
    day: dt.date | str | None = None,
    feature_overrides: dict | None = None,
    full_rebuild: bool = False,
    log=None,
) -> ReprocessResult:
    """Re-stage the chosen received files and bring core, marts and the snapshot up to date.

    Raises ``LookupError`` when nothing matches. Every step is idempotent, so running it again
    (or retrying after a failure) converges to the same warehouse.
    """
    with steps.writer(home) as con:
        files = select_files(con, file_sha256=file_sha256, day=day)
    if not files:
        raise LookupError("no received file matches (see raw.files)")
    steps.start_run(
        home,
        run_id,
        home.landing,
        {"reprocess": [sha for sha, _, _ in files], "full_rebuild": full_rebuild},
    )
    feeds = sorted({feed for _, feed, _ in files})
    with steps.writer(home) as con:
        con.execute("BEGIN")
        for feed in feeds:
            # patients of the current staged rows: their features change even if the new
            # parse no longer produces them
            _touch_staged(con, run_id, feed, [sha for sha, f, _ in files if f == feed])
        ingest.mark_for_restage(con, [sha for sha, _, _ in files])
        con.execute("COMMIT")
    result = ReprocessResult(run_id, files)
    for feed in feeds:
        result.feeds[feed] = stage_guarded(home, feed, run_id, log=log)
    result.core_rows = steps.build_core(home, params.core_params())
    result.feature_rows = steps.build_features(
        home, params.feature_params(feature_overrides), run_id, full=full_rebuild
    )
    steps.build_omop(home)
    publish(home)
    steps.finish_run(home, run_id)
    return result
