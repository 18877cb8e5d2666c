"""Contracts of the analyst layers: one Pandera model per core and marts table.

Each model's docstring states the table's grain; every field has a description. They drive
the blocking Dagster asset checks (``schemas.dictionary.validate_table``), the DuckDB
``COMMENT ON`` text and the analysts' data dictionary (``docs/data_dictionary.md``).

A column that keeps the meaning it has in a staged table takes its description from the
staged model (``same_as``), so one quantity is described once. Models are not strict: new
columns may be added (DESIGN.md), but a contracted column that disappears, changes type or
breaks its rule fails the check.
"""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from schemas.staging import RESULT_STATUSES, StgDexaScan, StgLabResult, StgMedication
from schemas.validate import BMD_ANY_REGION_G_CM2, SCORE_RANGE, bmd_in_range
from transforms.catalog import load_catalog

COMPARATORS = ["<", "<=", ">", ">="]
# HL7 table 0085 (+ 2.8 A/B); CSV results default to F
FEATURE_SITES = ["lumbar_spine", "total_hip", "femoral_neck"]
TREND_REASONS = ["fewer_than_2_scans", "span_below_minimum"]
RECORD_TYPES = ["order", "dispense"]
FEEDS = ["hl7", "lab_csv"]


def same_as(model: type[pa.DataFrameModel], column: str, **overrides):
    """A field with the description (and nullability) the column has in ``model``."""
    col = model.to_schema().columns[column]
    kwargs = {"nullable": col.nullable, "description": col.description}
    kwargs.update(overrides)
    return pa.Field(**kwargs)


def pseudonymous_key(**checks):
    """The pseudonymous key, never NULL outside staging."""
    return pa.Field(
        description="Pseudonymous patient key (keyed HMAC of identifier namespace + "
        "identifier); joins core.dim_patient. Identifiers stay in the restricted identity store.",
        **checks,
    )


def optional(description: str, **checks):
    """A nullable column."""
    return pa.Field(nullable=True, description=description, **checks)


def count(description: str):
    """A non-null, non-negative count."""
    return pa.Field(ge=0, description=description)


def _all_true(expr: pl.Expr) -> pl.Expr:
    """Row-wise rule result: NULL (a side missing) passes."""
    return expr.fill_null(True).alias("ok")


class _Table(pa.DataFrameModel):
    """Base of the analyst tables' models (configuration only, no columns)."""

    class Config:
        coerce = True  # integer widths differ between DuckDB models (INTEGER vs BIGINT)
        strict = False  # columns may be added; contracted ones may not go


class _ResultColumns(_Table):
    """Columns shared by the current and the history table of lab results."""

    result_id: str = pa.Field(
        description="Stable id of a result across its versions: md5 of feed, facility or source, "
        "patient, filler order number, code, sub-id and repeat (or collection time when no "
        "order); in the snapshot, a keyed hash of that when the order number holds the "
        "patient's identifier (docs/threat_model.md 9)."
    )
    patient_key: str = pseudonymous_key()
    feed: str = pa.Field(isin=FEEDS, description="Feed the result came in: `hl7` or `lab_csv`.")
    source_system: str = same_as(StgLabResult, "source_system")
    source_code: str = same_as(StgLabResult, "source_code")
    source_text: str = same_as(StgLabResult, "source_text")
    source_code_system: str = same_as(StgLabResult, "source_code_system")
    loinc_code: str = same_as(StgLabResult, "loinc_code")
    analyte: str = same_as(StgLabResult, "analyte")
    is_mapped: bool = same_as(StgLabResult, "is_mapped")
    collected_at: dt.datetime = same_as(StgLabResult, "collected_at")
    value: float = same_as(StgLabResult, "value")
    unit: str = same_as(StgLabResult, "unit")
    comparator: str = same_as(StgLabResult, "comparator", isin=COMPARATORS)
    original_value: str = same_as(StgLabResult, "original_value")
    original_unit: str = same_as(StgLabResult, "original_unit")
    value_text: str = same_as(StgLabResult, "value_text")
    detection_limit: float = same_as(StgLabResult, "detection_limit")
    method: str = same_as(StgLabResult, "method")
    result_status: str = pa.Field(
        isin=RESULT_STATUSES,
        description="Result status of this version, upper case (HL7 OBX-11; CSV default F).",
    )
    n_versions: int = pa.Field(ge=1, description="Number of versions the result has had.")
    reference_range: str = same_as(StgLabResult, "reference_range")
    abnormal_flags: str = same_as(StgLabResult, "abnormal_flags")
    filler_order_number: str = same_as(StgLabResult, "filler_order_number")
    sub_id: str = same_as(StgLabResult, "sub_id")
    message_control_id: str = same_as(StgLabResult, "message_control_id")
    file_sha256: str = same_as(StgLabResult, "file_sha256")
    position: str = same_as(StgLabResult, "position")

    @pa.dataframe_check(name="mapped_iff_loinc")
    def mapped_iff_loinc(cls, data: PolarsData) -> pl.LazyFrame:
        """A result is mapped exactly when it has a LOINC code."""
        return data.lazyframe.select(
            (pl.col("is_mapped") == pl.col("loinc_code").is_not_null()).alias("ok")
        )

    @pa.dataframe_check(name="canonical_unit")
    def canonical_unit(cls, data: PolarsData) -> pl.LazyFrame:
        """A catalogued result's value is in its LOINC's canonical unit (config/analytes.csv)
        and not negative (a concentration or activity)."""
        units = {code: a.canonical_unit for code, a in load_catalog().analytes.items()}
        canonical = pl.col("loinc_code").replace_strict(units, default=None, return_dtype=pl.String)
        value = pl.col("value")
        return data.lazyframe.select(
            (
                ~pl.col("is_mapped")
                | value.is_null()
                | ((pl.col("unit") == canonical).fill_null(False) & (value >= 0))
            ).alias("ok")
        )


class FctLabResult(_ResultColumns):
    """Current version of every lab result, catalogued or not (retracted results are absent).
    Grain: one row per result (result_id)."""

    is_corrected: bool = pa.Field(description="True when the result has more than one version.")
    sending_facility: str = same_as(StgLabResult, "sending_facility")

    class Config:
        unique = ["result_id"]


class FctLabResultHistory(_ResultColumns):
    """Every version of every lab result that reached core, ordered by message time
    (corrections C supersede, D / W retract). Grain: one row per result × version."""

    version_no: int = pa.Field(ge=1, description="1-based version number, by message time.")
    is_latest_version: bool = pa.Field(description="True for the result's current version.")
    is_retraction: bool = pa.Field(description="True when this version is a D / W retraction.")
    valid_from: dt.datetime = pa.Field(
        description="Time this version became current: HL7 MSH-7, else the file's received time."
    )
    valid_to: dt.datetime = optional("Time the next version superseded it; NULL for the latest.")
    sending_facility: str = same_as(StgLabResult, "sending_facility")
    alt_code: str = same_as(StgLabResult, "alt_code")
    observed_at: dt.datetime = same_as(StgLabResult, "observed_at")
    message_at: dt.datetime = same_as(StgLabResult, "message_at")
    received_at: dt.datetime = optional(
        "When the file holding this version was received (raw.files)."
    )

    class Config:
        unique = ["result_id", "version_no"]

    @pa.dataframe_check(name="version_within_count")
    def version_within_count(cls, data: PolarsData) -> pl.LazyFrame:
        """version_no ≤ n_versions, and the latest version is the last one."""
        v, n = pl.col("version_no"), pl.col("n_versions")
        return data.lazyframe.select(
            ((v <= n) & ((v == n) == pl.col("is_latest_version"))).alias("ok")
        )


class FctDexaScan(_Table):
    """DXA measurements from every vendor export; a measurement exported twice is kept once
    (the last copy received: latest run, then last landing name, then last line). Grain: one
    row per patient × scan date × site × side."""

    patient_key: str = pseudonymous_key()
    scan_id: str = same_as(StgDexaScan, "scan_id")
    scan_date: dt.date = same_as(StgDexaScan, "scan_date", nullable=False)
    site: str = same_as(StgDexaScan, "site", nullable=False)
    side: str = same_as(StgDexaScan, "side", isin=["left", "right"])
    region: str = same_as(StgDexaScan, "region")
    bmd_g_cm2: float = same_as(StgDexaScan, "bmd_g_cm2", in_range=BMD_ANY_REGION_G_CM2)
    bmd_l2_l4_g_cm2: float = same_as(StgDexaScan, "bmd_l2_l4_g_cm2", in_range=BMD_ANY_REGION_G_CM2)
    sbmd_mg_cm2: float = same_as(StgDexaScan, "sbmd_mg_cm2")
    sbmd_is_approximate: bool = same_as(StgDexaScan, "sbmd_is_approximate")
    t_score: float = same_as(StgDexaScan, "t_score", in_range=SCORE_RANGE)
    z_score: float = same_as(StgDexaScan, "z_score", in_range=SCORE_RANGE)
    manufacturer: str = same_as(StgDexaScan, "manufacturer")
    model: str = same_as(StgDexaScan, "model")
    serial: str = same_as(StgDexaScan, "serial")
    software_version: str = same_as(StgDexaScan, "software_version")
    source_system: str = same_as(StgDexaScan, "source_system")
    file_sha256: str = same_as(StgDexaScan, "file_sha256")
    position: str = same_as(StgDexaScan, "position")

    @pa.dataframe_check(name="site_bmd_range")
    def site_bmd_range(cls, data: PolarsData) -> pl.LazyFrame:
        """Spine, total hip and femoral neck BMDs within 0.2–2.5 g/cm² (schemas/validate.py)."""
        site = pl.col("site")
        return data.lazyframe.select(
            _all_true(
                bmd_in_range(site, pl.col("bmd_g_cm2"))
                & bmd_in_range(site, pl.col("bmd_l2_l4_g_cm2")).fill_null(True)
            )
        )

    class Config:
        unique = ["patient_key", "scan_date", "site", "side"]


class FctMedication(_Table):
    """Medication orders and dispenses, deduplicated on content when the same record arrives
    more than once (the first copy received is kept: earliest run, then first landing name,
    then first line). Grain: one row per patient × medication record (medication_record_id)."""

    medication_record_id: str = pa.Field(
        description="md5 of the record's normalised content (patient, type, RxNorm code, dates, "
        "dose in mg — else dose and unit as sent —, doses per day — else the frequency text —, "
        "days supply, quantity): a re-extraction that writes them another way is the same record."
    )
    patient_key: str = pseudonymous_key()
    record_type: str = same_as(StgMedication, "record_type", isin=RECORD_TYPES)
    rxnorm_code: str = same_as(StgMedication, "rxnorm_code")
    drug_name: str = same_as(StgMedication, "drug_name")
    ingredient: str = same_as(StgMedication, "ingredient")
    dose_value: float = same_as(StgMedication, "dose_value", gt=0)
    dose_unit: str = same_as(StgMedication, "dose_unit")
    dose_mg: float = same_as(StgMedication, "dose_mg")
    frequency: str = same_as(StgMedication, "frequency")
    doses_per_day: float = same_as(StgMedication, "doses_per_day")
    frequency_is_unread: bool = same_as(StgMedication, "frequency_is_unread")
    start_date: dt.date = same_as(StgMedication, "start_date")
    end_date: dt.date = same_as(StgMedication, "end_date")
    days_supply: int = same_as(StgMedication, "days_supply")
    end_date_is_derived: bool = same_as(StgMedication, "end_date_is_derived")
    days_supply_is_derived: bool = same_as(StgMedication, "days_supply_is_derived")
    quantity: float = same_as(StgMedication, "quantity")
    source_system: str = same_as(StgMedication, "source_system")
    file_sha256: str = same_as(StgMedication, "file_sha256")
    position: str = same_as(StgMedication, "position")

    class Config:
        unique = ["medication_record_id"]

    @pa.dataframe_check(name="end_not_before_start")
    def end_not_before_start(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_all_true(pl.col("end_date") >= pl.col("start_date")))


class MedicationExposure(_Table):
    """Continuous exposure episodes per ingredient: supplies whose gaps are at most the
    persistence window (config/features.yaml) are merged.
    Grain: one row per patient × ingredient × episode."""

    patient_key: str = pseudonymous_key()
    ingredient: str = same_as(StgMedication, "ingredient", nullable=False)
    episode_number: pl.Int32 = pa.Field(
        ge=1, description="1-based episode number per patient × ingredient, by start date."
    )
    episode_start: dt.date = pa.Field(description="First day of the episode (inclusive).")
    episode_end: dt.date = pa.Field(description="Last day of the episode (inclusive).")
    episode_length_days: pl.Int32 = pa.Field(
        ge=1, description="episode_end − episode_start + 1, days."
    )
    days_exposed: pl.Int32 = pa.Field(
        nullable=True, ge=0, description="Days of the episode covered by at least one record."
    )
    cumulative_dose_mg: float = pa.Field(
        nullable=True,
        ge=0,
        description="Σ dose_mg × doses_per_day × record days over the episode's records, mg; "
        "NULL when a record lacks a dose.",
    )
    n_records: pl.Int32 = pa.Field(
        nullable=True, ge=1, description="Medication records merged into the episode."
    )

    class Config:
        unique = ["patient_key", "ingredient", "episode_number"]

    @pa.dataframe_check(name="end_not_before_start")
    def end_not_before_start(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_all_true(pl.col("episode_end") >= pl.col("episode_start")))


class DimPatient(_Table):
    """Pseudonymous patients seen in any accepted record (no identifiers: those stay in the
    restricted identity store). Grain: one row per patient."""

    patient_key: str = pseudonymous_key(unique=True)
    birth_year: int = optional("Birth year (smallest value any feed sent).")
    sex: str = optional("Administrative sex (smallest value any feed sent).")


class RefOmopConcept(_Table):
    """Code → OMOP standard concept id map behind the omop views (config/omop_concepts.csv;
    a code without a row maps to concept 0). Grain: one row per domain × source code."""

    domain: str = pa.Field(
        isin=["measurement", "measurement_stored", "unit", "drug"],
        description="`measurement` (keyed by LOINC), `measurement_stored` (keyed by the LOINC "
        "as sent: the concept of the value as stored, when the catalog converts a molar result "
        "to a mass unit), `unit` (UCUM unit), `drug` (RxNorm).",
    )
    source_code: str = pa.Field(description="The LOINC code, UCUM unit or RxNorm code.")
    concept_id: pl.Int32 = pa.Field(gt=0, description="OMOP standard concept id.")
    concept_name: str = optional("OMOP concept name.")


class FeatE2Exposure(_Table):
    """Time with estradiol below a threshold by day-by-day linear interpolation between
    result dates (Rosendaal; docs/features.md). Grain: one row per patient × threshold ×
    period ('overall' or a calendar year 'YYYY')."""

    patient_key: str = pseudonymous_key()
    threshold_pg_ml: float = pa.Field(gt=0, description="E2 threshold, pg/mL.")
    period: str = pa.Field(
        str_matches=r"^(overall|[0-9]{4})$",
        description="`overall` (every date) or a calendar year `YYYY`.",
    )
    first_date: dt.date = optional("First E2 result date in the period (NULL when none).")
    last_date: dt.date = optional("Last E2 result date in the period (NULL when none).")
    n_results: int = count("E2 result rows used, before the same-day merge.")
    n_dates: int = count("Distinct E2 result dates.")
    n_censored: int = count("Result rows with comparator `<` or `<=`.")
    mean_e2_pg_ml: float = optional("Mean of the per-date interpolation values, pg/mL.")
    min_e2_pg_ml: float = optional("Minimum per-date interpolation value, pg/mL.")
    max_e2_pg_ml: float = optional("Maximum per-date interpolation value, pg/mL.")
    followup_days: int = count("interpolated_days + gap_days + indeterminate_days.")
    interpolated_days: int = count("Covered days with an interpolated value.")
    below_days: int = count("Interpolated days whose value is strictly below the threshold.")
    gap_days: int = count("Days in intervals longer than max_gap_days (not interpolated).")
    indeterminate_days: int = count(
        "Days in intervals with a censored end `<L`, L above the threshold."
    )
    fraction_below: float = pa.Field(
        nullable=True,
        in_range=(0.0, 1.0),
        description="below_days / interpolated_days; NULL when no interpolated day.",
    )
    anastrozole_days: int = count("Covered days inside an anastrozole exposure episode.")
    anastrozole_below_days: int = count("Of anastrozole_days, the days counted in below_days.")

    class Config:
        unique = ["patient_key", "threshold_pg_ml", "period"]

    @pa.dataframe_check(name="day_counts_consistent")
    def day_counts_consistent(cls, data: PolarsData) -> pl.LazyFrame:
        c = pl.col
        ok = (
            (c("followup_days") == c("interpolated_days") + c("gap_days") + c("indeterminate_days"))
            & (c("below_days") <= c("interpolated_days"))
            & (c("anastrozole_days") <= c("followup_days"))
            & (c("anastrozole_below_days") <= c("anastrozole_days"))
            & (c("anastrozole_below_days") <= c("below_days"))
        )
        return data.lazyframe.select(ok.alias("ok"))


class FeatBmdTrend(_Table):
    """BMD change and OLS slope on years since the first scan, sBMD when a patient-site has
    several manufacturers (docs/features.md). Grain: one row per patient × site."""

    patient_key: str = pseudonymous_key()
    site: str = pa.Field(
        isin=FEATURE_SITES, description="`lumbar_spine`, `total_hip` or `femoral_neck`."
    )
    n_scans: int = count("Distinct scan dates with a BMD.")
    first_scan_date: dt.date = optional("First scan date.")
    last_scan_date: dt.date = optional("Last scan date.")
    span_years: float = pa.Field(
        nullable=True, ge=0, description="(last − first scan date) days / 365.25."
    )
    first_bmd_g_cm2: float = optional(
        "BMD at the first scan (mean of sides; sBMD/1000 if uses_sbmd), g/cm².",
    )
    last_bmd_g_cm2: float = optional("BMD at the last scan, g/cm².")
    change_g_cm2: float = optional("last − first BMD, g/cm²; NULL with fewer than 2 scans.")
    lsc_g_cm2: float = pa.Field(gt=0, description="Least significant change of the site, g/cm².")
    exceeds_lsc: bool = optional("|change_g_cm2| > lsc_g_cm2; NULL with fewer than 2 scans.")
    slope_g_cm2_per_year: float = optional(
        "OLS slope of BMD on years since the first scan, g/cm²/year."
    )
    slope_se_g_cm2_per_year: float = pa.Field(
        nullable=True, ge=0, description="Standard error of the slope; NULL for 2 scans."
    )
    slope_pct_per_year: float = optional("100 × slope / first_bmd_g_cm2, %/year.")
    reason: str = pa.Field(
        nullable=True,
        isin=TREND_REASONS,
        description="Why the slope is NULL: `fewer_than_2_scans`, `span_below_minimum`; else NULL.",
    )
    uses_sbmd: bool = pa.Field(
        description="True when the scans come from more than one manufacturer (sBMD used)."
    )
    sbmd_is_approximate: bool = pa.Field(
        description="True when a spine sBMD came from L1-L4 (no L2-L4 in the export)."
    )
    n_manufacturers: int = count("Distinct scanner manufacturers.")
    manufacturers: str = optional("Manufacturers, sorted and comma-joined.")

    class Config:
        unique = ["patient_key", "site"]

    @pa.dataframe_check(name="slope_null_iff_reason")
    def slope_null_iff_reason(cls, data: PolarsData) -> pl.LazyFrame:
        """A slope exists exactly when there is no reason for it to be missing."""
        return data.lazyframe.select(
            (pl.col("reason").is_null() == pl.col("slope_g_cm2_per_year").is_not_null()).alias("ok")
        )


CORE_MODELS: dict[str, type[pa.DataFrameModel]] = {
    "core.fct_lab_result": FctLabResult,
    "core.fct_lab_result_history": FctLabResultHistory,
    "core.fct_dexa_scan": FctDexaScan,
    "core.fct_medication": FctMedication,
    "core.medication_exposure": MedicationExposure,
    "core.dim_patient": DimPatient,
    "core.ref_omop_concept": RefOmopConcept,
    "marts.feat_e2_exposure": FeatE2Exposure,
    "marts.feat_bmd_trend": FeatBmdTrend,
}
