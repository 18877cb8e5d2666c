"""What every parser returns: staged rows, rejects with reasons, and identities.

Parsers are pure: bytes (+ configuration) in, a ``ParseResult`` out. They never write to the
warehouse and never log identifiers. ``received == len(rows) + len(rejects)`` must hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

# check_name vocabulary (docs/feeds.md)
MALFORMED_MESSAGE = "malformed_message"
MISSING_PATIENT_ID = "missing_patient_id"
UNKNOWN_UNIT = "unknown_unit"
UNPARSEABLE_VALUE = "unparseable_value"
IMPLAUSIBLE_VALUE = "implausible_value"
FUTURE_DATE = "future_date"
IMPLAUSIBLE_DATE = "implausible_date"
DUPLICATE_FILE = "duplicate_file"
UNREADABLE_FILE = "unreadable_file"
FILE_TOO_LARGE = "file_too_large"
NO_RECORDS = "no_records"
UNSUPPORTED_FILE = "unsupported_file"

CHECK_NAMES = (
    MALFORMED_MESSAGE,
    MISSING_PATIENT_ID,
    UNKNOWN_UNIT,
    UNPARSEABLE_VALUE,
    IMPLAUSIBLE_VALUE,
    FUTURE_DATE,
    IMPLAUSIBLE_DATE,
    DUPLICATE_FILE,
    UNREADABLE_FILE,
    FILE_TOO_LARGE,
    NO_RECORDS,
    UNSUPPORTED_FILE,
)

# a staged column that broke its Pandera contract (schemas/validate.py)
SCHEMA_VIOLATION = "schema_violation"
# every check_name quality.quarantine can hold
QUARANTINE_CHECKS = (*CHECK_NAMES, SCHEMA_VIOLATION)

# (namespace, identifier) -> pseudonymous key
Pseudonymizer = Callable[[str, str], str]


@dataclass(frozen=True)
class Reject:
    """A record put aside by a parser. ``excerpt`` must already be de-identified."""

    position: str
    check_name: str
    reason: str
    excerpt: str | None = None
    message_control_id: str | None = None


@dataclass(frozen=True)
class Identity:
    """Identifying data for the restricted identity store only (never in analyst tables)."""

    patient_key: str
    namespace: str
    identifier: str
    identifier_type: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    birth_date: str | None = None  # ISO date


@dataclass
class ParseResult:
    rows: pl.DataFrame
    rejects: list[Reject] = field(default_factory=list)
    identities: list[Identity] = field(default_factory=list)

    @property
    def received(self) -> int:
        return self.rows.height + len(self.rejects)
