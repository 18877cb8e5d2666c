"""HL7 v2 DTM/TS timestamps → facility-local naive ``datetime``.

Accepted: ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`` (v2.3 TS may add ``^precision``:
the caller passes component 1 only). A value with an offset is converted to the facility's
IANA time zone and the zone dropped; a value without one is taken as facility-local already.
Missing parts take their first value (``2023`` → 2023-01-01 00:00, ``20230701`` → midnight).
A value precise only to the day, month or year names that calendar day (month, year), not an
instant: its offset is checked but not applied (``20230701+0000`` stays 2023-07-01, where
converting its made-up midnight would move it to 30 June in America/New_York).
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from zoneinfo import ZoneInfo

_DTM = re.compile(
    r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?(?:([+-])(\d{2})(\d{2}))?"
)
_BAD = object()
_EPOCH = dt.datetime(1970, 1, 1)
_ONE_US = dt.timedelta(microseconds=1)


class BadTimestamp(ValueError):
    """A non-empty text that is not an HL7 DTM (the text is not part of the message)."""


def parse_dtm(text: str | None, timezone: str) -> dt.datetime | None:
    """Parse a DTM; ``None`` for an empty value, ``BadTimestamp`` for an invalid one."""
    return _checked(_parse, text, timezone)


def parse_dtm_us(text: str | None, timezone: str) -> int | None:
    """Like ``parse_dtm`` but as microseconds since 1970-01-01 (local, naive): for frames."""
    return _checked(_parse_us, text, timezone)


def _checked(parse, text: str | None, timezone: str):
    if not text:
        return None
    out = parse(text, timezone)
    if out is _BAD:
        raise BadTimestamp("not an HL7 DTM timestamp")
    return out


@lru_cache(maxsize=8192)
def _parse_us(text: str, timezone: str):
    value = _convert(text, timezone)
    if value is _BAD or value is None:
        return value
    return (value - _EPOCH) // _ONE_US


@lru_cache(maxsize=8192)
def _parse(text: str, timezone: str):
    return _convert(text, timezone)


def _convert(text: str, timezone: str):
    m = _DTM.fullmatch(text.strip())
    if m is None:
        return None if not text.strip() else _BAD
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    if frac is not None and s is None:
        return _BAD
    try:
        value = dt.datetime(
            int(y),
            int(mo or 1),
            int(d or 1),
            int(h or 0),
            int(mi or 0),
            int(s or 0),
            int(frac.ljust(6, "0")) if frac else 0,
        )
        if sign is None:
            return value
        offset = _offset(sign, oh, om)
        if offset is None:
            return _BAD
        if h is None:  # a date (or month, year) without a time: no instant to convert
            return value
        return value.replace(tzinfo=offset).astimezone(_zone(timezone)).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return _BAD


@lru_cache(maxsize=256)
def _offset(sign: str, hours: str, minutes: str) -> dt.timezone | None:
    if int(hours) > 14 or int(minutes) > 59:
        return None
    total = (int(hours) * 60 + int(minutes)) * (1 if sign == "+" else -1)
    return dt.timezone(dt.timedelta(minutes=total))


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def birth_year_and_date(text: str | None) -> tuple[int | None, str | None]:
    """PID-7 → (birth year, ISO date when given to the day); ``(None, None)`` when unreadable."""
    t = (text or "").strip()
    if len(t) < 4 or not t[:4].isdigit():
        return None, None
    year = int(t[:4])
    if len(t) >= 8 and t[4:8].isdigit():
        try:
            return year, dt.date(year, int(t[4:6]), int(t[6:8])).isoformat()
        except ValueError:
            return year, None
    return year, None
