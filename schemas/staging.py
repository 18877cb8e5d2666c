"""Contracts of the staged layer: one Pandera model per staged table.

The parsers in ``transforms/`` produce polars frames with exactly these columns (see
``columns_of``); the loader creates the DuckDB tables from the same models, and the
validation step runs them. Field descriptions become the data dictionary and the
``COMMENT ON`` text of every column.
"""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl

# HL7 table 0085, observation result status (DOMAIN.md): F final, C correction, P preliminary,
# R not verified, X cannot be obtained, D delete, W wrong; I, U, S, N, O; A amended, B appended
RESULT_STATUSES = ["F", "C", "P", "R", "X", "D", "W", "I", "U", "S", "N", "O", "A", "B"]


class _Lineage(pa.DataFrameModel):
    """Lineage columns every staged row carries."""

    file_sha256: str = pa.Field(description="SHA-256 of the received file's bytes (raw.files).")
    position: str = pa.Field(
        description="Where the record sits in its file: `m<msg>/s<seg>` for HL7, `line <n>` for CSV/text."
    )
    source_system: str = pa.Field(
        description="Sending system or configured source name (HL7 MSH-3, CSV source, DXA vendor)."
    )
    patient_key: str = pa.Field(
        nullable=True,
        description="Pseudonymous patient key: keyed HMAC of identifier namespace + identifier. NULL only in rows that are quarantined.",
    )


class StgLabResult(_Lineage):
    """One row per lab result (HL7 OBX segment or CSV row), normalized. Grain: file × position."""

    message_control_id: str = pa.Field(nullable=True, description="HL7 MSH-10; NULL for CSV.")
    sending_application: str = pa.Field(nullable=True, description="HL7 MSH-3.")
    sending_facility: str = pa.Field(nullable=True, description="HL7 MSH-4.")
    hl7_version: str = pa.Field(nullable=True, description="HL7 MSH-12 version id.")
    message_at: dt.datetime = pa.Field(
        nullable=True,
        description="HL7 MSH-7 message time in facility-local time; orders versions of one result.",
    )
    message_index: int = pa.Field(nullable=True, description="0-based message number in its file.")
    segment_index: int = pa.Field(
        nullable=True, description="0-based segment number in its message."
    )
    filler_order_number: str = pa.Field(
        nullable=True, description="HL7 OBR-3 entity id (CSV: accession / order id)."
    )
    placer_order_number: str = pa.Field(nullable=True, description="HL7 OBR-2 entity id.")
    order_status: str = pa.Field(nullable=True, description="HL7 OBR-25 result status.")
    collected_at: dt.datetime = pa.Field(
        nullable=True,
        description="Specimen collection time (OBR-7), facility-local, no time zone.",
    )
    observed_at: dt.datetime = pa.Field(
        nullable=True, description="Observation time (OBX-14), facility-local."
    )
    source_code: str = pa.Field(nullable=True, description="Code as sent (OBX-3.1 / CSV code).")
    source_text: str = pa.Field(nullable=True, description="Code text as sent (OBX-3.2).")
    source_code_system: str = pa.Field(
        nullable=True, description="Coding system as sent (OBX-3.3)."
    )
    alt_code: str = pa.Field(nullable=True, description="Alternate code (OBX-3.4).")
    alt_text: str = pa.Field(nullable=True, description="Alternate text (OBX-3.5).")
    alt_code_system: str = pa.Field(nullable=True, description="Alternate coding system (OBX-3.6).")
    sub_id: str = pa.Field(nullable=True, description="HL7 OBX-4 observation sub-id.")
    value_type: str = pa.Field(nullable=True, description="HL7 OBX-2 (NM, SN, ST, TX, CWE…).")
    original_value: str = pa.Field(
        nullable=True, description="The value exactly as sent (unescaped)."
    )
    original_unit: str = pa.Field(nullable=True, description="The unit exactly as sent.")
    value_num_original: float = pa.Field(
        nullable=True, description="Numeric value in the original unit (the number of an SN)."
    )
    comparator: str = pa.Field(
        nullable=True,
        isin=["<", "<=", ">", ">="],
        description="Comparator of a censored result (`<5` → '<', value 5); NULL when exact.",
    )
    value_text: str = pa.Field(nullable=True, description="Text value for non-numeric results.")
    reference_range: str = pa.Field(nullable=True, description="OBX-7 reference range as sent.")
    abnormal_flags: str = pa.Field(
        nullable=True, description="OBX-8 flags, repetitions joined with '~'."
    )
    result_status: str = pa.Field(
        nullable=True,
        description="OBX-11 result status, an HL7 table 0085 code in any case (F, C, P, D, W, …; "
        "a row with another status is quarantined as unparseable_value); CSV default F.",
    )
    loinc_code: str = pa.Field(
        nullable=True, description="LOINC after mapping; NULL when unmapped."
    )
    analyte: str = pa.Field(
        nullable=True,
        description="Catalog analyte name (config/analytes.csv); for unmapped results the code text.",
    )
    is_mapped: bool = pa.Field(description="True when the result maps to a catalogued analyte.")
    value: float = pa.Field(
        nullable=True,
        description="Value in `unit` (the analyte's canonical UCUM unit); the limit L for `<L`; as sent for unmapped analytes.",
    )
    unit: str = pa.Field(nullable=True, description="Canonical UCUM unit of `value`.")
    detection_limit: float = pa.Field(
        nullable=True, description="Detection limit in `unit` (the L of a censored `<L`)."
    )
    method: str = pa.Field(
        nullable=True, description="Method: `LC-MS/MS`, `immunoassay`, or as sent (OBX-17)."
    )
    birth_year: int = pa.Field(nullable=True, description="Patient birth year (PID-7 year).")
    sex: str = pa.Field(nullable=True, description="Administrative sex (PID-8).")


class StgDexaScan(_Lineage):
    """One row per patient × scan × site × side from a DXA export."""

    scan_id: str = pa.Field(nullable=True, description="Scan / exam id as exported.")
    scan_date: dt.date = pa.Field(nullable=True, description="Scan date.")
    site: str = pa.Field(
        nullable=True,
        description="`lumbar_spine` (L1-L4), `total_hip`, `femoral_neck`; others kept with their export name.",
    )
    side: str = pa.Field(nullable=True, description="`left` / `right` for hips; NULL for spine.")
    region: str = pa.Field(
        nullable=True, description="Region as exported (`L1-L4`, `Neck Left` …)."
    )
    bmd_g_cm2: float = pa.Field(nullable=True, description="Measured areal BMD, g/cm².")
    bmd_l2_l4_g_cm2: float = pa.Field(
        nullable=True, description="Spine only: L2-L4 BMD when the export has it, g/cm²."
    )
    sbmd_mg_cm2: float = pa.Field(
        nullable=True,
        description="Standardized BMD (DOMAIN.md: Hui/Lu hip, Genant spine), mg/cm².",
    )
    sbmd_is_approximate: bool = pa.Field(
        nullable=True, description="True when spine sBMD was computed from L1-L4 instead of L2-L4."
    )
    t_score: float = pa.Field(nullable=True, description="T-score.")
    z_score: float = pa.Field(nullable=True, description="Z-score.")
    manufacturer: str = pa.Field(nullable=True, description="`Hologic`, `GE Lunar`, `Norland`.")
    model: str = pa.Field(nullable=True, description="Scanner model.")
    serial: str = pa.Field(nullable=True, description="Scanner serial number.")
    software_version: str = pa.Field(nullable=True, description="Analysis software version.")
    birth_year: int = pa.Field(nullable=True, description="Patient birth year.")
    sex: str = pa.Field(nullable=True, description="Administrative sex.")


class StgMedication(_Lineage):
    """One row per medication order or dispense record."""

    record_type: str = pa.Field(nullable=True, description="`order` or `dispense`.")
    rxnorm_code: str = pa.Field(nullable=True, description="RxNorm RxCUI as sent.")
    drug_name: str = pa.Field(nullable=True, description="Drug name as sent.")
    ingredient: str = pa.Field(
        nullable=True, description="`anastrozole`, `testosterone`, or NULL when not catalogued."
    )
    dose_value: float = pa.Field(nullable=True, description="Dose per administration as sent.")
    dose_unit: str = pa.Field(nullable=True, description="Unit of dose_value as sent.")
    dose_mg: float = pa.Field(nullable=True, description="Dose per administration in mg.")
    frequency: str = pa.Field(nullable=True, description="Frequency text as sent.")
    doses_per_day: float = pa.Field(
        nullable=True, description="Frequency as administrations per day."
    )
    frequency_is_unread: bool = pa.Field(
        description="True when a frequency text was sent but no rule of "
        "config/medication_frequencies.csv reads it: doses_per_day is NULL, the record still "
        "gives exposure by its dates."
    )
    start_date: dt.date = pa.Field(nullable=True, description="Start (or dispense) date.")
    end_date: dt.date = pa.Field(
        nullable=True, description="End date: as sent, or start + days_supply − 1."
    )
    days_supply: int = pa.Field(nullable=True, description="Days supply as sent or derived.")
    end_date_is_derived: bool = pa.Field(
        nullable=True,
        description="True when end_date was not sent but derived (start + days_supply − 1); "
        "NULL (unknown) for a row staged before this column existed.",
    )
    days_supply_is_derived: bool = pa.Field(
        nullable=True,
        description="True when days_supply was not sent but derived (end − start + 1); NULL "
        "(unknown) for a row staged before this column existed.",
    )
    quantity: float = pa.Field(nullable=True, description="Quantity dispensed / ordered.")


def columns_of(model: type[pa.DataFrameModel]) -> dict[str, pl.DataType]:
    """Column name → polars dtype, in model order (what a parser must produce)."""
    schema = model.to_schema()
    return {name: col.dtype.type for name, col in schema.columns.items()}


def empty_frame(model: type[pa.DataFrameModel]) -> pl.DataFrame:
    return pl.DataFrame(schema=columns_of(model))
