"""Parameters of the per-patient feature marts (config/features.yaml, docs/features.md).

One typed object shared by the Dagster assets and the CLI; ``model_params`` turns it into the
bound-parameter dict of ``marts.feat_e2_exposure`` and ``marts.feat_bmd_trend`` (the runner
binds only the names a model uses). Pure Python: no Dagster, no DuckDB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transforms.yamlfile import read_yaml

CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "features.yaml"

BMD_SITES = ("lumbar_spine", "total_hip", "femoral_neck")


class FeatureConfigError(ValueError):
    """Feature parameters that the marts cannot use; the message names every bad value."""


@dataclass(frozen=True)
class E2ExposureConfig:
    loinc_codes: tuple[str, ...]
    result_statuses: tuple[str, ...]
    thresholds_pg_ml: tuple[float, ...]
    max_gap_days: int
    censored_fraction: float
    anastrozole_ingredient: str


@dataclass(frozen=True)
class BmdTrendConfig:
    min_span_years: float
    lsc_g_cm2: Mapping[str, float]  # site -> least significant change, g/cm²


@dataclass(frozen=True)
class FeatureConfig:
    e2: E2ExposureConfig
    bmd: BmdTrendConfig

    def model_params(self) -> dict[str, Any]:
        """Bound parameters of the feature models (``$name`` in the SQL)."""
        sites = list(self.bmd.lsc_g_cm2)
        return {
            "e2_loinc_codes": list(self.e2.loinc_codes),
            "e2_result_statuses": list(self.e2.result_statuses),
            "thresholds_pg_ml": [float(t) for t in self.e2.thresholds_pg_ml],
            "max_gap_days": int(self.e2.max_gap_days),
            "censored_fraction": float(self.e2.censored_fraction),
            "anastrozole_ingredient": self.e2.anastrozole_ingredient,
            "min_span_years": float(self.bmd.min_span_years),
            "bmd_sites": sites,
            "lsc_g_cm2": [float(self.bmd.lsc_g_cm2[s]) for s in sites],
        }


def from_mapping(raw: Mapping[str, Any]) -> FeatureConfig:
    """Validate and type the parsed YAML (also used by tests with inline dicts); every
    problem is named in one ``FeatureConfigError``."""
    problems: list[str] = []

    def require(cond: bool, what: str) -> None:
        if not cond:
            problems.append(what)

    e2 = raw.get("e2_exposure") or {}
    bmd = raw.get("bmd_trend") or {}
    thresholds = tuple(_number(t) for t in e2.get("thresholds_pg_ml", ()))
    require(len(thresholds) > 0, "e2_exposure.thresholds_pg_ml is empty")
    require(
        all(math.isfinite(t) and t > 0 for t in thresholds),
        f"thresholds_pg_ml must be numbers > 0 (got {list(thresholds)})",
    )
    require(len(set(thresholds)) == len(thresholds), "duplicate thresholds_pg_ml")
    max_gap = e2.get("max_gap_days")
    require(
        isinstance(max_gap, int) and not isinstance(max_gap, bool) and max_gap >= 1,
        f"max_gap_days must be an integer ≥ 1 (got {max_gap!r})",
    )
    fraction = _number(e2.get("censored_fraction"))
    require(0.0 <= fraction <= 1.0, f"censored_fraction must be in [0, 1] (got {fraction})")
    codes = tuple(str(c) for c in e2.get("loinc_codes", ()))
    require(len(codes) > 0, "e2_exposure.loinc_codes is empty")
    statuses = tuple(str(s) for s in e2.get("result_statuses", ()))
    require(len(statuses) > 0, "e2_exposure.result_statuses is empty")
    lsc = {str(k): _number(v) for k, v in (bmd.get("lsc_g_cm2") or {}).items()}
    require(set(lsc) == set(BMD_SITES), f"bmd_trend.lsc_g_cm2 must give {list(BMD_SITES)}")
    require(all(math.isfinite(v) and v > 0 for v in lsc.values()), "lsc_g_cm2 values must be > 0")
    span = _number(bmd.get("min_span_years"))
    require(math.isfinite(span) and span >= 0.0, f"min_span_years must be ≥ 0 (got {span})")
    if problems:
        raise FeatureConfigError("config/features.yaml: " + "; ".join(problems))
    return FeatureConfig(
        e2=E2ExposureConfig(
            loinc_codes=codes,
            result_statuses=statuses,
            thresholds_pg_ml=thresholds,
            max_gap_days=max_gap,
            censored_fraction=fraction,
            anastrozole_ingredient=str(e2.get("anastrozole_ingredient", "anastrozole")),
        ),
        bmd=BmdTrendConfig(min_span_years=span, lsc_g_cm2={s: lsc[s] for s in BMD_SITES}),
    )


def _number(value: Any) -> float:
    """A configured number; anything else is NaN, which every range check refuses."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def load(path: Path | str | None = None) -> FeatureConfig:
    """Read config/features.yaml (or ``path``)."""
    return from_mapping(read_yaml(path or CONFIG_PATH) or {})


def model_params(path: Path | str | None = None) -> dict[str, Any]:
    """Shortcut: the bound-parameter dict of the feature models from the YAML file."""
    return load(path).model_params()
