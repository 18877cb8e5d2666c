"""What every parser returns: staged rows, rejects with reasons, and identities.

Parsers are pure: bytes (+ configuration) in, a ``ParseResult`` out. They never write to the
warehouse and never log identifiers. ``received == len(rows) + len(rejects)`` must hold.
"""

from __future__ import annotations

import datetime as dt
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

# the zone furthest ahead of UTC (Line Islands, UTC+14): no place's clock shows a later time
AHEAD_OF_UTC = dt.timedelta(hours=14)


def latest_wall_clock(at: dt.datetime) -> dt.datetime:
    """The latest local time anywhere at the instant ``at`` (naive = this machine's local
    time): the bound of ``future_date``. Records carry their facility's local time (each
    source's ``timezone:``), which the server's own clock cannot bound: a server west of the
    facility saw a result drawn an hour ago as hours in the future."""
    return at.astimezone(dt.UTC).replace(tzinfo=None) + AHEAD_OF_UTC


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
