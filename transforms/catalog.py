"""The analyte catalog and unit normalization (config/analytes.csv, config/units.csv).

A catalogued analyte is converted to its canonical unit; a unit with no conversion is an
error (``UnknownUnit``), never a guess. Analytes outside the catalog pass through unmapped.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"

LOINC_SYSTEMS = frozenset({"LN", "LOINC", "HTTP://LOINC.ORG", "2.16.840.1.113883.6.1"})


class UnknownUnit(ValueError):
    """A catalogued analyte arrived in a unit that config/units.csv cannot convert."""


@dataclass(frozen=True)
class Analyte:
    loinc_code: str
    analyte: str
    canonical_unit: str
    method: str | None


def unit_key(unit: str | None) -> str:
    """Case- and spelling-insensitive unit key: 'PG/ML', 'pg/ml', 'pg / mL' → 'pg/ml'; µ → u;
    any whitespace (a no-break space from a spreadsheet too) is dropped."""
    if unit is None:
        return ""
    u = "".join(unit.replace("µ", "u").replace("μ", "u").split())
    return u.lower()


@dataclass(frozen=True)
class Catalog:
    analytes: dict[str, Analyte]  # loinc -> Analyte
    factors: dict[tuple[str, str], float]  # (analyte, unit_key) -> factor to canonical

    def lookup(self, loinc_code: str | None) -> Analyte | None:
        if not loinc_code:
            return None
        return self.analytes.get(loinc_code.strip())

    def factor(self, analyte: Analyte, unit: str | None) -> float:
        key = unit_key(unit)
        if key == "":
            raise UnknownUnit(f"no unit given for {analyte.analyte}")
        f = self.factors.get((analyte.analyte, key))
        if f is None:
            raise UnknownUnit(f"unit {unit!r} has no conversion for {analyte.analyte}")
        return f


def load_catalog(config_dir: Path | None = None) -> Catalog:
    d = Path(config_dir) if config_dir else CONFIG_DIR
    return _load_catalog(str(d))


@lru_cache(maxsize=8)
def _load_catalog(d: str) -> Catalog:
    base = Path(d)
    analytes: dict[str, Analyte] = {}
    with open(base / "analytes.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            analytes[r["loinc_code"]] = Analyte(
                r["loinc_code"], r["analyte"], r["canonical_unit"], r["method"] or None
            )
    factors: dict[tuple[str, str], float] = {}
    with open(base / "units.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            factors[(r["analyte"], unit_key(r["unit"]))] = float(r["factor_to_canonical"])
    return Catalog(analytes, factors)


def load_plausible_ranges(config_dir: Path | None = None) -> list[dict]:
    """config/plausible_ranges.csv: analyte, unit, min_value, max_value (floats)."""
    path = Path(config_dir or CONFIG_DIR) / "plausible_ranges.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        return [
            {
                "analyte": r["analyte"],
                "unit": r["unit"],
                "min_value": float(r["min_value"]),
                "max_value": float(r["max_value"]),
            }
            for r in csv.DictReader(fh)
        ]


def clear_cache() -> None:
    """Forget loaded catalogs (after a mapping file was edited, e.g. before a release)."""
    _load_catalog.cache_clear()
