"""Quarantine review: list and show records put aside, and release them after a fix.

A record is quarantined with the check that failed (``quality.quarantine``). After the cause
is fixed (a unit added to config/units.csv, a local code mapped, a range corrected), a
release re-stages the files holding the selected records with the current configuration
(``warehouse.reprocess.restage_files``: staging, core, features, OMOP views, publish):
records that now pass get ``released_at`` (``ingest.stage_file`` does that) and reach core;
records that still fail stay held. Nothing is lost or doubled: staging replaces a file's
rows, and quarantine rows are unique per file × position × check.

Wired to ``labwh quarantine list|show|release``. Texts shown are masked again
(``transforms.reporting.masking``) although excerpts are de-identified at the source.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from transforms import catalog
from transforms.reporting.masking import (
    mask_identifiers,
    mask_identifiers_in,
    mask_known_words,
)
from warehouse import ingest, steps
from warehouse.home import Home
from warehouse.identity import known_words, patient_identifiers
from warehouse.quality_queries import connect_read_only, query

MASKED_COLUMNS = ("reason", "excerpt", "file_name", "position", "source")
# the patients whose loaded records came in the given messages (a quarantined record has
# none of its own): their identifiers are masked in the message id, as in the snapshot
_MESSAGE_PATIENTS = (
    "SELECT message_control_id, list(DISTINCT patient_key) FROM core.fct_lab_result_history "
    "WHERE list_contains($ids, message_control_id) GROUP BY message_control_id"
)


def _masked(frame: pl.DataFrame, known: frozenset[str], in_message: dict[str, list[str]]):
    """Texts by the quality reports' rules; a message id (an id the sender chose:
    docs/threat_model.md 9) with its patients' identifiers and other known words masked, but
    not by identifier patterns, which would mask every ordinary id (MSG00001)."""

    def message_id(text: str | None) -> str | None:
        if not text:
            return text
        return mask_identifiers_in(mask_known_words(text, known), in_message.get(text, []))

    return frame.with_columns(
        *(
            pl.col(c).map_elements(lambda t: mask_identifiers(t, known), return_dtype=pl.String)
            for c in MASKED_COLUMNS
        ),
        pl.col("message_control_id").map_elements(message_id, return_dtype=pl.String),
    )


def _list(home: Home, params: dict[str, Any]) -> pl.DataFrame:
    known = known_words(home.identity_db)
    con = connect_read_only(home.warehouse)
    try:
        frame = query(con, "quarantine_list", params)
        ids = [i for i in frame["message_control_id"].unique().to_list() if i]
        patients = dict(con.execute(_MESSAGE_PATIENTS, {"ids": ids}).fetchall()) if ids else {}
    finally:
        con.close()
    by_patient: dict[str, list[str]] = {}
    for key, identifier in patient_identifiers(home.identity_db).iter_rows():
        by_patient.setdefault(key, []).append(identifier)
    in_message = {
        m: [i for key in keys for i in by_patient.get(key, [])] for m, keys in patients.items()
    }
    return _masked(frame, known, in_message)


def list_quarantine(
    home: Home, *, feed: str | None = None, check: str | None = None, include_released=False
) -> pl.DataFrame:
    """Quarantined records (open ones unless ``include_released``), newest first."""
    return _list(
        home,
        {
            "feed": feed,
            "check_name": check,
            "include_released": bool(include_released),
            "quarantine_id": None,
        },
    )


def show(home: Home, quarantine_id: int) -> dict:
    """One quarantined record: check, reason, de-identified excerpt, file name and position,
    where the received bytes are archived. ``KeyError`` when there is no such record."""
    rows = _list(
        home,
        {
            "feed": None,
            "check_name": None,
            "include_released": True,
            "quarantine_id": int(quarantine_id),
        },
    ).to_dicts()
    if not rows:
        raise KeyError(f"no quarantine record {quarantine_id}")
    record = rows[0]
    archived = ingest.archive_path(home, record["file_sha256"])
    record["archived_path"] = str(archived)
    record["archived_exists"] = archived.exists()
    record["is_released"] = record["released_at"] is not None
    return record


def _clear_config_caches() -> None:
    """Forget cached configuration so the re-stage reads the fixed files."""
    from schemas.validate import plausible_ranges

    catalog.clear_cache()
    plausible_ranges.cache_clear()


def release(
    home: Home,
    *,
    ids: list[int] | None = None,
    check_name: str | None = None,
    feed: str | None = None,
    run_id: str,
    log=None,
) -> dict:
    """Re-stage the files of the selected open quarantine records and rebuild downstream.

    Selection: ``ids`` and/or ``check_name`` and/or ``feed`` (all open records when none is
    given). An id that is no open record (unknown, released, a duplicate delivery) raises
    LookupError and nothing is released. Returns counts: ``selected``, ``files``, ``released`` (now in core),
    ``still_quarantined`` (failed the same check again) and ``quarantined_under_other_check``
    (the fix let them past one check but another one put them aside).
    """
    from warehouse.reprocess import restage_files

    with steps.writer(home) as con:
        selected = [
            qid
            for (qid,) in query(
                con,
                "quarantine_select_open",
                {
                    "ids": list(ids) if ids is not None else None,
                    "check_name": check_name,
                    "feed": feed,
                },
            ).iter_rows()
        ]
        not_open = sorted(set(ids or ()) - set(selected))
        if not_open:
            raise LookupError(
                f"no open quarantine record {', '.join(map(str, not_open))} "
                "(unknown, already released, or a duplicate delivery)"
            )
        files = (
            [
                tuple(r)
                for r in query(con, "quarantine_release_files", {"ids": selected}).iter_rows()
            ]
            if selected
            else []
        )
    outcome = {
        "run_id": run_id,
        "selected": len(selected),
        "files": len(files),
        "released": 0,
        "still_quarantined": 0,
        "quarantined_under_other_check": 0,
    }
    if not files:
        return outcome
    _clear_config_caches()
    restage_files(home, run_id, files, log=log)
    con = connect_read_only(home.warehouse)
    try:
        counts = query(
            con, "quarantine_release_outcome", {"ids": selected, "run_id": run_id}
        ).to_dicts()[0]
    finally:
        con.close()
    outcome.update({k: int(v) for k, v in counts.items()})
    return outcome
