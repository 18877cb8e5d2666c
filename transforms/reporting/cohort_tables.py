"""The tables of the cohort report (docs/cohort_report.md), one comparison at a time.

Inputs are the query frames (``CohortData``) and the selected patient keys of each group;
outputs are ``Table`` objects whose cells are already formatted and suppressed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from transforms.reporting.cohort_config import CohortConfig, Comparison
from transforms.reporting.cohort_format import Cells, Table
from transforms.reporting.cohort_select import (
    KEY,
    CohortData,
    Selection,
    fraction_series,
    thresholds_of,
)
from transforms.reporting.cohort_stats import (
    describe,
    first_values,
    holm,
    ols_fit,
    one_year_pairs,
    quartiles,
    welch_p,
)

BMD_DECIMALS = 3
T_SCORE_DECIMALS = 2
AGE_DECIMALS = 1
FRACTION_DECIMALS = 3
SLOPE_METRICS = (
    ("slope_pct_per_year", "BMD slope, %/year", 2),
    ("slope_g_cm2_per_year", "BMD slope, g/cm²/year", 4),
)
REGRESSION_OUTCOME = "slope_pct_per_year"


@dataclass(frozen=True)
class Group:
    label: str
    keys: frozenset[str]


def groups_of(comp: Comparison, selections: dict[str, Selection]) -> list[Group]:
    return [Group(selections[g].cohort.label, selections[g].keys) for g in comp.groups]


def subset(df: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    return df[df[KEY].isin(set(keys))]


def _group_columns(groups: Sequence[Group], *names: str) -> list[str]:
    return [f"{g.label}: {n}" for g in groups for n in names]


# ---- measures: one value per patient ------------------------------------------------------


def lab_series(data: CohortData, analyte: str) -> pd.DataFrame:
    return data.labs[data.labs["analyte"] == analyte]


def site_series(data: CohortData, site: str) -> pd.DataFrame:
    return data.dexa[data.dexa["site"] == site]


@dataclass(frozen=True)
class Measure:
    """A dated per-patient measure: a lab analyte or a DXA site's BMD / T-score."""

    label: str
    decimals: int
    series: pd.DataFrame
    date_col: str
    value_col: str


def dated_measures(cfg: CohortConfig, data: CohortData, *, t_scores: bool) -> list[Measure]:
    out = [
        Measure(
            f"{lab.label}, {lab.unit}",
            lab.decimals,
            lab_series(data, lab.analyte),
            "result_date",
            "value",
        )
        for lab in cfg.labs
    ]
    for site in cfg.sites:
        s = site_series(data, site.site)
        out.append(Measure(f"{site.label} BMD, g/cm²", BMD_DECIMALS, s, "scan_date", "bmd_g_cm2"))
        if t_scores:
            out.append(
                Measure(f"{site.label} T-score", T_SCORE_DECIMALS, s, "scan_date", "t_score")
            )
    return out


def baseline_measures(cfg: CohortConfig, data: CohortData) -> list:
    """(row label, decimals, per-patient baseline Series) for the baseline table."""

    def compute():
        p = data.patients.set_index(KEY)
        out = [("Age at first E2, years", AGE_DECIMALS, p["age_at_first_e2"])]
        for m in dated_measures(cfg, data, t_scores=True):
            vals = first_values(m.series, key=KEY, date_col=m.date_col, value_col=m.value_col)
            out.append((m.label, m.decimals, vals))
        return out

    return data.cached("baseline_measures", compute)


def change_measures(cfg: CohortConfig, data: CohortData) -> list:
    """(row label, decimals, one_year_pairs frame) for the 1-year change table."""

    def pairs(m: Measure):
        return one_year_pairs(
            m.series,
            key=KEY,
            date_col=m.date_col,
            value_col=m.value_col,
            target_days=cfg.settings.one_year_target_days,
            window_days=cfg.settings.one_year_window_days,
        )

    return data.cached(
        "change_measures",
        lambda: [
            (m.label, m.decimals, pairs(m)) for m in dated_measures(cfg, data, t_scores=False)
        ],
    )


def values_in(series: pd.Series, keys: frozenset[str]) -> np.ndarray:
    return series[series.index.isin(keys)].dropna().to_numpy(dtype=float)


# ---- tables -------------------------------------------------------------------------------


def sizes_table(cfg: CohortConfig, selections: dict[str, Selection], cells: Cells) -> Table:
    t = Table("cohort-sizes", "Cohort sizes", ["Cohort", "Definition", "Patients"])
    base = [c.label for c in cfg.base_criteria]
    for name, sel in selections.items():
        crit = "; ".join(base + [c.label for c in cfg.cohorts[name].criteria])
        t.rows.append([sel.cohort.label, crit, cells.count(len(sel.keys))])
    return t


def attrition_table(comp: Comparison, selections: dict[str, Selection], cells: Cells) -> Table:
    """Patients left after each criterion; shared steps first, then each group's own."""
    a, b = (selections[g] for g in comp.groups)
    t = Table(
        f"{comp.name}-attrition",
        "Attrition: patients left after each criterion",
        ["Criterion", a.cohort.label, b.cohort.label],
    )
    n_shared = 0
    for (la, _), (lb, _) in zip(a.attrition, b.attrition, strict=False):
        if la != lb:
            break
        n_shared += 1
    for i in range(n_shared):
        t.rows.append(
            [a.attrition[i][0], cells.count(a.attrition[i][1]), cells.count(b.attrition[i][1])]
        )
    for label, n in a.attrition[n_shared:]:
        t.rows.append([label, cells.count(n), ""])
    for label, n in b.attrition[n_shared:]:
        t.rows.append([label, "", cells.count(n)])
    t.notes.append(
        "The first row counts every patient in the warehouse; each next row, the patients "
        "still in after that criterion (the criteria apply in this order)."
    )
    return t


def _summary_cells(
    values: np.ndarray, decimals: int, cells: Cells, with_quartiles: bool = False
) -> list[str]:
    s = describe(values)
    out = [cells.count(s.n), cells.mean_sd(s, decimals)]
    if with_quartiles:
        out.append(cells.median_iqr(quartiles(values), decimals))
    return out


def _summary_table(
    key: str,
    title: str,
    first: str,
    groups: Sequence[Group],
    measures,
    cells: Cells,
    with_quartiles: bool = False,
) -> Table:
    """One row per (label, decimals, per-patient Series): n and mean ± SD per group (and the
    median [IQR], for measures a mean describes badly)."""
    columns = ("n", "mean ± SD", "median [IQR]") if with_quartiles else ("n", "mean ± SD")
    t = Table(key, title, [first, *_group_columns(groups, *columns)])
    for label, decimals, series in measures:
        row = [label]
        for g in groups:
            row += _summary_cells(values_in(series, g.keys), decimals, cells, with_quartiles)
        t.rows.append(row)
    return t


def baseline_table(
    comp: Comparison, groups: Sequence[Group], cfg: CohortConfig, data: CohortData, cells: Cells
) -> Table:
    t = _summary_table(
        f"{comp.name}-baseline",
        "Baseline characteristics (first value of each measure, which may fall during "
        "treatment: not a pre-treatment baseline), mean ± SD",
        "Characteristic",
        groups,
        baseline_measures(cfg, data),
        cells,
    )
    t.rows.insert(0, ["Patients", *[c for g in groups for c in (cells.count(len(g.keys)), "")]])
    return t


def fraction_table(
    comp: Comparison, groups: Sequence[Group], data: CohortData, cells: Cells
) -> Table:
    measures = (
        (f"< {thr:g} pg/mL", FRACTION_DECIMALS, fraction_series(data, thr))
        for thr in thresholds_of(data)
    )
    t = _summary_table(
        f"{comp.name}-time-below",
        "Fraction of interpolated days with E2 below each threshold (overall window): "
        "mean ± SD and median [IQR]",
        "Threshold",
        groups,
        measures,
        cells,
        with_quartiles=True,
    )
    t.notes.append(
        "fraction_below = below_days / interpolated_days: gap days (intervals longer than "
        "max_gap_days) and indeterminate days (next to a '<L' result with L above the "
        "threshold) are in neither, so the fraction is not a share of all follow-up. Patients "
        "with no interpolated day have no fraction. Fractions pile up at 0 and 1: read the "
        "median [IQR] beside the mean."
    )
    return t


def slope_table(
    comp: Comparison, groups: Sequence[Group], cfg: CohortConfig, data: CohortData, cells: Cells
) -> Table:
    t = Table(
        f"{comp.name}-slopes",
        "BMD slope per site: mean, 95 % CI (t-based) and Welch test",
        ["Site", "Measure", *_group_columns(groups, "n", "mean", "95 % CI"), "Welch p"],
    )
    tests = []
    for site in cfg.sites:
        trend = data.bmd_trend[data.bmd_trend["site"] == site.site].set_index(KEY)
        for col, label, decimals in SLOPE_METRICS:
            row = [site.label, label]
            vals = [values_in(trend[col], g.keys) for g in groups]
            ns = []
            for v in vals:
                s = describe(v)
                ns.append(s.n)
                row += [
                    cells.count(s.n),
                    cells.value(s.mean, s.n, decimals),
                    cells.ci(s.ci_low, s.ci_high, s.n, decimals),
                ]
            p = welch_p(*vals)
            row.append(cells.p(p, *ns))
            tests.append((p, ns))
            t.rows.append(row)
    _append_holm(t, tests, cells)
    return t


HOLM_COLUMN = "Holm p (this table)"


def _append_holm(t: Table, tests: list[tuple[float | None, list[int]]], cells: Cells) -> None:
    """A last column: each row's p adjusted by Holm over the tests the table shows (a test of
    a suppressed group is neither shown nor in the family)."""
    shown = [p if all(cells.shown(n) for n in ns) else None for p, ns in tests]
    t.columns.append(HOLM_COLUMN)
    for row, adjusted, (_, ns) in zip(t.rows, holm(shown), tests, strict=True):
        row.append(cells.p(adjusted, *ns))
    t.notes.append(
        f"{HOLM_COLUMN}: Holm's step-down adjustment over the {sum(p is not None for p in shown)} "
        "tests of this table (the family-wise error rate); the report's other tables are "
        "families of their own."
    )


def regression_rows(
    groups: Sequence[Group], cfg: CohortConfig, data: CohortData
) -> list[tuple[str, pd.DataFrame]]:
    """Per site: the pooled patients of both groups with fraction_below and the slope."""
    frac = fraction_series(data, cfg.settings.regression_threshold_pg_ml).reset_index()
    keys = set().union(*(g.keys for g in groups))
    out = []
    for site in cfg.sites:
        trend = data.bmd_trend[data.bmd_trend["site"] == site.site][[KEY, REGRESSION_OUTCOME]]
        df = subset(trend.merge(frac, on=KEY, how="inner"), keys).dropna()
        out.append((site.label, df))
    return out


def regression_table(
    comp: Comparison, groups: Sequence[Group], cfg: CohortConfig, data: CohortData, cells: Cells
) -> Table:
    thr = cfg.settings.regression_threshold_pg_ml
    t = Table(
        f"{comp.name}-regression",
        f"OLS of BMD slope (%/year) on the fraction of time with E2 < {thr:g} pg/mL "
        "(groups pooled; a suppressed group is left out)",
        ["Site", "n", "Estimate (%/year per 100 % of time below)", "95 % CI", "p"],
    )
    for label, df in regression_rows(groups, cfg, data):
        fit = ols_fit(df["fraction_below"], df[REGRESSION_OUTCOME])
        n = len(df)
        if fit is None:
            t.rows.append([label, cells.count(n), "", "", ""])
            continue
        t.rows.append(
            [
                label,
                cells.count(fit.n),
                cells.value(fit.estimate, fit.n, 3),
                cells.ci(fit.ci_low, fit.ci_high, fit.n, 3),
                cells.p(fit.p, fit.n),
            ]
        )
    t.notes.append("Model: slope_pct_per_year = a + b × fraction_below; b is the estimate.")
    return t


def change_table(
    comp: Comparison, groups: Sequence[Group], cfg: CohortConfig, data: CohortData, cells: Cells
) -> Table:
    s = cfg.settings
    t = Table(
        f"{comp.name}-change",
        "1-year change (observational; table layout of Burnett-Bowie 2009), mean ± SD",
        [
            "Measure",
            *_group_columns(groups, "n", "baseline", "1 year", "change"),
            "p (Welch, changes)",
        ],
    )
    tests = []
    for label, decimals, pairs in change_measures(cfg, data):
        paired = pairs.dropna(subset=["baseline", "one_year"])
        row, changes, ns = [label], [], []
        for g in groups:
            p = subset(paired, g.keys)
            delta = (p["one_year"] - p["baseline"]).to_numpy(dtype=float)
            changes.append(delta)
            ns.append(len(p))
            row += [
                cells.count(len(p)),
                cells.mean_sd(describe(p["baseline"]), decimals),
                cells.mean_sd(describe(p["one_year"]), decimals),
                cells.mean_sd(describe(delta), decimals),
            ]
        p = welch_p(*changes)
        row.append(cells.p(p, *ns))
        tests.append((p, ns))
        t.rows.append(row)
    _append_holm(t, tests, cells)
    t.notes.append(
        "Baseline = the patient's first value of the measure; 1-year value = the value closest "
        f"to baseline + {s.one_year_target_days} days within ± {s.one_year_window_days} days "
        "(tie: the earlier). Only patients with both values count."
    )
    return t
