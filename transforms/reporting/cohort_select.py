"""Cohort selection with attrition (docs/cohort_report.md): pure pandas on the query frames.

``CohortData`` holds the frames the report queries return (warehouse/queries/cohort/*.sql).
Patient keys stay inside these frames: they select rows and are never rendered.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from transforms.reporting.cohort_config import Cohort, CohortConfig, Criterion

KEY = "patient_key"


@dataclass
class CohortData:
    patients: pd.DataFrame  # patients.sql
    fractions: pd.DataFrame  # fraction_below.sql
    bmd_trend: pd.DataFrame  # bmd_trend.sql
    labs: pd.DataFrame  # lab_values.sql
    dexa: pd.DataFrame  # dexa_values.sql
    notes: list[str] = field(default_factory=list)
    # per-measure results shared by every comparison (computed once per report)
    cache: dict = field(default_factory=dict, repr=False)

    def cached(self, name: str, compute):
        if name not in self.cache:
            self.cache[name] = compute()
        return self.cache[name]


@dataclass(frozen=True)
class Selection:
    cohort: Cohort
    keys: frozenset[str]
    attrition: tuple[tuple[str, int], ...]  # (step label, patients left after it)


def thresholds_of(data: CohortData) -> list[float]:
    """The thresholds present in the fractions frame, ascending."""
    return sorted(data.fractions["threshold_pg_ml"].dropna().astype(float).unique())


def fraction_series(data: CohortData, threshold: float) -> pd.Series:
    """fraction_below at ``threshold`` (overall window), index = patient_key."""
    f = data.fractions
    rows = f[np.isclose(f["threshold_pg_ml"].astype(float), threshold)]
    return rows.set_index(KEY)["fraction_below"]


def _span(data: CohortData, site: str) -> pd.Series:
    t = data.bmd_trend
    return t[t["site"] == site].set_index(KEY)["span_years"]


def criterion_values(c: Criterion, data: CohortData) -> pd.Series:
    """The attribute a criterion tests, one value per patient (index = patient_key)."""
    p = data.patients.set_index(KEY)
    if c.type == "fraction_below":
        s = fraction_series(data, float(c.threshold_pg_ml))
    elif c.type == "bmd_span_years":
        s = _span(data, str(c.site))
    else:
        s = p[c.type]
    return s.reindex(p.index)


def criterion_mask(c: Criterion, data: CohortData) -> pd.Series:
    """True for the patients who pass ``c``; a missing attribute fails."""
    v = criterion_values(c, data)
    if c.type == "sex":
        return v.isin(list(c.values or ())).fillna(False)
    num = pd.to_numeric(v, errors="coerce").astype(float)
    ok = num.notna()
    if c.min is not None:
        ok &= num >= c.min
    if c.max is not None:
        ok &= num <= c.max
    if c.less_than is not None:
        ok &= num < c.less_than
    return ok.fillna(False).astype(bool)


ALL_PATIENTS = "patients in the warehouse"


def select(cohort: Cohort, base: tuple[Criterion, ...], data: CohortData) -> Selection:
    """Apply ``base`` then the cohort's criteria in order, counting who is left at each step."""
    keep = pd.Series(True, index=data.patients[KEY].to_numpy())
    steps = [(ALL_PATIENTS, int(keep.sum()))]
    for c in (*base, *cohort.criteria):
        keep &= criterion_mask(c, data).to_numpy()
        steps.append((c.label, int(keep.sum())))
    return Selection(cohort, frozenset(keep[keep].index), tuple(steps))


def select_all(cfg: CohortConfig, data: CohortData) -> dict[str, Selection]:
    return {name: select(c, cfg.base_criteria, data) for name, c in cfg.cohorts.items()}
