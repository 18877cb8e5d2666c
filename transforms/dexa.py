"""DXA exports (landing/dexa/<vendor>) → staged scans, one row per patient × scan × site × side.

Vendors are configured in ``config/dexa_<vendor>_columns.yaml`` (docs/dexa.md):
- ``hologic``: APEX-style CSV, explicit ``measure_columns`` (header → region, site, side,
  measure); the side of hip regions comes from the ``SIDE`` cell, the scan type from
  ``SCAN_TYPE``.
- ``lunar``: GE Lunar enCORE text (UTF-16LE BOM, TAB, CRLF), ``<Region> <Measure>`` columns
  classified by suffix; the scan type comes from the file name, else from the columns present;
  regions map to sites per scan type, any other region keeps a snake_case site of its own
  (``tb_`` prefix in a total-body export, so ``Total Left`` there is never a hip and ``Spine``
  never the lumbar spine).

A data row is one record (position ``line <n>``): it yields one staged row per (site, side)
that has a BMD, T-score or Z-score, or exactly one reject. sBMD comes from ``transforms.sbmd``.
Names and birth dates go to ``identities`` only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from schemas.staging import StgDexaScan, columns_of
from transforms import redact, sbmd, textio
from transforms.catalog import CONFIG_DIR, unit_key
from transforms.records import (
    MISSING_PATIENT_ID,
    UNKNOWN_UNIT,
    UNPARSEABLE_VALUE,
    Identity,
    ParseResult,
)
from transforms.yamlfile import read_yaml

VENDORS = ("hologic", "lunar")
MEASURES = ("bmd", "t_score", "z_score", "l2_l4_bmd")
SITE_MEASURES = ("bmd", "t_score", "z_score")  # a staged row has at least one of them
REQUIRED_COLUMNS = ("patient_id", "scan_date")
SIDE_FROM_ROW = "row"
_SIDE_WORDS = {"left": "left", "right": "right", "l": "left", "r": "right"}


@dataclass(frozen=True)
class ScanTypeRule:
    name: str
    file_name: tuple[str, ...] = ()
    detect_columns: tuple[str, ...] = ()
    exclusive: bool = False
    site_prefix: str = ""
    regions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # last words of a region that is computed from both sides (`Wards Mean`, `Troch Diff.`):
    # not a measured region, so it is not read (an unlisted one would need a side)
    derived_region_words: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ColumnRole:
    """What one export column measures."""

    column: str
    region: str  # as exported ('L1-L4', 'Neck Left', 'Total Left' …)
    site: str
    side: str | None  # 'left' / 'right' / None / 'row' (Hologic: from the SIDE cell)
    measure: str  # bmd | t_score | z_score | l2_l4_bmd
    scan_type: str | None
    used: bool = True


@dataclass(frozen=True, kw_only=True)
class DexaConfig(textio.TableFormat):
    vendor: str
    manufacturer: str
    date_formats: tuple[str, ...] = ("%m/%d/%Y",)
    scan_type_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # scan type cell (lower-case) → the side it names without a Left/Right word (APEX codes)
    scan_type_sides: Mapping[str, str] = field(default_factory=dict)
    measure_columns: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    measure_suffixes: Mapping[str, str] = field(default_factory=dict)
    scan_types: tuple[ScanTypeRule, ...] = ()
    units: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # scan types whose regions are one hip: a staged row of theirs needs a side
    sided_scan_types: frozenset[str] = frozenset()


def load_dexa_config(vendor: str, config_dir: Path | None = None) -> DexaConfig:
    """Read ``config/dexa_<vendor>_columns.yaml``."""
    if vendor not in VENDORS:
        raise ValueError(f"unknown DXA vendor {vendor!r}; expected one of {VENDORS}")
    base = Path(config_dir) if config_dir else CONFIG_DIR
    raw = read_yaml(base / f"dexa_{vendor}_columns.yaml") or {}
    return dexa_config_from_dict(vendor, raw)


def dexa_config_from_dict(vendor: str, raw: Mapping[str, Any]) -> DexaConfig:
    rules = tuple(
        ScanTypeRule(
            name=name,
            file_name=tuple(r.get("file_name") or ()),
            detect_columns=tuple(r.get("detect_columns") or ()),
            exclusive=bool(r.get("exclusive", False)),
            site_prefix=str(r.get("site_prefix") or ""),
            regions=dict(r.get("regions") or {}),
            derived_region_words=frozenset(
                w.lower() for w in (r.get("derived_region_words") or ())
            ),
        )
        for name, r in (raw.get("scan_types") or {}).items()
    )
    for spec in (raw.get("measure_columns") or {}).values():
        if spec.get("measure") not in MEASURES:
            raise ValueError(f"DXA config {vendor}: measure must be one of {MEASURES}: {spec}")
    return DexaConfig(
        **textio.table_format_args(raw),
        vendor=vendor,
        manufacturer=str(raw["manufacturer"]),
        date_formats=tuple(raw.get("date_formats") or DexaConfig.date_formats),
        scan_type_values={
            k: tuple(str(x).strip().lower() for x in v)
            for k, v in (raw.get("scan_type_values") or {}).items()
        },
        scan_type_sides={
            str(k).strip().lower(): str(v) for k, v in (raw.get("scan_type_sides") or {}).items()
        },
        measure_columns=dict(raw.get("measure_columns") or {}),
        measure_suffixes={str(k): str(v) for k, v in (raw.get("measure_suffixes") or {}).items()},
        scan_types=rules,
        units={
            m: {unit_key(u): float(f) for u, f in table.items()}
            for m, table in (raw.get("units") or {}).items()
        },
        sided_scan_types=frozenset(raw.get("sided_scan_types") or ()),
    )


def detect_scan_types(header: list[str], file_name: str, cfg: DexaConfig) -> tuple[str, ...]:
    """Scan types of a suffix-classified export: those its file name names, plus those its
    columns show (an `_AP_Spine` file that also holds femur columns reads both). An exclusive
    type (total body) named by the file name, else shown by the columns, is the only one: the
    columns of a total-body export (`Head BMD`) win over a name such as `Visit2_Left_Hip`,
    whose `Total Left` would otherwise be read as a hip, not as the left half of the body."""
    name = (file_name or "").lower()
    # the first rule whose file-name token the name holds
    named = next((r for r in cfg.scan_types if any(t.lower() in name for t in r.file_name)), None)
    have = set(header)
    shown = [r for r in cfg.scan_types if any(c in have for c in r.detect_columns)]
    if named is not None and named.exclusive:
        return (named.name,)
    shown_exclusive = next((r for r in shown if r.exclusive), None)
    if shown_exclusive is not None:
        return (shown_exclusive.name,)
    found = [named.name] if named is not None else []
    found += [r.name for r in shown if not r.exclusive and r.name not in found]
    return tuple(found)


def snake(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _generic_site(region: str, prefix: str) -> tuple[str, str | None]:
    """'Arm Left' → ('arm', 'left'); 'Upper Neck Right' → ('upper_neck', 'right')."""
    words = region.split()
    side = None
    kept = []
    for w in words:
        if w.lower() in ("left", "right") and side is None:
            side = w.lower()
        else:
            kept.append(w)
    return prefix + snake(" ".join(kept) or region), side


def _suffix_role(column: str, region: str, measure: str, rules: list[ScanTypeRule]) -> ColumnRole:
    for rule in rules:
        spec = rule.regions.get(region)
        if spec is None:
            continue
        used = not spec.get("unused", False)
        if spec.get("measure_as") == "l2_l4":
            used = used and measure == "bmd"
            measure = "l2_l4_bmd" if measure == "bmd" else measure
        return ColumnRole(column, region, spec["site"], spec.get("side"), measure, rule.name, used)
    prefix = rules[0].site_prefix if rules else ""
    site, side = _generic_site(region, prefix)
    last_word = region.split()[-1].lower()
    derived = any(last_word in rule.derived_region_words for rule in rules)
    return ColumnRole(
        column, region, site, side, measure, rules[0].name if rules else None, not derived
    )


def classify_columns(
    header: list[str], cfg: DexaConfig, scan_types: tuple[str, ...] = ()
) -> list[ColumnRole]:
    """Every measure column of the header with its region, site, side and measure.

    Explicit ``measure_columns`` first; then ``<Region> <suffix>`` columns, mapped by the
    regions of the given scan types (generic snake_case sites otherwise).
    """
    rules = [r for r in cfg.scan_types if r.name in scan_types]
    roles: list[ColumnRole] = []
    for col in header:
        spec = cfg.measure_columns.get(col)
        if spec is not None:
            roles.append(
                ColumnRole(
                    col,
                    str(spec["region"]),
                    str(spec["site"]),
                    spec.get("side"),
                    str(spec["measure"]),
                    spec.get("scan_type"),
                    not spec.get("unused", False),
                )
            )
            continue
        for suffix, measure in cfg.measure_suffixes.items():
            if col.endswith(" " + suffix) and col[: -len(suffix)].strip():
                roles.append(_suffix_role(col, col[: -len(suffix)].strip(), measure, rules))
                break
    return roles


def derive_scan_id(vendor: str, patient_key: str, scan_date, scan_type: str) -> str:
    """Stable id for exports without one: vendor + date + scan type + hash of the three keys."""
    digest = hashlib.sha256(f"{patient_key}|{scan_date}|{scan_type}".encode()).hexdigest()[:12]
    return f"{vendor}-{scan_date:%Y%m%d}-{scan_type}-{digest}"


def side_word(text: str | None) -> str | None:
    """'left' / 'right' when ``text`` has exactly one of the two as a word: a scan type cell
    ('Left Hip') or a file name ('x_Right_Femur.txt')."""
    words = set(re.split(r"[^a-z]+", (text or "").lower()))
    found = [w for w in ("left", "right") if w in words]
    return found[0] if len(found) == 1 else None


# a numeral whose comma can only be a decimal mark: `0,874`, `-1,2`, `1,0345` (never `1,364`)
_COMMA_DECIMAL = re.compile(r"(?<![\d,.])[+-]?(?:0,\d+|\d+,(?:\d{1,2}|\d{4,}))(?![\d,.])")
_POINT_DECIMAL = re.compile(r"\d\.\d")
# a BMD in g/cm² (no unit, or that unit) written `1,002`: read with a thousands comma it would
# be 1002 g/cm², which no bone has, so its comma is a decimal mark too
_BMD_COMMA = re.compile(r"\s*\d,\d{3}\s*(?:g/cm2|g/cm²)?\s*", re.IGNORECASE)
_BMD_MEASURES = frozenset({"bmd", "l2_l4_bmd"})


def file_decimal(cells: Iterable[tuple[str, str]]) -> str:
    """The decimal mark of a source configured ``decimal: auto``, from its (measure, cell)
    pairs: ',' when some cell can only be read with a decimal comma (`0,874`, `-1,2`, a
    g/cm² BMD `1,002`) and none has a decimal point, else '.' (so one export template serves
    sites with either locale)."""
    comma = False
    for measure, cell in cells:
        if _POINT_DECIMAL.search(cell):
            return "."
        comma = (
            comma
            or bool(_COMMA_DECIMAL.search(cell))
            or (measure in _BMD_MEASURES and bool(_BMD_COMMA.fullmatch(cell)))
        )
    return "," if comma else "."


def header_problem(header: list[str], cfg: DexaConfig, roles: list[ColumnRole]) -> str | None:
    """Why no row of a file with this header can be read (each row is rejected with it), or
    None: a required column missing, no measure column at all, or a column the parser reads
    appearing twice (which of the two cells holds the value cannot be known)."""
    lacking = textio.lacking_columns(header, [cfg.header(c) for c in REQUIRED_COLUMNS])
    if lacking:
        return lacking
    if not any(r.used for r in roles):
        return (
            "no column of the file is a BMD, T-score or Z-score column of "
            f"config/dexa_{cfg.vendor}_columns.yaml"
        )
    return textio.repeated_columns(header, [*cfg.columns.values(), *(r.column for r in roles)])


def _row_scan_type(cell: str, cfg: DexaConfig) -> str | None:
    # 'Left Hip' is a hip scan (its side is read by side_word)
    value = " ".join(w for w in cell.strip().lower().split() if w not in ("left", "right"))
    for name, values in cfg.scan_type_values.items():
        if value in values:
            return name
    return None


def _measure_value(cell: str, role: ColumnRole, cfg: DexaConfig) -> float | None:
    if textio.is_na(cell, cfg.na_values):
        return None
    num = textio.parse_number(cell, cfg.decimal)
    if num is None or num.comparator:
        raise textio.RowError(UNPARSEABLE_VALUE, f"column {role.column!r} is not a number")
    factor = cfg.units.get(role.measure, {"": 1.0}).get(unit_key(num.unit))
    if factor is None:
        raise textio.RowError(
            UNKNOWN_UNIT,
            f"column {role.column!r}: unit {redact.token(num.unit)!r} has no conversion",
        )
    return num.value * factor


def _row_side(cell: str) -> str | None:
    if not cell.strip():
        return None
    side = _SIDE_WORDS.get(cell.strip().lower())
    if side is None:
        raise textio.RowError(UNPARSEABLE_VALUE, f"side {redact.shape(cell)} is not Left or Right")
    return side


def _sites(
    row: textio.Row,
    get: Callable,
    roles: list[ColumnRole],
    cfg: DexaConfig,
    fallback_side: str | None,
) -> dict[tuple[str, str | None], dict[str, Any]]:
    """(site, side) → {'region': …, measure: value} for the row's measured regions.

    A region of a sided scan type (a hip) takes its side from the column, else the side cell,
    else ``fallback_side`` (the scan type cell, the file name); without one the row is
    rejected, since two hips without sides would be one row of core.
    """
    groups: dict[tuple[str, str | None], dict[str, Any]] = {}
    row_side = None
    for role in roles:
        value = _measure_value(get(row, role.column), role, cfg)
        if value is None:
            continue
        side = role.side
        if side == SIDE_FROM_ROW:
            row_side = row_side or _row_side(get(row, cfg.header("side")))
            side = row_side
        if side in (None, SIDE_FROM_ROW) and role.scan_type in cfg.sided_scan_types:
            side = fallback_side
            if side is None:
                raise textio.RowError(
                    UNPARSEABLE_VALUE,
                    f"hip region {role.region!r} has no side: no Left/Right in the side cell, "
                    "the scan type or the file name",
                )
        g = groups.setdefault((role.site, side), {"region": role.region})
        if role.measure == "bmd":
            g["region"] = role.region
        g[role.measure] = value
    # an L2-L4 BMD alone is no row: it only sits beside an L1-L4 value
    return {k: g for k, g in groups.items() if any(m in g for m in SITE_MEASURES)}


def _scan_rows(
    row: textio.Row,
    get: Callable,
    roles: list[ColumnRole],
    cfg: DexaConfig,
    file_scan_type: str,
    file_side: str | None,
    pseudonymize,
    patient_id_system: str,
) -> tuple[list[dict[str, Any]], Identity]:
    h = cfg.header
    pid = get(row, h("patient_id"))
    if textio.is_na(pid, cfg.na_values):
        raise textio.RowError(MISSING_PATIENT_ID, "patient id cell is empty")
    date_cell = get(row, h("scan_date"))
    scan_date = textio.parse_date(date_cell, cfg.date_formats)
    if scan_date is None:
        raise textio.RowError(
            UNPARSEABLE_VALUE, f"scan date {redact.shape(date_cell)} matches no format"
        )
    type_cell = get(row, h("scan_type"))
    row_type = _row_scan_type(type_cell, cfg)
    active = [r for r in roles if r.used and (row_type is None or r.scan_type == row_type)]
    type_side = side_word(type_cell) or cfg.scan_type_sides.get(type_cell.strip().lower())
    groups = _sites(row, get, active, cfg, type_side or file_side)
    if not groups:
        raise textio.RowError(UNPARSEABLE_VALUE, "row has no BMD, T-score or Z-score value")

    key = pseudonymize(patient_id_system, pid)
    birth = textio.parse_date(get(row, h("birth_date")), cfg.date_formats)
    family, given = textio.split_name(get(row, h("patient_name")))
    identity = Identity(
        patient_key=key,
        namespace=patient_id_system,
        identifier=pid,
        identifier_type="MR",
        family_name=get(row, h("family_name")) or family,
        given_name=get(row, h("given_name")) or given,
        birth_date=birth.isoformat() if birth else None,
    )

    def opt(name: str) -> str | None:
        return cfg.optional(get(row, h(name)))

    scan_type = row_type or file_scan_type or "scan"
    scan_id = opt("scan_id") or derive_scan_id(cfg.vendor, key, scan_date, scan_type)
    common = {
        "position": row.position,
        "patient_key": key,
        "scan_id": scan_id,
        "scan_date": scan_date,
        "manufacturer": cfg.manufacturer,
        "model": opt("model"),
        "serial": opt("serial"),
        "software_version": opt("software_version"),
        "birth_year": birth.year if birth else None,
        "sex": (opt("sex") or "").upper()[:1] or None,
    }
    out = []
    for (site, side), g in groups.items():
        l2_l4 = g.get("l2_l4_bmd") if site == "lumbar_spine" else None
        value, approx = sbmd.site_sbmd(cfg.manufacturer, site, g.get("bmd"), l2_l4)
        out.append(
            {
                **common,
                "site": site,
                "side": side,
                "region": g["region"],
                "bmd_g_cm2": g.get("bmd"),
                "bmd_l2_l4_g_cm2": l2_l4,
                "sbmd_mg_cm2": value,
                "sbmd_is_approximate": approx,
                "t_score": g.get("t_score"),
                "z_score": g.get("z_score"),
            }
        )
    return out, identity


def parse_dexa_file(
    data: bytes,
    *,
    file_sha256: str,
    vendor: str,
    file_name: str,
    pseudonymize,
    patient_id_system: str = "NORTH_CLINIC",
    config: DexaConfig | None = None,
) -> ParseResult:
    """Parse one DXA export of ``vendor`` ('hologic' | 'lunar')."""
    cfg = config or load_dexa_config(vendor)
    header, rows = cfg.read(data)
    get = textio.cell_getter(header)
    scan_types = detect_scan_types(header, file_name, cfg)
    roles = classify_columns(header, cfg, scan_types)
    file_scan_type = "+".join(scan_types)
    file_side = side_word(file_name)
    problem = header_problem(header, cfg, roles)
    if cfg.decimal == "auto":
        cells = ((r.measure, get(row, r.column)) for row in rows for r in roles if r.used)
        cfg = dataclasses.replace(cfg, decimal=file_decimal(cells))

    def parse_one(row: textio.Row) -> tuple[list[dict[str, Any]], Identity]:
        if problem:
            raise textio.RowError(UNPARSEABLE_VALUE, problem, of_file=True)
        textio.check_width(row, header)
        return _scan_rows(
            row, get, roles, cfg, file_scan_type, file_side, pseudonymize, patient_id_system
        )

    def excerpt(row: textio.Row) -> str:
        h = cfg.header
        cells = (redact.shape(get(row, h("scan_date"))), redact.token(get(row, h("scan_type"))))
        return " ".join(p for p in cells if p)

    records, rejects, identities = textio.parse_rows(rows, parse_one, excerpt, len(header))
    rows_frame = pl.DataFrame(
        [{**r, "file_sha256": file_sha256, "source_system": vendor} for r in records],
        schema=columns_of(StgDexaScan),
    )
    return ParseResult(rows=rows_frame, rejects=rejects, identities=identities)
