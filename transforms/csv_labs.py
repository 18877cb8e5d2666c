"""CSV lab exports (landing/lab_csv/<source>) → staged lab results.

Everything about a source is in ``config/sources/lab_csv/<source>.yaml`` (keys: docs/feeds.md).
One data row is one record, at position ``line <n>`` (physical line, header = line 1).

Row rules (docs/feeds.md "Values that are not numbers"):
- patient id cell empty / NA → ``missing_patient_id``;
- collection time empty or unreadable, test code empty, a value or detection-limit cell that
  no rule reads, a cell unit that differs from the unit column, a row with another number
  of cells than the header (shifted cells: its reject quotes no cell) → ``unparseable_value``;
- an NA value (``na_values``) or a no-result word (``NO_RESULT_WORDS``: ``TNP``, ``QNS``…) is
  accepted with ``value`` NULL (unit not checked);
- catalogued analytes are converted by ``transforms.labnorm`` (unknown unit → ``unknown_unit``).
Names and birth dates go to ``identities`` only; rejects carry no identifier.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from schemas.staging import StgLabResult, columns_of
from transforms import redact, textio
from transforms.catalog import CONFIG_DIR, Catalog, load_catalog, unit_key
from transforms.labnorm import normalize_lab_results
from transforms.records import MISSING_PATIENT_ID, UNPARSEABLE_VALUE, Identity, ParseResult
from transforms.yamlfile import read_yaml

LAB_CSV_CONFIG_DIR = CONFIG_DIR / "sources" / "lab_csv"
REQUIRED_COLUMNS = ("patient_id", "collected_at", "code", "value")
NA_VALUES = ("", "N/A", "NA", "-")
OPTIONAL_COLUMNS = (
    "patient_name",
    "birth_date",
    "sex",
    "code_text",
    "unit",
    "reference_range",
    "abnormal_flags",
    "order_id",
    "result_status",
    "loinc",
    "detection_limit",
    "method",
)


# Words lab exports write for a result status instead of its HL7 table 0085 code (FHIR's
# Observation.status names among them); a source's `result_status_words` adds or overrides.
# Keys are upper case with '-', '_' and runs of spaces as one space. A status that is neither
# a code nor a word here is quarantined by validation (schemas/validate.py).
RESULT_STATUS_WORDS = {
    "FINAL": "F",
    "CORRECTED": "C",
    "CORRECTION": "C",
    "PRELIMINARY": "P",
    "PRELIM": "P",
    "AMENDED": "A",
    "APPENDED": "B",
    "CANCELLED": "X",
    "CANCELED": "X",
    "DELETED": "D",
    "ENTERED IN ERROR": "W",
    # EHR result extracts (Epic, Cerner)
    "FINAL RESULT": "F",
    "FINAL RESULTS": "F",
    "RESULTED": "F",
    "VERIFIED": "F",
    "AUTH (VERIFIED)": "F",
    "COMPLETE": "F",
    "COMPLETED": "F",
    "EDITED": "C",
    "EDITED RESULT": "C",
    "EDITED RESULT FINAL": "C",
    "MODIFIED": "C",
    "PRELIMINARY RESULT": "P",
    "PRELIMINARY RESULTS": "P",
    "IN ERROR": "W",
}

# What labs write in the value cell when no result was produced (test not performed,
# quantity not sufficient, the result is in a note): accepted as an NA value is, whatever a
# source's `na_values` (keys as status words). A text that means a result (`not detected`,
# `<LOD`) is not among them: it is censored, and without a number it stays unparseable.
NO_RESULT_WORDS = frozenset(
    {
        "TNP",
        "TEST NOT PERFORMED",
        "NOT PERFORMED",
        "NOT DONE",
        "QNS",
        "QUANTITY NOT SUFFICIENT",
        "INSUFFICIENT SAMPLE",
        "SEE NOTE",
        "SEE COMMENT",
        "SEE REPORT",
        "CANCELLED",
        "CANCELED",
        "PENDING",
    }
)


def _status_word(text: str) -> str:
    return " ".join(text.upper().replace("-", " ").replace("_", " ").split())


@dataclass(frozen=True, kw_only=True)
class LabCsvConfig(textio.TableFormat):
    source: str
    patient_id_system: str
    timezone: str | None = None
    datetime_formats: tuple[str, ...] = ("%Y-%m-%d %H:%M", "%Y-%m-%d")
    birth_date_formats: tuple[str, ...] = ()  # default: datetime_formats
    na_values: tuple[str, ...] = NA_VALUES
    code_system: str = "L"
    local_codes: Mapping[str, str] = field(default_factory=dict)
    default_result_status: str = "F"
    result_status_words: Mapping[str, str] = field(
        default_factory=lambda: dict(RESULT_STATUS_WORDS)
    )

    def result_status(self, cell: str | None) -> str:
        """The table 0085 code of a status cell (empty: the source's default); an unknown
        word is returned upper-cased, for validation to put aside."""
        if cell is None:
            return self.default_result_status.upper()
        word = _status_word(cell)
        return self.result_status_words.get(word, word)


def lab_csv_config_from_dict(raw: Mapping[str, Any], default_source: str = "") -> LabCsvConfig:
    columns = dict(raw.get("columns") or {})
    missing = [c for c in REQUIRED_COLUMNS if not columns.get(c)]
    source = str(raw.get("source") or default_source)
    if missing or not source or not raw.get("patient_id_system"):
        raise ValueError(
            f"lab CSV config {source!r}: needs source, patient_id_system and columns {missing}"
        )
    unknown = set(columns) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS)
    if unknown:
        raise ValueError(f"lab CSV config {source!r}: unknown column keys {sorted(unknown)}")
    dt_formats = tuple(raw.get("datetime_formats") or LabCsvConfig.datetime_formats)
    return LabCsvConfig(
        **textio.table_format_args(raw, NA_VALUES),
        source=source,
        patient_id_system=str(raw["patient_id_system"]),
        timezone=raw.get("timezone"),
        datetime_formats=dt_formats,
        birth_date_formats=tuple(raw.get("birth_date_formats") or dt_formats),
        code_system=str(raw.get("code_system") or "L"),
        local_codes={str(k): str(v) for k, v in (raw.get("local_codes") or {}).items()},
        default_result_status=str(raw.get("default_result_status") or "F"),
        result_status_words={
            **RESULT_STATUS_WORDS,
            **{
                _status_word(str(k)): str(v).strip().upper()
                for k, v in (raw.get("result_status_words") or {}).items()
            },
        },
    )


def load_lab_csv_config(source: str, config_dir: Path | None = None) -> LabCsvConfig:
    """Read ``<config_dir>/<source>.yaml`` (default dir: config/sources/lab_csv).

    ``config_dir`` may also be a config root holding ``sources/lab_csv/<source>.yaml``.
    """
    base = Path(config_dir) if config_dir else LAB_CSV_CONFIG_DIR
    path = base / f"{source}.yaml"
    if not path.exists():
        path = base / "sources" / "lab_csv" / f"{source}.yaml"
    raw = read_yaml(path) or {}
    return lab_csv_config_from_dict(raw, default_source=source)


def _excerpt(code: str, value: str, unit: str) -> str:
    """De-identified excerpt: the test code, value and unit only."""
    return " ".join(p for p in (redact.token(code), redact.shown(value), redact.token(unit)) if p)[
        :200
    ]


# an abnormal flag written after the number in the value cell (`45.1 H`, `<3 L`, `7.2 (HH)`,
# `12*`): a flag, not a unit (upper case only: `3 l` stays a unit)
_VALUE_FLAG = re.compile(
    r"^(?P<value>.*\d)\s*(?:\((?P<p>[A-Z]{1,4})\)|(?P<f>HH|LL|AA|H|L|A|N)|(?P<s>\*+))$"
)
VALUE_FLAGS = frozenset({"H", "L", "HH", "LL", "A", "AA", "N", "HIGH", "LOW", "ABN", "CRIT"})


def split_value_flag(cell: str) -> tuple[str, str | None]:
    """'45.1 H' → ('45.1', 'H'); a cell without such a flag comes back as it is."""
    m = _VALUE_FLAG.match(cell.strip())
    if m is None:
        return cell, None
    flag = m.group("p") or m.group("f") or m.group("s")
    if m.group("p") and flag not in VALUE_FLAGS:
        return cell, None
    return m.group("value"), flag


def _value_and_unit(
    value_cell: str, unit_cell: str, cfg: LabCsvConfig
) -> tuple[textio.Number | None, str | None, str | None]:
    """(number, unit, abnormal flag written after the number) of a value cell."""
    unit = None if textio.is_na(unit_cell, cfg.na_values) else unit_cell
    if textio.is_na(value_cell, cfg.na_values) or _status_word(value_cell) in NO_RESULT_WORDS:
        return None, unit, None
    value_cell, flag = split_value_flag(value_cell)
    num = textio.parse_number(value_cell, cfg.decimal)
    if num is None:
        raise textio.RowError(
            UNPARSEABLE_VALUE, "value cell is not a number, a censored number or NA"
        )
    if num.unit:
        if unit and unit_key(unit) != unit_key(num.unit):
            raise textio.RowError(
                UNPARSEABLE_VALUE,
                f"unit in the value cell ({redact.token(num.unit)!r}) differs from the unit column ({redact.token(unit)!r})",
            )
        unit = unit or num.unit
    return num, unit, flag


def _parse_row(
    row: textio.Row, get: Callable, cfg: LabCsvConfig, pseudonymize
) -> tuple[dict[str, Any], Identity]:
    h = cfg.header
    pid = get(row, h("patient_id"))
    if textio.is_na(pid, cfg.na_values):
        raise textio.RowError(MISSING_PATIENT_ID, "patient id cell is empty")
    code = get(row, h("code"))
    if not code:
        raise textio.RowError(UNPARSEABLE_VALUE, "test code cell is empty")
    collected_cell = get(row, h("collected_at"))
    collected = textio.parse_datetime(collected_cell, cfg.datetime_formats, cfg.timezone)
    if collected is None:
        raise textio.RowError(
            UNPARSEABLE_VALUE,
            f"collection time {redact.shape(collected_cell)} matches no configured format",
        )
    value_cell = get(row, h("value"))
    num, unit, cell_flag = _value_and_unit(value_cell, get(row, h("unit")), cfg)
    dl_cell = get(row, h("detection_limit"))
    detection_limit = None
    if not textio.is_na(dl_cell, cfg.na_values):
        dl = textio.parse_number(dl_cell, cfg.decimal)
        if dl is None:
            raise textio.RowError(UNPARSEABLE_VALUE, "detection limit cell is not a number")
        detection_limit = dl.value

    key = pseudonymize(cfg.patient_id_system, pid)
    birth = textio.parse_date(get(row, h("birth_date")), cfg.birth_date_formats)
    family, given = textio.split_name(get(row, h("patient_name")))
    identity = Identity(
        patient_key=key,
        namespace=cfg.patient_id_system,
        identifier=pid,
        identifier_type="MR",
        family_name=family,
        given_name=given,
        birth_date=birth.isoformat() if birth else None,
    )

    def opt(name: str) -> str | None:
        return cfg.optional(get(row, h(name)))

    loinc = opt("loinc")
    status = cfg.result_status(opt("result_status"))
    record = {
        "position": row.position,
        "patient_key": key,
        "filler_order_number": opt("order_id"),
        "collected_at": collected,
        "source_code": code,
        "source_text": opt("code_text"),
        "source_code_system": cfg.code_system,
        "alt_code": loinc,
        "alt_code_system": "LN" if loinc else None,
        "original_value": value_cell or None,
        "original_unit": unit,
        "value_num_original": num.value if num else None,
        "comparator": num.comparator if num else None,
        "reference_range": opt("reference_range"),
        "abnormal_flags": opt("abnormal_flags") or cell_flag,
        "result_status": status,
        "detection_limit": detection_limit,
        "method": opt("method"),
        "birth_year": birth.year if birth else None,
        "sex": (opt("sex") or "").upper()[:1] or None,
    }
    return record, identity


def parse_lab_csv(
    data: bytes,
    *,
    file_sha256: str,
    source_config: LabCsvConfig,
    pseudonymize,
    catalog: Catalog | None = None,
) -> ParseResult:
    """Parse one CSV lab export; the good rows load, each bad row is a ``Reject``."""
    cfg = source_config
    header, rows = cfg.read(data)
    get = textio.cell_getter(header)
    problem = textio.lacking_columns(
        header, [cfg.header(c) for c in REQUIRED_COLUMNS]
    ) or textio.repeated_columns(header, cfg.columns.values())

    def parse_one(row: textio.Row) -> tuple[list[dict[str, Any]], Identity]:
        if problem:
            raise textio.RowError(UNPARSEABLE_VALUE, problem, of_file=True)
        textio.check_width(row, header)
        record, identity = _parse_row(row, get, cfg, pseudonymize)
        return [record], identity

    def excerpt(row: textio.Row) -> str:
        h = cfg.header
        return _excerpt(get(row, h("code")), get(row, h("value")), get(row, h("unit")))

    records, rejects, identities = textio.parse_rows(rows, parse_one, excerpt, len(header))
    schema = columns_of(StgLabResult)
    frame = pl.DataFrame(
        [{**r, "file_sha256": file_sha256, "source_system": cfg.source} for r in records],
        schema=schema,
    ).with_columns(pl.lit(False).alias("is_mapped"))
    # a catalogued LOINC in the code column is used (exports mix local codes and LOINCs)
    accepted, unit_rejects = normalize_lab_results(
        frame,
        local_codes=cfg.local_codes,
        catalog=catalog or load_catalog(),
        loinc_under_any_system=True,
    )
    all_rejects = sorted(rejects + unit_rejects, key=lambda r: textio.line_of(r.position))
    return ParseResult(
        rows=accepted.select(list(schema)), rejects=all_rejects, identities=identities
    )
