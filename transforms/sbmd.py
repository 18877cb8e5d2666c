"""Standardized BMD (sBMD, mg/cm²) across DXA manufacturers, and its inverse.

Coefficients live in ``config/sbmd_coefficients.csv`` (DOMAIN.md; sources cited per row):
every formula has the form ``sBMD = 1000 × (intercept + slope × (BMD − center))``:
- hip (Hui 1997 / Lu 2001): ``1000 × (a + b × BMD)`` → intercept a, slope b, center 0;
- lumbar spine (Genant 1994, L2-L4): ``1000 × (s × (BMD − c) + 1.0436)``.
Spine sBMD is defined for L2-L4; when an export has only L1-L4 it is computed from L1-L4 and
flagged approximate (``spine_sbmd``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from transforms.catalog import CONFIG_DIR

COEFFICIENTS_CSV = CONFIG_DIR / "sbmd_coefficients.csv"
SBMD_SITES = ("lumbar_spine", "total_hip", "femoral_neck")


@dataclass(frozen=True)
class Coefficients:
    slope: float
    center_g_cm2: float
    intercept_g_cm2: float


def canonical_manufacturer(name: str | None) -> str | None:
    """'GE Lunar' / 'Lunar' / 'GE Healthcare' → 'GE Lunar'; 'HOLOGIC' → 'Hologic'."""
    n = (name or "").strip().lower()
    if "hologic" in n:
        return "Hologic"
    if "lunar" in n or n.startswith("ge"):
        return "GE Lunar"
    if "norland" in n:
        return "Norland"
    return None


@lru_cache(maxsize=4)
def load_coefficients(path: str | None = None) -> dict[tuple[str, str], Coefficients]:
    """(site, manufacturer) → coefficients."""
    out: dict[tuple[str, str], Coefficients] = {}
    with open(path or COEFFICIENTS_CSV, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            out[(r["site"], r["manufacturer"])] = Coefficients(
                float(r["slope"]), float(r["center_g_cm2"]), float(r["intercept_g_cm2"])
            )
    return out


def _coefficients(manufacturer: str | None, site: str) -> Coefficients | None:
    m = canonical_manufacturer(manufacturer)
    return load_coefficients().get((site, m)) if m else None


def sbmd_mg_cm2(manufacturer: str | None, site: str, bmd_g_cm2: float | None) -> float | None:
    """sBMD of one measured BMD (spine: pass the L2-L4 value); None when not defined."""
    c = _coefficients(manufacturer, site)
    if c is None or bmd_g_cm2 is None:
        return None
    return 1000.0 * (c.intercept_g_cm2 + c.slope * (bmd_g_cm2 - c.center_g_cm2))


def bmd_from_sbmd(manufacturer: str | None, site: str, sbmd: float | None) -> float | None:
    """Inverse: the manufacturer's BMD (g/cm²) that gives ``sbmd`` mg/cm²."""
    c = _coefficients(manufacturer, site)
    if c is None or sbmd is None:
        return None
    return c.center_g_cm2 + (sbmd / 1000.0 - c.intercept_g_cm2) / c.slope


def convert_bmd(
    from_manufacturer: str, to_manufacturer: str, site: str, bmd_g_cm2: float
) -> float | None:
    """BMD measured on one manufacturer's scanner expressed on another's scale (via sBMD)."""
    return bmd_from_sbmd(to_manufacturer, site, sbmd_mg_cm2(from_manufacturer, site, bmd_g_cm2))


def site_sbmd(
    manufacturer: str | None,
    site: str,
    bmd_g_cm2: float | None,
    bmd_l2_l4_g_cm2: float | None = None,
) -> tuple[float | None, bool | None]:
    """(sbmd_mg_cm2, sbmd_is_approximate) for a staged DXA row.

    Spine: from L2-L4 when present (exact), else from L1-L4 (approximate). Hips: exact.
    Other sites / unknown manufacturer: (None, None).
    """
    if site == "lumbar_spine":
        if bmd_l2_l4_g_cm2 is not None:
            value = sbmd_mg_cm2(manufacturer, site, bmd_l2_l4_g_cm2)
            return value, (False if value is not None else None)
        value = sbmd_mg_cm2(manufacturer, site, bmd_g_cm2)
        return value, (True if value is not None else None)
    if site in SBMD_SITES:
        value = sbmd_mg_cm2(manufacturer, site, bmd_g_cm2)
        return value, (False if value is not None else None)
    return None, None
