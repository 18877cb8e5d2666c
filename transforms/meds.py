"""Medication orders / dispenses (landing/meds/*.csv) → staged medication records.

Format (docs/feeds.md): comma, UTF-8, one row per order or dispense, columns
``patient_id, patient_id_system, record_type, rxnorm_code, drug_name, dose_value, dose_unit,
frequency, start_date, end_date, days_supply, quantity``. Rules (docs/medications.md):
- ingredient and strength from ``config/medications.csv`` by RxNorm code (NULL when not
  catalogued: the record still loads);
- ``dose_mg``: mass units by ``config/medication_dose_units.csv``; form units (tablet, mL)
  × the product's strength; a catalogued drug whose unit has no rule is ``unknown_unit``;
- ``doses_per_day`` from the rules of ``config/medication_frequencies.csv`` (the whole text, else
  the longest rule found inside sig text); a frequency text no rule reads loads with
  ``doses_per_day`` NULL and ``frequency_is_unread`` true;
- ``end_date`` = as sent, else ``start_date + days_supply − 1``; ``days_supply`` = as sent, else
  ``end_date − start_date + 1``. Neither present, end before start, or days_supply < 1 →
  ``unparseable_value``. An end on or after ``open_end_from`` (``config/medication_limits.csv``:
  9999-12-31, 2099-12-31, any year ≥ 2100) is an open-ended placeholder, read as no end: an order
  without days supply loads open-ended (end and days supply NULL), a dispense needs its supply.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from schemas.staging import StgMedication, columns_of
from transforms import redact, textio
from transforms.catalog import CONFIG_DIR, unit_key
from transforms.records import (
    IMPLAUSIBLE_VALUE,
    MISSING_PATIENT_ID,
    UNKNOWN_UNIT,
    UNPARSEABLE_VALUE,
    Identity,
    ParseResult,
)

MEDICATIONS_CSV = CONFIG_DIR / "medications.csv"
DOSE_UNITS_CSV = CONFIG_DIR / "medication_dose_units.csv"
FREQUENCIES_CSV = CONFIG_DIR / "medication_frequencies.csv"
LIMITS_CSV = CONFIG_DIR / "medication_limits.csv"
NA_VALUES = ("", "NA", "N/A", "-")
DATE_FORMATS = ("%Y-%m-%d",)
RECORD_TYPES = ("order", "dispense")
REQUIRED_COLUMNS = ("patient_id", "patient_id_system", "rxnorm_code", "start_date")


@dataclass(frozen=True)
class Product:
    rxnorm_code: str
    ingredient: str
    strength_mg: float | None
    strength_per: str | None  # 'tablet', 'mL'
    form: str | None
    min_dose_mg: float | None = None  # plausible dose per administration (schemas/validate.py)
    max_dose_mg: float | None = None


@dataclass(frozen=True)
class MedRules:
    products: dict[str, Product]
    mass_units: dict[str, float]  # unit_key → factor to mg
    form_units: dict[str, str]  # unit_key → form unit ('tablet', 'mL')
    frequencies: tuple[tuple[re.Pattern, Fraction], ...]
    open_end_from: dt.date  # an end on or after it is an open-ended placeholder
    max_dispense_days: int  # most days one dispense may cover (schemas/validate.py)

    def doses_per_day(self, text: str) -> float | None:
        """Administrations per day for a frequency text; None when no rule reads it.

        The whole text first (first matching rule wins); else the rules are searched inside
        it (sig text, ``1 tab PO twice weekly``): the longest match wins over the matches it
        overlaps (``twice daily`` is not ``daily``), and separate matches must agree
        (``daily x 7 days then every other day`` is no rule: two schedules, not a guess)."""
        if _not_one_list(text.lower()):
            return None
        t = re.sub(r"[\s\-_]+", " ", text.strip().lower())
        # as written first (`b.i.d.` is a rule of its own), then without trailing dots (`daily.`)
        for candidate in dict.fromkeys((t, t.rstrip("."))):
            for pattern, per_day in self.frequencies:
                m = pattern.fullmatch(candidate)
                if m:
                    return _per_day(m, per_day)
        return self._searched(t)

    def _searched(self, text: str) -> float | None:
        """The rules found inside a text (see ``doses_per_day``)."""
        found = [
            (m.end() - m.start(), m.start(), m.end(), _per_day(m, per_day))
            for pattern, per_day in self.frequencies
            for m in _inside(pattern).finditer(text)
        ]
        taken = bytearray(len(text))  # characters of a longer match already chosen
        values = set()
        for _, start, end, value in sorted(found, key=lambda f: (-f[0], f[1])):
            if not any(taken[start:end]):
                taken[start:end] = b"\x01" * (end - start)
                values.add(value)
        return values.pop() if len(values) == 1 else None

    def dose_mg(self, product: Product | None, value: float, unit: str | None) -> float | None:
        """Dose per administration in mg; raises ``RowError`` for a catalogued drug's unknown unit."""
        key = unit_key(unit)
        if key in self.mass_units:
            return value * self.mass_units[key]
        form = self.form_units.get(key)
        if product and form and product.strength_per == form and product.strength_mg:
            return value * product.strength_mg
        if product is None:
            return None
        raise textio.RowError(
            UNKNOWN_UNIT,
            f"dose unit {redact.token(unit)!r} has no conversion to mg for {product.ingredient}",
        )


# a range of weekdays (`Mon-Fri`, `tue to sat`) or an exception (`daily except sun`): read
# with the rules, the range's two ends would be two named days (2/7) and `daily` would be
# every day, so such a text is no rule (its record loads flagged, not with a wrong dose)
_WEEKDAY = (
    r"(?:mon(?:day)?|tue(?:s|sday)?|wed(?:nesday)?|thu(?:r|rs|rsday)?|fri(?:day)?"
    r"|sat(?:urday)?|sun(?:day)?)(?![a-z])\.?"
)
_DAYS = rf"(?:{_WEEKDAY}|weekends?|saturdays?|sundays?)"
_WEEKDAY_RANGE = re.compile(rf"(?<![a-z]){_WEEKDAY}\s*(?:-|–|—|to|thru|through|until)\s*{_WEEKDAY}")
_DAY_EXCEPTION = re.compile(rf"(?<![a-z])(?:except|excluding|but not|not on)(?:\s+on)?\s+{_DAYS}")
_WEEKDAY_WORD = re.compile(rf"(?<![a-z]){_WEEKDAY}")


def _not_one_list(text: str) -> bool:
    """A weekday range (two days joined by `-`, `to`, `through`; three or more days are a
    list, `mon - wed - fri`) or an exception naming days (`except sun`, `not on weekends`)."""
    if _DAY_EXCEPTION.search(text):
        return True
    return len(_WEEKDAY_WORD.findall(text)) == 2 and bool(_WEEKDAY_RANGE.search(text))


_NUMBER_DIGITS = 8  # `every 99999999 days` and longer runs are no schedule


def _count(text: str | None) -> Fraction | None:
    if text is None:
        return Fraction(1)
    return Fraction(text) if len(text) <= _NUMBER_DIGITS else None


def _per_day(m: re.Match, per_day: Fraction) -> float | None:
    """A rule's doses per day × its count ``k`` / its interval ``n`` (``2x/week``,
    ``every 3.5 days``); None for an interval of 0 or a number no schedule has."""
    groups = m.groupdict()
    k, n = _count(groups.get("k")), _count(groups.get("n"))
    if k is None or n is None or k == 0 or n == 0:
        return None
    return float(per_day * k / n)


@lru_cache(maxsize=64)
def _inside(pattern: re.Pattern) -> re.Pattern:
    """A rule found inside a text: not within a word or a number (`od` of `food`, the `2x`
    of `1.2x`)."""
    return re.compile(rf"(?<![a-z0-9])(?<!\d\.)(?:{pattern.pattern})(?![a-z0-9])")


def _read_csv(path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@lru_cache(maxsize=2)
def load_med_rules(config_dir: str | None = None) -> MedRules:
    base = CONFIG_DIR if config_dir is None else Path(config_dir)
    products = {
        r["rxnorm_code"].strip(): Product(
            r["rxnorm_code"].strip(),
            r["ingredient"].strip(),
            float(r["strength_mg"]) if r["strength_mg"] else None,
            r["strength_per"] or None,
            r["form"] or None,
            float(r["min_dose_mg"]) if r.get("min_dose_mg") else None,
            float(r["max_dose_mg"]) if r.get("max_dose_mg") else None,
        )
        for r in _read_csv(base / MEDICATIONS_CSV.name)
    }
    units = _read_csv(base / DOSE_UNITS_CSV.name)
    mass = {unit_key(r["unit"]): float(r["factor_to_mg"]) for r in units if r["factor_to_mg"]}
    form = {unit_key(r["unit"]): r["per_form_unit"] for r in units if r["per_form_unit"]}
    freqs = tuple(
        (re.compile(r["pattern"]), Fraction(r["doses_per_day"]))
        for r in _read_csv(base / FREQUENCIES_CSV.name)
    )
    limits = {r["name"]: r["value"] for r in _read_csv(base / LIMITS_CSV.name)}
    return MedRules(
        products,
        mass,
        form,
        freqs,
        open_end_from=dt.date.fromisoformat(limits["open_end_from"]),
        max_dispense_days=int(limits["max_dispense_days"]),
    )


def _optional_number(cell: str, what: str) -> float | None:
    if textio.is_na(cell, NA_VALUES):
        return None
    num = textio.parse_number(cell)
    if num is None or num.comparator or num.unit or not math.isfinite(num.value):
        raise textio.RowError(UNPARSEABLE_VALUE, f"{what} {redact.shape(cell)} is not a number")
    return num.value


_ISO_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")


def _optional_date(cell: str, what: str) -> dt.date | None:
    if textio.is_na(cell, NA_VALUES):
        return None
    # the documented YYYY-MM-DD only: a time with an offset (`…T03:30:00Z`) would move the
    # exposure by a day, `20230105` or week dates are other formats
    value = textio.parse_date(cell, DATE_FORMATS) if _ISO_DATE.fullmatch(cell) else None
    if value is None:
        raise textio.RowError(
            UNPARSEABLE_VALUE, f"{what} {redact.shape(cell)} is not a YYYY-MM-DD date"
        )
    return value


class Period(NamedTuple):
    start: dt.date
    end: dt.date | None
    days_supply: int | None
    end_is_derived: bool  # start + days supply − 1, not sent
    days_supply_is_derived: bool  # end − start + 1, not sent


def _period(
    start_cell: str, end_cell: str, supply_cell: str, *, open_ended_ok: bool, open_end_from: dt.date
) -> Period:
    """Start, end and days supply, and which of the last two were derived. An end on or after
    ``open_end_from`` is a placeholder for "no end" (9999-12-31): the days supply gives the
    end; without one, an order (``open_ended_ok``) stays open-ended (end and supply None), a
    dispense cannot be read."""
    start = _optional_date(start_cell, "start_date")
    if start is None:
        raise textio.RowError(UNPARSEABLE_VALUE, "start_date is empty")
    end = _optional_date(end_cell, "end_date")
    placeholder = end is not None and end >= open_end_from
    if placeholder:
        end = None
    supply = None
    if not textio.is_na(supply_cell, NA_VALUES):
        supply = textio.parse_int(supply_cell)
        if supply is None:
            raise textio.RowError(
                UNPARSEABLE_VALUE,
                f"days_supply {redact.shape(supply_cell)} is not a whole number ≥ 1",
            )
        if supply < 1:
            # a pharmacy reversal or return (`-30`), or a placeholder (`0`): no supply
            raise textio.RowError(
                IMPLAUSIBLE_VALUE,
                f"days_supply {redact.shown(supply_cell.strip())} is not positive "
                "(a reversal or a return supplies no days)",
            )
    if end is None and supply is None:
        if placeholder and open_ended_ok:
            return Period(start, None, None, False, False)
        raise textio.RowError(
            UNPARSEABLE_VALUE,
            f"end_date is an open-ended placeholder (on or after {open_end_from}) and "
            "days_supply is empty: a dispense needs its days"
            if placeholder
            else "neither end_date nor days_supply is given",
        )
    if supply is not None and supply > (dt.date.max - start).days + 1:
        raise textio.RowError(
            UNPARSEABLE_VALUE, f"days_supply {redact.shape(supply_cell)} runs past year 9999"
        )
    end_is_derived, supply_is_derived = end is None, supply is None
    if end is None:
        end = start + dt.timedelta(days=supply - 1)
    if end < start:
        raise textio.RowError(UNPARSEABLE_VALUE, "end_date is before start_date")
    if supply is None:
        supply = (end - start).days + 1
    return Period(start, end, supply, end_is_derived, supply_is_derived)


def _med_row(
    row: textio.Row, get: Callable, rules: MedRules, pseudonymize
) -> tuple[list[dict[str, Any]], Identity]:
    pid, system = get(row, "patient_id"), get(row, "patient_id_system")
    if textio.is_na(pid, NA_VALUES):
        raise textio.RowError(MISSING_PATIENT_ID, "patient_id cell is empty")
    if textio.is_na(system, NA_VALUES):
        raise textio.RowError(MISSING_PATIENT_ID, "patient_id_system cell is empty")
    record_type = get(row, "record_type").lower() or None
    if record_type is not None and record_type not in RECORD_TYPES:
        raise textio.RowError(
            UNPARSEABLE_VALUE, f"record_type {redact.shape(record_type)} is not {RECORD_TYPES}"
        )
    period = _period(
        get(row, "start_date"),
        get(row, "end_date"),
        get(row, "days_supply"),
        open_ended_ok=record_type == "order",
        open_end_from=rules.open_end_from,
    )
    # a spreadsheet writes the numeric code 199224 as `199224.0`: the same code
    rxnorm = textio.whole_number(get(row, "rxnorm_code")) or None
    product = rules.products.get(rxnorm) if rxnorm else None
    dose_value = _optional_number(get(row, "dose_value"), "dose_value")
    dose_unit = None if textio.is_na(get(row, "dose_unit"), NA_VALUES) else get(row, "dose_unit")
    dose_mg = None if dose_value is None else rules.dose_mg(product, dose_value, dose_unit)
    if dose_mg is not None and not math.isfinite(dose_mg):
        # 1e308 g is a number, its mg are not: no plausibility rule can judge infinity
        raise textio.RowError(
            UNPARSEABLE_VALUE,
            f"dose {redact.shape(get(row, 'dose_value'))} {redact.token(dose_unit)} in mg is not "
            "a finite number",
        )
    frequency = get(row, "frequency") or None
    sent = frequency is not None and not textio.is_na(frequency, NA_VALUES)
    per_day = rules.doses_per_day(frequency) if sent else None
    # a text no rule reads keeps the record (its dates still give exposure), flagged and
    # counted (GX): the text itself is never quoted outside the record's own cell
    unread = sent and per_day is None
    key = pseudonymize(system, pid)
    record = {
        "position": row.position,
        "patient_key": key,
        "record_type": record_type,
        "rxnorm_code": rxnorm,
        "drug_name": get(row, "drug_name") or None,
        "ingredient": product.ingredient if product else None,
        "dose_value": dose_value,
        "dose_unit": dose_unit,
        "dose_mg": dose_mg,
        "frequency": frequency,
        "doses_per_day": per_day,
        "frequency_is_unread": unread,
        "start_date": period.start,
        "end_date": period.end,
        "days_supply": period.days_supply,
        "end_date_is_derived": period.end_is_derived,
        "days_supply_is_derived": period.days_supply_is_derived,
        "quantity": _optional_number(get(row, "quantity"), "quantity"),
    }
    return [record], Identity(key, system, pid, "MR")


def parse_meds_csv(data: bytes, *, file_sha256: str, pseudonymize) -> ParseResult:
    """Parse one medication CSV; the good rows load, each bad row is a ``Reject``."""
    rules = load_med_rules()
    header, rows = textio.read_table(textio.decode(data, "utf-8"), ",")
    get = textio.cell_getter(header)
    lacking = textio.lacking_columns(header, REQUIRED_COLUMNS)

    def parse_one(row: textio.Row) -> tuple[list[dict[str, Any]], Identity]:
        if lacking:
            raise textio.RowError(UNPARSEABLE_VALUE, lacking, of_file=True)
        textio.check_width(row, header)
        return _med_row(row, get, rules, pseudonymize)

    def excerpt(row: textio.Row) -> str:
        cells = ("rxnorm_code", "dose_value", "dose_unit", "frequency", "start_date")
        return " ".join(
            redact.shown(get(row, c)) if c != "dose_unit" else redact.token(get(row, c))
            for c in cells
            if get(row, c)
        )

    records, rejects, identities = textio.parse_rows(rows, parse_one, excerpt, len(header))
    frame = pl.DataFrame(
        [{**r, "file_sha256": file_sha256, "source_system": "meds"} for r in records],
        schema=columns_of(StgMedication),
    )
    return ParseResult(rows=frame, rejects=rejects, identities=identities)
