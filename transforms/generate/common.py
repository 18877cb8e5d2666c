"""Small shared helpers of the synthetic cohort generator: seeded RNGs, formatting, files.

Everything here is deterministic: no wall clock, no hash-order dependence.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass, field
from pathlib import Path

NAMESPACE = "NORTH_CLINIC"
SENDING_APP = "LABWH_LIS"

# Fixed synthetic name lists (ISO-8859-1 encodable, a few non-ASCII on purpose).
GIVEN_NAMES = (
    "John", "Michael", "David", "James", "Robert", "William", "Thomas", "Richard",
    "José", "François", "Jürgen", "Søren", "Björn", "René", "André", "Zoë",
    "Peter", "Mark", "Paul", "Steven", "Kevin", "Brian", "Gary", "Eric",
)  # fmt: skip
FAMILY_NAMES = (
    "Doe", "Smith", "Johnson", "Brown", "Miller", "Davis", "Wilson", "Taylor",
    "Müller", "García", "Peña", "Nuñez", "Schäfer", "Çelik", "Øster", "O'Brien",
    "Anderson", "Clark", "Lewis", "Walker", "Young", "King", "Wright", "Scott",
)  # fmt: skip


def rng_for(seed: int, *parts: object) -> random.Random:
    """An independent, reproducible stream for one purpose (string seeds hash with SHA-512)."""
    return random.Random("labwh|" + "|".join(str(p) for p in (seed, *parts)))


def mrn_of(index: int) -> str:
    return f"MRN{index + 1:07d}"


def lognormal(rng: random.Random, median: float, sd: float) -> float:
    return rng.lognormvariate(0.0, sd) * median


def fmt_num(x: float, decimals: int, decimal_sep: str = ".") -> str:
    s = f"{x:.{decimals}f}"
    return s.replace(".", decimal_sep) if decimal_sep != "." else s


def days_between(a: dt.date, b: dt.date) -> int:
    return (b - a).days


@dataclass
class FileRecordCount:
    """Expected counts for one landing file (records as defined in docs/feeds.md)."""

    feed: str
    source: str
    name: str  # path relative to the landing folder
    received: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)

    @property
    def n_quarantined(self) -> int:
        return sum(self.quarantined.values())

    def add_bad(self, check_name: str) -> None:
        self.quarantined[check_name] = self.quarantined.get(check_name, 0) + 1


@dataclass(frozen=True)
class BadRecord:
    """One record the pipeline must quarantine (truth/bad_records.csv)."""

    feed: str
    source: str
    file: str
    position: str
    check_name: str
    mrn: str
    note: str = ""
    loinc_code: str = ""
    collected_date: str = ""
    value_if_released: str = ""


def csv_text(
    header: list[str], rows: list[list[str]], delimiter: str = ",", newline: str = "\n"
) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def write_bytes(root: Path, rel: str, data: bytes) -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def duplicate_name(rel: str) -> str:
    """Name of a re-delivered copy; sorts after the original (``.`` < ``_``)."""
    p = Path(rel)
    return str(p.with_name(p.stem + "_resent" + p.suffix))


TIMEZONE = "America/New_York"


@dataclass
class FeedOutput:
    """What one feed writer produced: files (relative path → bytes), counts, bad records."""

    feed: str
    files: dict[str, bytes] = field(default_factory=dict)
    counts: list[FileRecordCount] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)
    obs: list = field(default_factory=list)

    def add_duplicates(self, rng: random.Random, n: int) -> None:
        """Re-deliver ``n`` files under another name in the same folder (exact same bytes)."""
        for c in sorted(rng.sample(self.counts, min(n, len(self.counts))), key=lambda c: c.name):
            name = duplicate_name(c.name)
            self.files[name] = self.files[c.name]
            dup = FileRecordCount(self.feed, c.source, name, received=1)
            dup.add_bad("duplicate_file")
            self.counts.append(dup)
            self.bad.append(BadRecord(self.feed, c.source, name, "file", "duplicate_file", "",
                                      note="copy of " + c.name))  # fmt: skip


def bad_targets(rng: random.Random, patients: list, n: int) -> list[tuple]:
    """``n`` (patient, datetime) pairs inside follow-up for bad records (reproducible)."""
    out = []
    for _ in range(n):
        p = patients[rng.randrange(len(patients))]
        day = p.start + dt.timedelta(days=rng.randint(0, (p.end - p.start).days))
        out.append((p, dt.datetime.combine(day, dt.time(rng.randint(7, 11), 15))))
    return out


def in_2099(d):
    """The same day and time in 2099 (29 February becomes the 28th): a future date."""
    return d.replace(year=2099, day=min(d.day, 28) if d.month == 2 else d.day)
