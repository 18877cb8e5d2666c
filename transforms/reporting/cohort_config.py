"""Cohort report definitions (config/cohorts.yaml, docs/cohort_report.md): typed and validated.

Pure Python: no Dagster, no DuckDB. ``from_mapping`` is what tests call with inline dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transforms.yamlfile import read_yaml

CONFIG_PATH = Path(__file__).resolve().parents[2] / "config" / "cohorts.yaml"

# criterion type -> extra key it needs (None: none)
CRITERION_TYPES: dict[str, str | None] = {
    "sex": None,
    "anastrozole_days": None,
    "fraction_below": "threshold_pg_ml",
    "e2_followup_days": None,
    "age_at_first_e2": None,
    "bmd_span_years": "site",
}


@dataclass(frozen=True)
class Criterion:
    type: str
    label: str
    min: float | None = None
    max: float | None = None
    less_than: float | None = None
    values: tuple[str, ...] | None = None  # for ``sex``: the accepted values (``in:``)
    threshold_pg_ml: float | None = None
    site: str | None = None


@dataclass(frozen=True)
class Cohort:
    name: str
    label: str
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True)
class Comparison:
    name: str
    title: str
    groups: tuple[str, str]


@dataclass(frozen=True)
class LabSpec:
    analyte: str
    label: str
    unit: str
    decimals: int


@dataclass(frozen=True)
class SiteSpec:
    site: str
    label: str


@dataclass(frozen=True)
class Settings:
    min_cell_count: int
    regression_threshold_pg_ml: float
    one_year_target_days: int
    one_year_window_days: int
    censored_fraction: float
    result_statuses: tuple[str, ...]


@dataclass(frozen=True)
class CohortConfig:
    settings: Settings
    labs: tuple[LabSpec, ...]
    sites: tuple[SiteSpec, ...]
    base_criteria: tuple[Criterion, ...]
    cohorts: Mapping[str, Cohort]
    comparisons: tuple[Comparison, ...]

    def thresholds(self) -> list[float]:
        """Every threshold the report needs fractions for (criteria + regression)."""
        ts = {self.settings.regression_threshold_pg_ml}
        for c in self._all_criteria():
            if c.threshold_pg_ml is not None:
                ts.add(c.threshold_pg_ml)
        return sorted(ts)

    def _all_criteria(self):
        yield from self.base_criteria
        for cohort in self.cohorts.values():
            yield from cohort.criteria

    def query_params(self, anastrozole_ingredient: str = "anastrozole") -> dict[str, Any]:
        """Bound parameters of warehouse/queries/cohort/*.sql (ingredient: features.yaml)."""
        return {
            "analytes": [lab.analyte for lab in self.labs],
            "sites": [s.site for s in self.sites],
            "result_statuses": list(self.settings.result_statuses),
            "censored_fraction": float(self.settings.censored_fraction),
            "anastrozole_ingredient": anastrozole_ingredient,
        }


class CohortConfigError(ValueError):
    """config/cohorts.yaml does not follow docs/cohort_report.md."""


def _require(cond: bool, what: str) -> None:
    if not cond:
        raise CohortConfigError(f"config/cohorts.yaml: {what}")


def _num(raw: Mapping[str, Any], key: str) -> float | None:
    v = raw.get(key)
    return None if v is None else float(v)


def _fmt_bound(v: float) -> str:
    return f"{v:g}"


def describe(c: Criterion) -> str:
    """A readable default label: ``anastrozole_days ≥ 183``."""
    what = c.type
    if c.threshold_pg_ml is not None:
        what += f" < {_fmt_bound(c.threshold_pg_ml)} pg/mL"
    if c.site is not None:
        what += f" ({c.site})"
    parts = []
    if c.values is not None:
        parts.append("in " + ", ".join(c.values))
    if c.min is not None:
        parts.append(f"≥ {_fmt_bound(c.min)}")
    if c.max is not None:
        parts.append(f"≤ {_fmt_bound(c.max)}")
    if c.less_than is not None:
        parts.append(f"< {_fmt_bound(c.less_than)}")
    return what + " " + " and ".join(parts)


def criterion_from_mapping(raw: Mapping[str, Any]) -> Criterion:
    ctype = raw.get("type")
    _require(ctype in CRITERION_TYPES, f"unknown criterion type {ctype!r}")
    extra = CRITERION_TYPES[ctype]
    if extra is not None:
        _require(raw.get(extra) is not None, f"criterion {ctype} needs {extra}")
    values = raw.get("in")
    if ctype == "sex":
        _require(bool(values), "criterion sex needs in: [..]")
        values = tuple(str(v) for v in values)
    else:
        _require(values is None, f"criterion {ctype} does not take in:")
    bounds = {k: _num(raw, k) for k in ("min", "max", "less_than")}
    if ctype != "sex":
        _require(any(v is not None for v in bounds.values()), f"criterion {ctype} needs a bound")
    c = Criterion(
        type=ctype,
        label="",
        values=values,
        threshold_pg_ml=_num(raw, "threshold_pg_ml"),
        site=None if raw.get("site") is None else str(raw["site"]),
        **bounds,
    )
    label = str(raw.get("label") or describe(c))
    return Criterion(**{**c.__dict__, "label": label})


def from_mapping(raw: Mapping[str, Any]) -> CohortConfig:
    s = raw.get("settings") or {}
    one_year = s.get("one_year") or {}
    settings = Settings(
        min_cell_count=int(s.get("min_cell_count", 11)),
        regression_threshold_pg_ml=float(s.get("regression_threshold_pg_ml", 20)),
        one_year_target_days=int(one_year.get("target_days", 365)),
        one_year_window_days=int(one_year.get("window_days", 90)),
        censored_fraction=float(s.get("censored_fraction", 0.5)),
        result_statuses=tuple(str(x) for x in s.get("result_statuses", ["F", "C"])),
    )
    _require(settings.min_cell_count >= 1, "min_cell_count must be ≥ 1")
    _require(settings.one_year_window_days >= 0, "one_year.window_days must be ≥ 0")
    labs = tuple(
        LabSpec(
            analyte=str(x["analyte"]),
            label=str(x.get("label", x["analyte"])),
            unit=str(x.get("unit", "")),
            decimals=int(x.get("decimals", 1)),
        )
        for x in raw.get("labs") or []
    )
    sites = tuple(
        SiteSpec(site=str(x["site"]), label=str(x.get("label", x["site"])))
        for x in raw.get("sites") or []
    )
    _require(len(sites) > 0, "sites is empty")
    base = tuple(criterion_from_mapping(c) for c in raw.get("base_criteria") or [])
    cohorts: dict[str, Cohort] = {}
    for name, body in (raw.get("cohorts") or {}).items():
        body = body or {}
        cohorts[str(name)] = Cohort(
            name=str(name),
            label=str(body.get("label", name)),
            criteria=tuple(criterion_from_mapping(c) for c in body.get("criteria") or []),
        )
    comparisons = []
    for comp in raw.get("comparisons") or []:
        groups = tuple(str(g) for g in comp.get("groups") or [])
        _require(len(groups) == 2, f"comparison {comp.get('name')!r} needs exactly 2 groups")
        for g in groups:
            _require(g in cohorts, f"comparison {comp.get('name')!r}: unknown cohort {g!r}")
        name = str(comp.get("name") or "_vs_".join(groups))
        _require(name.replace("_", "").isalnum(), f"comparison name {name!r}: letters, digits, _")
        comparisons.append(Comparison(name=name, title=str(comp.get("title", name)), groups=groups))
    _require(len(comparisons) > 0, "no comparisons")
    _require(
        len({c.name for c in comparisons}) == len(comparisons), "comparison names must be unique"
    )
    return CohortConfig(settings, labs, sites, base, cohorts, tuple(comparisons))


def load(path: Path | str | None = None) -> CohortConfig:
    return from_mapping(read_yaml(path or CONFIG_PATH) or {})
