"""Reading delimited text exports: decoding, physical line numbers, numbers, dates.

Shared by the CSV lab, DXA and medication parsers. Pure functions, no I/O.

- ``decode``: a BOM (UTF-8, UTF-16LE/BE) wins over the configured encoding; bytes that the
  encoding cannot read become U+FFFD (only free-text cells can hold them: a number or a date
  with one is then unreadable and its record is rejected).
- ``read_table``: header + data rows with the *physical* line number where each row starts
  (header = line 1); quoted cells may span lines; blank lines are not records.
- ``parse_number``: ``<5``, ``<=5``, ``>300``, ``5.0 pg/mL``, ``7,3`` (decimal comma),
  ``1,364`` / ``1.364`` (thousands separators), ``185.2 lbs``.
- ``parse_datetime`` / ``parse_date``: a list of ``strptime`` formats; an ISO 8601 value
  with an offset is converted to the facility's time zone and made naive.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from transforms.records import UNPARSEABLE_VALUE, Identity, Reject

_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode(data: bytes, encoding: str = "utf-8") -> str:
    """Bytes → text; a byte-order mark decides the encoding, else ``encoding``.

    A UTF-16 source whose file has no BOM and no NUL byte in its first 4 KiB was re-saved as
    UTF-8 (text of a UTF-16 export is mostly ASCII, each character with a NUL byte): read as
    UTF-8 rather than as a header of CJK garbage and no row.
    """
    for bom, enc in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(enc, errors="replace")
    if encoding.lower().replace("_", "-").startswith("utf-16") and b"\x00" not in data[:4096]:
        encoding = "utf-8"
    return data.decode(encoding, errors="replace")


@dataclass(frozen=True)
class Row:
    line: int  # 1-based physical line where the row starts (header = 1)
    cells: list[str]
    # a quote opened on this line ran on into the following rows: the line is read alone
    # (and put aside by ``check_width``), the lines after it are read as rows of their own
    unclosed_quote: bool = False
    # a cell of the line is longer than the csv module's field size limit: split plainly
    too_long: bool = False

    @property
    def misread(self) -> bool:
        """Its cells are not the row's: the line was read alone or split plainly."""
        return self.unclosed_quote or self.too_long

    @property
    def position(self) -> str:
        return f"line {self.line}"


class _Lines:
    """The physical lines of a text for ``csv.reader``, with a position that can be set back."""

    def __init__(self, text: str) -> None:
        self.lines = io.StringIO(text, newline="").readlines()
        self.pos = 0  # index of the next line to hand out

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _closes_cleanly(line: str, delimiter: str) -> bool:
    """Whether the quote that ends a quoted cell on ``line`` (read from inside the quotes) is
    followed by a delimiter or the end of the line, as in any well-formed CSV. The csv module
    accepts `"<40,N,A3,F⏎…,"<40`: the second line's *opening* quote taken as a closing one,
    followed by text. That is a stray quote that ran on, even when the record it makes has
    the header's number of cells (the same fault on consecutive rows of an export)."""
    i, n = 0, len(line)
    while i < n:
        if line[i] == '"':
            if i + 1 < n and line[i + 1] == '"':  # an escaped quote inside the cell
                i += 2
                continue
            return i + 1 == n or line[i + 1] in (delimiter, "\r", "\n")
        i += 1
    return True


def _ran_on(cells: list[str], width: int, continued: list[str], delimiter: str) -> bool:
    """Whether a record that spans lines is an unclosed quote rather than a quoted cell with
    line breaks: it has the wrong number of cells, or (a coincidence of widths) it swallowed
    a line that is a whole row by itself: its quotes balanced (none, or ``"Cher"``) and the
    header's number of cells read alone (for tables of four columns or more, where a line of
    a quoted text rarely has that many delimiters). The line that closes a real quoted cell
    holds an odd number of quotes; a quote that never closes runs to the end of the file,
    whose last line is then checked like the others."""
    if len(cells) != width or not _closes_cleanly(continued[-1], delimiter):
        return True
    return width >= 4 and any(
        line.count('"') % 2 == 0 and len(_alone(line, delimiter)) == width for line in continued
    )


def _alone(line: str, delimiter: str) -> list[str]:
    """The cells of one physical line read by itself (split plainly if even it overflows)."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return line.rstrip("\r\n").split(delimiter)


_EXCEL_SEP_LINE = re.compile(r'^"?sep=(?P<d>[^"\r\n])"?\s*$', re.IGNORECASE)


def _excel_sep_line(lines: _Lines) -> str | None:
    """The delimiter an Excel ``sep=;`` first line names (the line is then consumed)."""
    m = _EXCEL_SEP_LINE.match(lines.lines[0]) if lines.lines else None
    if m is None:
        return None
    lines.pos = 1
    return m.group("d")


def read_table(text: str, delimiter: str) -> tuple[list[str], list[Row]]:
    """Header cells (stripped) and data rows; blank lines are skipped, never records.

    An Excel ``sep=<d>`` first line is no header: it is skipped, and ``<d>`` is the file's
    delimiter (the application that wrote the file says so, whatever the source's config).

    A stray quote (``"Müller, Jörg`` with no closing quote) would make the csv module join
    every following line, up to the next quote or the end of the file, into one record; such
    a record becomes its first line alone, flagged ``unclosed_quote``, and reading goes on
    from the line after it, so that no row disappears inside another.
    """
    lines = _Lines(text)
    delimiter = _excel_sep_line(lines) or delimiter
    reader = csv.reader(lines, delimiter=delimiter)
    header: list[str] | None = None
    rows: list[Row] = []
    while True:
        start = lines.pos  # 0-based index of the record's first physical line
        overflow = False
        try:
            cells = next(reader, None)
        except csv.Error:  # a quote that ran on past the csv module's field size limit
            if header is None:
                raise
            cells, overflow = [], True
            reader = csv.reader(lines, delimiter=delimiter)  # a fresh state, from start + 1
        if cells is None:
            break
        if header is None:
            if lines.pos > start + 1:
                # a header never holds a line break: a stray quote in it (`MRN,"PatientName,…`)
                # would swallow data lines; its first line alone, split plainly, is the header
                cells = [c.strip('"') for c in lines.lines[start].rstrip("\r\n").split(delimiter)]
                lines.pos = start + 1
                reader = csv.reader(lines, delimiter=delimiter)
            if cells and any(c.strip() for c in cells):
                header = [c.strip() for c in cells]
            continue
        continued = lines.lines[start + 1 : lines.pos]
        first = lines.lines[start]
        if overflow and '"' not in first:  # no quote: the line itself holds the long cell
            rows.append(Row(start + 1, _alone(first, delimiter), too_long=True))
            lines.pos = start + 1
            continue
        if overflow or (continued and _ran_on(cells, len(header), continued, delimiter)):
            rows.append(Row(start + 1, _alone(first, delimiter), unclosed_quote=True))
            lines.pos = start + 1
            continue
        if not cells or all(c.strip() == "" for c in cells):
            continue
        # the last line's quote that never closes: its reason is the quote, not the width
        unclosed = not continued and len(cells) != len(header) and not _closed(first, delimiter)
        rows.append(Row(start + 1, cells, unclosed_quote=unclosed))
    return header or [], rows


def _closed(line: str, delimiter: str) -> bool:
    """Whether every quoted cell of one line is closed (csv's strict mode reads it)."""
    try:
        list(csv.reader([line], delimiter=delimiter, strict=True))
    except csv.Error:
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class TableFormat:
    """How a delimited export is written: the part of a source config every parser shares."""

    columns: Mapping[str, str | None] = field(default_factory=dict)  # canonical → header
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    na_values: tuple[str, ...] = ("",)

    def header(self, name: str) -> str | None:
        return self.columns.get(name)

    def read(self, data: bytes) -> tuple[list[str], list[Row]]:
        return read_table(decode(data, self.encoding), self.delimiter)

    def optional(self, cell: str) -> str | None:
        """The cell, or None when it is empty / an NA marker."""
        return None if is_na(cell, self.na_values) else cell


def table_format_args(raw: Mapping, na_default: Iterable[str] = ("",)) -> dict:
    """The ``TableFormat`` keyword arguments of a YAML mapping."""
    return {
        "columns": dict(raw.get("columns") or {}),
        "encoding": str(raw.get("encoding") or "utf-8"),
        "delimiter": str(raw.get("delimiter") or ","),
        "decimal": str(raw.get("decimal") or "."),
        "na_values": tuple(
            "" if v is None else str(v) for v in raw.get("na_values", list(na_default))
        ),
    }


def cell_getter(header: list[str]):
    """``get(row, header_name)`` → stripped cell text ('' when the row is short)."""
    index = {name: i for i, name in enumerate(header)}

    def get(row: Row, name: str | None) -> str:
        if name is None:
            return ""
        i = index.get(name)
        if i is None or i >= len(row.cells):
            return ""
        return row.cells[i].strip()

    return get


@lru_cache(maxsize=64)
def _na_keys(na_values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip().upper() for v in na_values)


_WHOLE_AS_FLOAT = re.compile(r"(\d+)\.0+")


def whole_number(text: str) -> str:
    """A whole number a spreadsheet or dataframe export wrote as a float (``1234.0``) as the
    number (``1234``); any other text as it is."""
    m = _WHOLE_AS_FLOAT.fullmatch(text)
    return m.group(1) if m else text


def is_na(text: str | None, na_values: Iterable[str]) -> bool:
    """Empty or one of the source's NA markers (compared after stripping, case-insensitive)."""
    if text is None:
        return True
    t = text.strip()
    return t == "" or t.upper() in _na_keys(tuple(na_values))


@dataclass(frozen=True)
class Number:
    value: float
    comparator: str | None  # '<', '<=', '>', '>=' or None
    unit: str | None  # a unit written in the same cell ('5.0 pg/mL'), else None


_NUMBER = re.compile(
    r"""^\s*
    (?P<cmp><=|>=|<|>|≤|≥)?\s*
    (?P<num>[+-]?(?:\d[\d.,\u00a0\u202f' ]*\d|\d)(?:[eE][+-]?\d+)?|[+-]?[.,]\d+)
    \s*(?P<unit>[^\d\s.,+-].*?)?\s*$""",
    re.VERBOSE,
)
_CMP = {"≤": "<=", "≥": ">="}


def _number_text(num: str, decimal: str) -> str | None:
    """Normalise one numeral to Python float syntax, or None when it is ambiguous/garbled."""
    mantissa, exp = re.match(r"^(.*?)([eE][+-]?\d+)?$", num).groups()
    m = mantissa.replace("\u00a0", " ").replace("\u202f", " ")
    thousands = "," if decimal == "." else "."
    sign = ""
    if m[:1] in "+-":
        sign, m = m[0], m[1:]
    # grouped thousands with the source's separator (or a space / apostrophe): 1,364  1.364,5
    for sep in (thousands, " ", "'"):
        # a first group never starts with 0: `0,987` in a decimal-point source is 0.987
        grouped = rf"^[1-9]\d{{0,2}}(?:{re.escape(sep)}\d{{3}})+(?:{re.escape(decimal)}\d+)?$"
        if re.match(grouped, m):
            m = m.replace(sep, "")
            break
    if " " in m or "'" in m:
        return None
    if m.count(",") + m.count(".") > 1:
        return None
    # one separator left: it is the decimal mark (a lone '.' in a decimal-comma source, or a
    # lone ',' not followed by exactly three digits in a decimal-point source)
    m = m.replace(",", ".")
    return sign + m + (exp or "")


def parse_number(text: str | None, decimal: str = ".") -> Number | None:
    """Read a numeric cell; None when no rule reads it (the caller decides NA first)."""
    if text is None:
        return None
    return _parse_number(text, decimal)


@lru_cache(maxsize=65536)  # cells repeat a lot within a file; Number is immutable
def _parse_number(text: str, decimal: str) -> Number | None:
    m = _NUMBER.match(text.replace("\u2212", "-"))
    if not m:
        return None
    num = _number_text(m.group("num"), decimal)
    if num is None:
        return None
    try:
        value = float(num)
    except ValueError:
        return None
    if not math.isfinite(value):  # `1e400`: no measurement is infinite
        return None
    cmp_ = m.group("cmp")
    unit = m.group("unit")
    return Number(value, _CMP.get(cmp_, cmp_), unit.strip() if unit else None)


def _local_naive(value: dt.datetime, timezone: str | None) -> dt.datetime:
    if value.tzinfo is None:
        return value
    if timezone:
        value = value.astimezone(ZoneInfo(timezone))
    return value.replace(tzinfo=None)


def parse_datetime(
    text: str | None, formats: Iterable[str], timezone: str | None = None
) -> dt.datetime | None:
    """First matching format; else ISO 8601. Offsets → facility-local naive time."""
    if text is None or not text.strip():
        return None
    return _parse_datetime(text.strip(), tuple(formats), timezone)


@lru_cache(maxsize=65536)  # a draw's results share one collection time; datetimes are immutable
def _parse_datetime(t: str, formats: tuple[str, ...], timezone: str | None) -> dt.datetime | None:
    # OverflowError: a placeholder at the ends of the calendar (`0001-01-01T00:00:00Z`, as .NET
    # writes a null date) shifted out of it by the facility's offset: unreadable, not a crash
    for fmt in formats:
        try:
            return _local_naive(dt.datetime.strptime(t, fmt), timezone)
        except (ValueError, OverflowError):
            continue
    try:
        return _local_naive(dt.datetime.fromisoformat(t), timezone)
    except (ValueError, OverflowError):
        return None


def parse_date(text: str | None, formats: Iterable[str]) -> dt.date | None:
    value = parse_datetime(text, formats)
    return value.date() if value else None


def parse_int(text: str | None, decimal: str = ".") -> int | None:
    """A whole number ('30', '30.0'); None for anything else."""
    n = parse_number(text, decimal)
    if n is None or n.comparator or n.unit or not math.isfinite(n.value):
        return None
    if n.value != int(n.value):
        return None
    return int(n.value)


def missing_columns(header: list[str], wanted: Iterable[str | None]) -> Iterator[str]:
    """The configured header names that the file does not have."""
    have = set(header)
    for name in wanted:
        if name and name not in have:
            yield name


_OTHER_DELIMITERS = (";", "\t", "|", ",")


def lacking_columns(header: list[str], wanted: Iterable[str | None]) -> str | None:
    """Why no row can be read when the file lacks configured columns, else None; a header
    read as one column that holds another common delimiter names the one it holds most
    (the usual cause)."""
    absent = list(missing_columns(header, wanted))
    if not absent:
        return None
    reason = f"file lacks columns {absent}"
    if len(header) == 1:
        counts = {d: header[0].count(d) for d in _OTHER_DELIMITERS}
        likely = max(counts, key=counts.__getitem__)  # the first of equals
        if counts[likely]:
            reason += (
                f"; its header reads as one column holding {likely!r}: is the file "
                f"{likely!r}-separated? (the source's config sets `delimiter`)"
            )
    return reason


def repeated_columns(header: list[str], wanted: Iterable[str | None]) -> str | None:
    """Why no row can be read when a column a parser reads appears more than once in the
    header (which cell holds the value cannot be known), else None."""
    twice = sorted({n for n in wanted if n and header.count(n) > 1})
    return f"columns {twice} appear more than once in the header" if twice else None


def split_name(name: str | None) -> tuple[str | None, str | None]:
    """'DOE^JOHN' / 'Doe, John' → (family, given); a single string is the family name."""
    name = (name or "").strip()
    if not name:
        return None, None
    for sep in ("^", ","):
        if sep in name:
            family, given = name.split(sep, 1)
            return family.strip() or None, given.strip() or None
    return name, None


def merge_identity(known: Identity | None, new: Identity) -> Identity:
    """Keep what was known; fill its empty fields from a later row of the same patient."""
    if known is None:
        return new
    fill = {
        f: getattr(new, f)
        for f in ("family_name", "given_name", "birth_date")
        if getattr(known, f) is None and getattr(new, f) is not None
    }
    return replace(known, **fill) if fill else known


class RowError(Exception):
    """A record that cannot be staged: becomes a ``Reject`` (reason must hold no identifier).
    ``of_file``: the reason is about the file (its header), not about any cell of the row, so
    it stands even when the row's cells are shifted."""

    def __init__(self, check_name: str, reason: str, *, of_file: bool = False):
        super().__init__(reason)
        self.check_name = check_name
        self.reason = reason
        self.of_file = of_file


def check_width(row: Row, header: list[str]) -> None:
    """A row with another number of cells than the header is unreadable: an unquoted
    delimiter (a name like ``Doe, John``) or a dropped cell shifts every later value."""
    if row.unclosed_quote:
        raise RowError(
            UNPARSEABLE_VALUE,
            "a quote opened on this line is not closed before the rows that follow: the line "
            "is put aside and the lines after it are read as rows",
        )
    if row.too_long:
        raise RowError(
            UNPARSEABLE_VALUE,
            f"a cell of this line is longer than {csv.field_size_limit()} characters",
        )
    if len(row.cells) != len(header):
        raise RowError(
            UNPARSEABLE_VALUE, f"row has {len(row.cells)} cells, the header has {len(header)}"
        )
    # (a joined export's own byte-order mark stays in its header's first cell)
    if [c.strip().lstrip("\ufeff") for c in row.cells] == header:
        raise RowError(
            UNPARSEABLE_VALUE, "the header line again, inside the file (exports joined together?)"
        )


def parse_rows(
    rows: Iterable[Row],
    parse_one: Callable[[Row], tuple[list[dict[str, Any]], Identity]],
    excerpt: Callable[[Row], str | None],
    width: int,
) -> tuple[list[dict[str, Any]], list[Reject], list[Identity]]:
    """Run ``parse_one`` on every row: its records are kept, a ``RowError`` is a reject.

    A row is one record: it either yields its staged rows or exactly one reject.
    Identities are merged per patient key. A rejected row whose cell count differs from the
    header's ``width`` (an unquoted delimiter in a name, a dropped cell) has its cells shifted:
    any cell may hold a name or a birth date, so its reason quotes no cell and it gets no
    excerpt.
    """
    records: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    identities: dict[str, Identity] = {}
    for row in rows:
        try:
            out, identity = parse_one(row)
        except RowError as err:
            if len(row.cells) == width and not row.misread:
                rejects.append(Reject(row.position, err.check_name, err.reason, excerpt(row)))
            elif row.misread or err.of_file:  # the reason names no cell; cells may be shifted
                rejects.append(Reject(row.position, err.check_name, err.reason, None))
            else:
                reason = (
                    f"{err.check_name} in a row of {len(row.cells)} cells for {width} columns "
                    "(cells shifted; cell text withheld)"
                )
                rejects.append(Reject(row.position, err.check_name, reason, None))
            continue
        records.extend(out)
        identities[identity.patient_key] = merge_identity(
            identities.get(identity.patient_key), identity
        )
    return records, rejects, list(identities.values())


def line_of(position: str) -> int:
    """'line 12' → 12 (for sorting rejects)."""
    return int(position.rsplit(" ", 1)[-1])
