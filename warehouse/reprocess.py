"""Reprocessing received files: one file (by content hash) or one day of files, end to end.

``reprocess`` puts the chosen files back in the staging queue, re-stages them (each file in
one transaction, ``ingest.stage_file``; a file its parser cannot read is quarantined whole
there and the feed goes on), rebuilds core, refreshes the features of every patient the
files held before *or* after, rebuilds the OMOP views and publishes. Every step is
idempotent, so a retry or a second reprocess converges to the same warehouse.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from schemas.checks import blocking_failures
from transforms.parsers import STAGED_TABLE
from warehouse import ingest, params, steps
from warehouse.home import Home
from warehouse.publish import publish_run


def _touch_staged(con, run_id: str, feed: str, shas: list[str]) -> None:
    """Record as touched by ``run_id`` every patient that ``shas``' staged rows hold now."""
    table = STAGED_TABLE[feed]
    keys = con.execute(
        "SELECT DISTINCT patient_key FROM " + table + " "  # noqa: S608 - constant table name
        "WHERE list_contains($s, file_sha256) AND patient_key IS NOT NULL",
        {"s": shas},
    ).fetchall()
    steps.record_touched(con, run_id, {k for (k,) in keys})


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
        if not all(c in "0123456789abcdef" for c in prefix):
            raise ValueError(f"--file {file_sha256!r} is not a SHA-256 (hex) or a prefix of one")
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
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            raise ValueError(f"--day {day!r} is not a date (YYYY-MM-DD)") from None
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
    """Re-stage the received files chosen by hash or day (``select_files``), then rebuild.

    Raises ``LookupError`` when nothing matches.
    """
    with steps.writer(home) as con:
        files = select_files(con, file_sha256=file_sha256, day=day)
    if not files:
        raise LookupError("no received file matches (see raw.files)")
    return restage_files(
        home,
        run_id,
        files,
        feature_overrides=feature_overrides,
        full_rebuild=full_rebuild,
        log=log,
    )


def restage_files(
    home: Home,
    run_id: str,
    files: list[tuple[str, str, str]],
    *,
    feature_overrides: dict | None = None,
    full_rebuild: bool = False,
    log=None,
) -> ReprocessResult:
    """Re-stage ``files`` ((sha, feed, name) from raw.files) and bring core, marts, OMOP views
    and the published snapshot up to date, as run ``run_id`` (recorded in raw.runs).

    Also what a quarantine release needs once the rows' files are known. Every step is
    idempotent, so running it again (or retrying after a failure) gives the same warehouse.
    """
    shas = [sha for sha, _, _ in files]
    steps.start_run(home, run_id, home.landing, {"restage": shas, "full_rebuild": full_rebuild})
    feeds = sorted({feed for _, feed, _ in files})
    with steps.writer(home) as con:
        con.execute("BEGIN")
        for feed in feeds:
            # patients of the current staged rows: their features change even if the new
            # parse no longer produces them
            _touch_staged(con, run_id, feed, [sha for sha, f, _ in files if f == feed])
        ingest.mark_for_restage(con, shas)
        con.execute("COMMIT")
    result = ReprocessResult(run_id, files)
    for feed in feeds:
        result.feeds[feed] = steps.stage(home, feed, run_id, log=log)
    result.core_rows = steps.build_core(home, params.core_params(), run_id)
    result.feature_rows = steps.build_features(
        home, params.feature_params(feature_overrides), run_id, full=full_rebuild
    )
    steps.build_omop(home)
    # the blocking contracts the asset checks hold a normal run to: a broken core or mart is
    # never published (the analysts keep the previous snapshot)
    with steps.writer(home) as con:
        broken = blocking_failures(con)
    if broken:
        steps.mark_failed(home, run_id)
        raise ContractBroken(broken)
    publish_run(home, run_id)
    return result


class ContractBroken(RuntimeError):
    """A core or mart table failed its blocking contract: nothing was published."""

    def __init__(self, failures: dict[str, dict[str, int]]):
        self.failures = failures
        detail = "; ".join(f"{t}: {', '.join(sorted(c))}" for t, c in sorted(failures.items()))
        super().__init__(f"blocking contract failed, snapshot not published: {detail}")
