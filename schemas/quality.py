"""Contracts of the bookkeeping tables quality teams read: ``raw.files``, ``raw.runs``,
``quality.quarantine``, ``quality.run_feed_stats``, ``quality.gx_results``.

Their DDL is in ``warehouse/ddl/``; these models document them (data dictionary, DuckDB
comments) and check them in tests. They are not Dagster assets, so no asset check runs them.
"""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl

from schemas.core import optional, same_as
from schemas.staging import StgLabResult
from transforms.records import QUARANTINE_CHECKS

FEEDS = ["hl7", "lab_csv", "dexa", "meds"]
FILE_STATUSES = ["received", "parsed", "failed"]


class _Bookkeeping(pa.DataFrameModel):
    class Config:
        coerce = True
        strict = False


def _sha(what: str):
    return pa.Field(description=f"SHA-256 of the {what}'s bytes (raw.files.file_sha256).")


def _feed():
    return pa.Field(isin=FEEDS, description="Feed: `hl7`, `lab_csv`, `dexa` or `meds`.")


class RawFiles(_Bookkeeping):
    """Every received file once, by content hash; its bytes are archived under
    `archive/<sha[:2]>/<sha>`. Append-only. Grain: one row per distinct file content."""

    file_sha256: str = pa.Field(unique=True, description="SHA-256 of the file's bytes.")
    feed: str = _feed()
    source: str = optional(
        "Lab source (CSV) or DXA vendor (the landing sub-folder); NULL otherwise."
    )
    name: str = pa.Field(
        description="Path relative to the landing folder at first delivery; in the published "
        "snapshot with identifier-like parts masked (▒)."
    )
    bytes: int = pa.Field(ge=0, description="File size in bytes.")
    received_at: dt.datetime = pa.Field(description="When the file was first received.")
    status: str = pa.Field(
        isin=FILE_STATUSES,
        description="`received` (waiting to be staged), `parsed`, or `failed` (quarantined whole).",
    )
    run_id: str = optional("Run that last staged the file (or received it, before staging).")
    n_received: pl.Int32 = optional("Records in the file (docs/feeds.md: OBX, data row…).")
    n_accepted: pl.Int32 = optional("Records accepted into staging.")
    n_quarantined: pl.Int32 = optional("Records put aside in quality.quarantine.")


class RawRuns(_Bookkeeping):
    """Pipeline runs (Dagster runs, `labwh run`, releases and re-processing).
    Grain: one row per run."""

    run_id: str = pa.Field(unique=True, description="Run id (the Dagster run id for Dagster runs).")
    started_at: dt.datetime = pa.Field(description="Start time.")
    finished_at: dt.datetime = optional("End time; NULL while running or after a crash.")
    status: str = pa.Field(description="`running`, `success` or `failure`.")
    landing_dir: str = optional("Landing folder the run read.")
    n_files_new: pl.Int32 = optional("Files received for the first time by the run.")
    parameters_json: str = optional("Run parameters as JSON.")


class RawFeatureState(_Bookkeeping):
    """What each feature mart, and core (the marts' input), was last built with. Grain: one
    row per mart, plus one for core."""

    model: str = pa.Field(
        unique=True, description="The mart (`marts.feat_e2_exposure` …), or `core`."
    )
    params_json: str = pa.Field(
        description="JSON: `params` (thresholds, max_gap_days, censored_fraction, "
        "min_span_years, LSC per site …; for core the exposure persistence window), "
        "`model_sha256` (SHA-256 of the model SQL) and, for a mart, `core` (core's state when "
        "the mart was built); a change of any rebuilds the mart for every patient."
    )
    built_at: dt.datetime = pa.Field(description="When the mart was last built or refreshed.")
    run_id: str = optional("The run that built it (raw.runs).")


class QualityQuarantine(_Bookkeeping):
    """Every record put aside, with the check that failed, a readable reason and where it
    came from. Grain: one row per file × position × check."""

    quarantine_id: int = pa.Field(
        unique=True, description="Id (for `labwh quarantine show|release`)."
    )
    file_sha256: str = _sha("file")
    position: str = pa.Field(
        description="Where the record sits: `m<msg>/s<seg>` (HL7), `m<msg>` (whole message), "
        "`line <n>` (CSV/text), `delivery <name>` (duplicate file), `file` (unreadable file)."
    )
    feed: str = _feed()
    source: str = optional("Lab source or DXA vendor; NULL otherwise.")
    check_name: str = pa.Field(
        isin=sorted(QUARANTINE_CHECKS),
        description="The check that failed (docs/feeds.md, docs/quality.md).",
    )
    reason: str = pa.Field(description="Readable reason, without identifiers.")
    excerpt: str = optional("De-identified excerpt of the record (identifiers masked).")
    message_control_id: str = same_as(StgLabResult, "message_control_id")
    run_id: str = optional("Run that put the record aside.")
    quarantined_at: dt.datetime = pa.Field(description="When the record was put aside.")
    released_at: dt.datetime = optional("When a re-stage let the record pass; NULL while held.")
    release_run_id: str = optional("Run (release or re-processing) that let it pass.")


class QualityRunFeedStats(_Bookkeeping):
    """Files and records received / accepted / quarantined, written as each file is staged
    (received = accepted + quarantined). Grain: one row per run × feed."""

    run_id: str = pa.Field(description="Run.")
    feed: str = _feed()
    n_files: pl.Int32 = pa.Field(ge=0, description="Files staged (or duplicate deliveries).")
    n_received: pl.Int32 = pa.Field(ge=0, description="Records received.")
    n_accepted: pl.Int32 = pa.Field(ge=0, description="Records accepted.")
    n_quarantined: pl.Int32 = pa.Field(ge=0, description="Records put aside.")

    class Config:
        unique = ["run_id", "feed"]


class QualityGxResults(_Bookkeeping):
    """Great Expectations outcome per run (warehouse/quality_gx.py): counts and the
    expectation's own arguments, never failing values.
    Grain: one row per run × table × expectation."""

    run_id: str = pa.Field(description="Run the expectations were evaluated for.")
    evaluated_at: dt.datetime = pa.Field(description="Run date the date rules compared with.")
    table_name: str = pa.Field(description="Table validated (`schema.table`).")
    expectation_no: pl.Int32 = pa.Field(ge=0, description="Order within the table's suite.")
    expectation_type: str = pa.Field(
        description="GX expectation, e.g. `expect_column_values_to_be_unique`."
    )
    column_name: str = optional("Column, or comma-joined columns of a compound key.")
    row_condition: str = optional("Rows the expectation applies to (analyte × unit of a range).")
    arguments_json: str = optional("Arguments from config/gx_suites.yaml (min/max, value set).")
    success: bool = pa.Field(description="True when the expectation held.")
    element_count: int = optional("Rows evaluated.")
    unexpected_count: int = optional("Rows that broke the expectation.")
    unexpected_percent: float = optional("unexpected_count as % of the non-null rows.")

    class Config:
        unique = ["run_id", "table_name", "expectation_no"]


QUALITY_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "raw.files": RawFiles,
    "raw.runs": RawRuns,
    "raw.feature_state": RawFeatureState,
    "quality.quarantine": QualityQuarantine,
    "quality.run_feed_stats": QualityRunFeedStats,
    "quality.gx_results": QualityGxResults,
}
