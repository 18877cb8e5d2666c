"""Record-level validation of staged rows with Pandera; failures become quarantine rejects.

Each staged model is extended with the plausibility and date rules that decide whether a
row may flow into core. The reference values a rule needs (plausible range of the row's
analyte, the run date) are joined onto the frame as ``_``-prefixed columns so that the
rules stay ordinary, row-wise Pandera checks. Only the failing row *indexes* are used:
Pandera's failure cases of frame-wide checks copy whole rows, so they are never stored.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schemas.staging import RESULT_STATUSES, StgDexaScan, StgLabResult, StgMedication
from transforms import redact
from transforms.catalog import load_plausible_ranges
from transforms.feature_config import BMD_SITES
from transforms.meds import load_med_rules
from transforms.records import (
    FUTURE_DATE,
    IMPLAUSIBLE_DATE,
    IMPLAUSIBLE_VALUE,
    SCHEMA_VIOLATION,
    UNPARSEABLE_VALUE,
    Reject,
)

# BMD, g/cm²: the three sites features and OMOP read are held to a human range (a unit
# slip, a zero or a T-score in the BMD cell stops there); any other region (Ward's triangle,
# below 0.2 in osteoporosis; the skull of a total-body scan, above 2.5 in men; vertebrae,
# trochanter) only to a range that catches a unit slip (mg/cm² sent unitless: ×1000) or a
# zero, so that one sub-region never puts aside the main sites exported on the same line
BMD_RANGE_G_CM2 = (0.2, 2.5)
BMD_RANGE_SITES = BMD_SITES
BMD_ANY_REGION_G_CM2 = (0.05, 4.0)
SCORE_RANGE = (-10.0, 10.0)

# No result, scan or prescription of this product's domain is older (the assays, DXA and
# anastrozole are all later): an earlier date is a null-date placeholder (1900-01-01,
# 1899-12-30, 1753-01-01) or a typo. A date in a year before the patient's birth year (where
# the record gives it) is as impossible.
EARLIEST_DATE = dt.date(1950, 1, 1)


def bmd_range(site: str | None) -> tuple[float, float]:
    """The BMD range of a site, g/cm² (the rule ``bmd_in_range`` applies)."""
    return BMD_RANGE_G_CM2 if site in BMD_RANGE_SITES else BMD_ANY_REGION_G_CM2


def bmd_in_range(site: pl.Expr, bmd: pl.Expr) -> pl.Expr:
    """Whether a BMD is inside its site's range (NULL when the BMD is)."""
    lo, hi = BMD_RANGE_G_CM2
    alo, ahi = BMD_ANY_REGION_G_CM2
    main = site.is_in(BMD_RANGE_SITES).fill_null(False)
    return pl.when(main).then(bmd.is_between(lo, hi)).otherwise(bmd.is_between(alo, ahi))


def _ok(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null(True).alias("ok")


def _plausible_date(day: pl.Expr, birth_year: pl.Expr | None = None) -> pl.Expr:
    """Not before ``EARLIEST_DATE`` nor in a year before ``birth_year`` (NULLs pass)."""
    ok = (day >= EARLIEST_DATE).fill_null(True)
    if birth_year is not None:
        ok = ok & (day.dt.year() >= birth_year).fill_null(True)
    return ok.alias("ok")


def _date_reason(column: str, day) -> str:
    """The year only: a date this early may be a birth date typed into the wrong column."""
    year = day.year if day is not None else None
    if day is not None and day < EARLIEST_DATE:
        return f"{column} in {year} is before {EARLIEST_DATE} (a null-date placeholder?)"
    return (
        f"{column} in {year} is before the birth year this record gives "
        "(a wrong date, or a wrong birth date on the record)"
    )


class LabResultRules(StgLabResult):
    """Rules a lab result must pass to reach core.fct_lab_result."""

    @pa.dataframe_check(name=IMPLAUSIBLE_VALUE)
    def plausible_value(cls, data: PolarsData) -> pl.LazyFrame:
        v = pl.col("value")
        inside = (v >= pl.col("_min_value")) & (v <= pl.col("_max_value"))
        return data.lazyframe.select(_ok(inside))

    @pa.dataframe_check(name=FUTURE_DATE)
    def not_in_future(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_ok(pl.col("collected_at") <= pl.col("_as_of")))

    @pa.dataframe_check(name=IMPLAUSIBLE_DATE)
    def plausible_date(cls, data: PolarsData) -> pl.LazyFrame:
        day = pl.col("collected_at").dt.date()
        return data.lazyframe.select(_plausible_date(day, pl.col("birth_year")))

    @pa.dataframe_check(name=UNPARSEABLE_VALUE)
    def known_status(cls, data: PolarsData) -> pl.LazyFrame:
        """A status core can order versions by: a table 0085 code, any case (NULL = F)."""
        status = pl.col("result_status").str.to_uppercase()
        return data.lazyframe.select(_ok(status.is_in(RESULT_STATUSES)))


class DexaScanRules(StgDexaScan):
    """Rules a DXA measurement must pass to reach core.fct_dexa_scan."""

    @pa.dataframe_check(name=IMPLAUSIBLE_VALUE)
    def plausible_values(cls, data: PolarsData) -> pl.LazyFrame:
        slo, shi = SCORE_RANGE
        site = pl.col("site")
        ok = (
            bmd_in_range(site, pl.col("bmd_g_cm2")).fill_null(True)
            & bmd_in_range(site, pl.col("bmd_l2_l4_g_cm2")).fill_null(True)
            & pl.col("t_score").is_between(slo, shi).fill_null(True)
            & pl.col("z_score").is_between(slo, shi).fill_null(True)
        )
        return data.lazyframe.select(ok.alias("ok"))

    @pa.dataframe_check(name=FUTURE_DATE)
    def not_in_future(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_ok(pl.col("scan_date") <= pl.col("_as_of").dt.date()))

    @pa.dataframe_check(name=IMPLAUSIBLE_DATE)
    def plausible_date(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_plausible_date(pl.col("scan_date"), pl.col("birth_year")))


def covered_days(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """Days a record covers, both ends included."""
    return (end - start).dt.total_days() + 1


def is_dispense(record_type: pl.Expr) -> pl.Expr:
    """A dispense, or a record without a type (exposure reads both as supply)."""
    return record_type.fill_null("dispense") != "order"


def _medication_checks() -> dict[str, pl.Expr]:
    """MedicationRules.plausible_values, one named rule each (True or NULL: passes); the
    reason of a failing row names the rules it fails (``_MEDICATION_PROBLEMS``)."""
    days = covered_days(pl.col("start_date"), pl.col("end_date"))
    mg = pl.col("dose_mg")
    return {
        "dose": pl.col("dose_value") > 0,
        # a non-positive quantity is a reversal or a return, not a supply
        "quantity": pl.col("quantity") > 0,
        # the product's plausible dose per administration (config/medications.csv)
        "dose_range": (mg >= pl.col("_min_dose_mg")).fill_null(True)
        & (mg <= pl.col("_max_dose_mg")).fill_null(True),
        "days_supply": pl.col("days_supply") >= 1,
        "end": pl.col("end_date") >= pl.col("start_date"),
        # one dispense supplies weeks or months: an end years away is a placeholder or a typo
        "dispense_days": (days <= pl.col("_max_dispense_days"))
        | ~is_dispense(pl.col("record_type")),
    }


_MEDICATION_PROBLEMS = {
    "dose": lambda r: "dose ≤ 0",
    "quantity": lambda r: (
        f"quantity {_shown(r['quantity'])} ≤ 0 (a reversal or a return, not a supply)"
    ),
    "dose_range": lambda r: (
        f"{_shown(r['dose_mg'])} mg per administration outside {r.get('ingredient')}'s "
        f"[{r['_min_dose_mg']}, {r['_max_dose_mg']}] mg (config/medications.csv)"
    ),
    "days_supply": lambda r: "days supply < 1",
    "end": lambda r: "end before start",
    "dispense_days": lambda r: (
        f"one dispense covers {(r['end_date'] - r['start_date']).days + 1} days, more than the "
        f"{r['_max_dispense_days']} one fill can (max_dispense_days, "
        "config/medication_limits.csv)"
    ),
}


class MedicationRules(StgMedication):
    """Rules a medication record must pass to reach core.fct_medication; the limits
    (``_max_dispense_days``) come from config/medication_limits.csv."""

    @pa.dataframe_check(name=IMPLAUSIBLE_VALUE)
    def plausible_values(cls, data: PolarsData) -> pl.LazyFrame:
        ok = pl.all_horizontal(e.fill_null(True) for e in _medication_checks().values())
        return data.lazyframe.select(ok.alias("ok"))

    @pa.dataframe_check(name=FUTURE_DATE)
    def not_in_future(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_ok(pl.col("start_date") <= pl.col("_as_of").dt.date()))

    @pa.dataframe_check(name=IMPLAUSIBLE_DATE)
    def plausible_date(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_plausible_date(pl.col("start_date")))


RULES = {
    "lab_result": LabResultRules,
    "dexa_scan": DexaScanRules,
    "medication": MedicationRules,
}


@lru_cache(maxsize=1)
def plausible_ranges() -> pl.DataFrame:
    """The ranges as a frame to join on (analyte, unit); cached per process."""
    rows = load_plausible_ranges()
    return pl.DataFrame(
        {
            "analyte": [r["analyte"] for r in rows],
            "unit": [r["unit"] for r in rows],
            "_min_value": [r["min_value"] for r in rows],
            "_max_value": [r["max_value"] for r in rows],
        }
    )


def dose_ranges() -> pl.DataFrame:
    """The catalogued products' plausible dose per administration, mg, to join on rxnorm_code."""
    products = load_med_rules().products.values()
    return pl.DataFrame(
        {
            "rxnorm_code": [p.rxnorm_code for p in products],
            "_min_dose_mg": [p.min_dose_mg for p in products],
            "_max_dose_mg": [p.max_dose_mg for p in products],
        },
        schema={"rxnorm_code": pl.String, "_min_dose_mg": pl.Float64, "_max_dose_mg": pl.Float64},
    )


def _ten_digits(value: float) -> str:
    return repr(float(f"{value:.10g}"))


def _identifier_like(value) -> bool:
    """A number redact.shown would not show as it is: a whole number long enough to be a birth
    date or an MRN typed into the value cell (``19580312``), or one only an exponent can write."""
    if not isinstance(value, float):
        return False
    whole = _ten_digits(value).removesuffix(".0")
    return redact.shown(whole) != whole


def _shown(value) -> str:
    """A number as a reviewer reads it: ten significant digits, no binary noise of a unit
    conversion (6.973576682102969 → 6.973576682, 0.30000000000000004 → 0.3); one that could be
    an identifier only by its shape (``99999999``), as every other cell of a reason."""
    if not isinstance(value, float):
        return str(value)
    if _identifier_like(value):
        return redact.shown(_ten_digits(value).removesuffix(".0"))
    return _ten_digits(value)


def _medication_implausible(one: pl.DataFrame) -> str:
    """Which of MedicationRules.plausible_values a one-row medication frame fails, in words."""
    passed = one.select(
        **{name: e.fill_null(True) for name, e in _medication_checks().items()}
    ).row(0, named=True)
    values = one.row(0, named=True)
    problems = [_MEDICATION_PROBLEMS[name](values) for name, ok in passed.items() if not ok]
    return "; ".join(problems) or "implausible"


def _reason(kind: str, check: str, one: pl.DataFrame) -> tuple[str, str | None]:
    """A readable reason and a de-identified excerpt (no patient columns are read)."""
    row = one.row(0, named=True)
    if kind == "lab_result":
        # the catalog's analyte name; an unmapped result's text is as sent: its code by rule
        analyte = (
            row.get("analyte")
            if row.get("is_mapped")
            else f"unmapped {redact.token(row.get('source_code'))}"
        )
        # the value as sent decides whether it may be shown: a unit conversion would turn an
        # identifier typed into the cell (19580312 pmol/L) into an innocent-looking decimal,
        # and the number alone loses an MRN's leading zeros (0012345 → 12345.0); an SN's
        # caret (`<^5`) is no part of the number
        text = (row.get("original_value") or "").replace("^", "")
        sent = row.get("value_num_original")
        unit_sent = redact.token(row.get("original_unit"))
        if text and redact.shown(text) != text:
            what = f"{analyte} {redact.shown(text)} {unit_sent} (as sent)"
        elif _identifier_like(sent):
            what = f"{analyte} {_shown(sent)} {unit_sent} (as sent)"
        else:
            what = f"{analyte} {_shown(row.get('value'))} {redact.token(row.get('unit'))}"
        if check == IMPLAUSIBLE_VALUE:
            return (
                f"{what} outside plausible range [{row.get('_min_value')}, {row.get('_max_value')}]",
                what,
            )
        if check == FUTURE_DATE:
            return f"collected_at {row.get('collected_at')} is after the run date", what
        if check == IMPLAUSIBLE_DATE:
            collected = row.get("collected_at")
            return _date_reason("collected_at", collected and collected.date()), what
        if check == UNPARSEABLE_VALUE:
            status = redact.token(row.get("result_status"))
            codes = ", ".join(RESULT_STATUSES)
            return f"result status {status!r} is not an HL7 table 0085 code ({codes})", what
    if kind == "dexa_scan":
        measures = (("BMD", "bmd_g_cm2"), ("T", "t_score"), ("Z", "z_score"))
        what = " ".join(
            [str(row.get("site"))]
            + [f"{label} {_shown(row[col])}" for label, col in measures if row.get(col) is not None]
        )
        if check == IMPLAUSIBLE_VALUE:
            limits = bmd_range(row.get("site"))
            return f"{what} outside BMD {limits} g/cm² or score {SCORE_RANGE}", what
        if check == FUTURE_DATE:
            return f"scan_date {row.get('scan_date')} is after the run date", what
        if check == IMPLAUSIBLE_DATE:
            return _date_reason("scan_date", row.get("scan_date")), what
    if kind == "medication":
        # the catalog's ingredient, never the free-text drug name (it may hold anything)
        drug = row.get("ingredient") or "uncatalogued drug"
        what = f"{drug} {_shown(row.get('dose_value'))} {redact.token(row.get('dose_unit'))}"
        if check == IMPLAUSIBLE_VALUE:
            return f"{what}: {_medication_implausible(one)}", what
        if check == FUTURE_DATE:
            return f"start_date {row.get('start_date')} is after the run date", what
        if check == IMPLAUSIBLE_DATE:
            return _date_reason("start_date", row.get("start_date")), what
    return f"failed {check}", None


def validate(kind: str, df: pl.DataFrame, as_of: dt.datetime) -> list[Reject]:
    """Run the Pandera rules of ``kind`` on staged rows; one Reject per failing row × check."""
    if df.height == 0:
        return []
    frame = df.with_columns(pl.lit(as_of, dtype=pl.Datetime("us")).alias("_as_of"))
    if kind == "lab_result":
        frame = frame.join(
            plausible_ranges(), on=["analyte", "unit"], how="left", maintain_order="left"
        )
    if kind == "medication":
        frame = frame.join(
            dose_ranges(), on="rxnorm_code", how="left", maintain_order="left"
        ).with_columns(pl.lit(load_med_rules().max_dispense_days).alias("_max_dispense_days"))
    try:
        RULES[kind].validate(frame, lazy=True)
        return []
    except pa.errors.SchemaErrors as err:
        failures = err.failure_cases.select("check", "index", "column")
    rejects: list[Reject] = []
    seen: set[tuple[int, str]] = set()
    for check, index, column in failures.iter_rows():
        if index is None:
            raise ValueError(f"{kind}: frame-level schema failure in {column}: {check}")
        name = (
            check
            if check in (IMPLAUSIBLE_VALUE, FUTURE_DATE, IMPLAUSIBLE_DATE, UNPARSEABLE_VALUE)
            else SCHEMA_VIOLATION
        )
        if (index, name) in seen:
            continue
        seen.add((index, name))
        row = frame.row(index, named=True)
        if name == SCHEMA_VIOLATION:
            reason, excerpt = f"column {column} failed {check}", None
        else:
            reason, excerpt = _reason(kind, name, frame.slice(index, 1))
        rejects.append(
            Reject(
                position=row["position"],
                check_name=name,
                reason=reason,
                excerpt=excerpt,
                message_control_id=row.get("message_control_id"),
            )
        )
    return rejects
