"""Assemble the cohort report (tables, figures, HTML, markdown preview) from query frames.

Pure: takes the frames of warehouse/queries/cohort/*.sql (``CohortData``) and the parsed
config, returns everything in memory; warehouse/cohort_report.py reads and writes files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transforms.reporting import cohort_figures as figs
from transforms.reporting.cohort_config import CohortConfig, Comparison
from transforms.reporting.cohort_format import Cells, Table
from transforms.reporting.cohort_html import Figure, Section, render
from transforms.reporting.cohort_select import (
    CohortData,
    Selection,
    fraction_series,
    select_all,
    thresholds_of,
)
from transforms.reporting.cohort_stats import ols_fit
from transforms.reporting.cohort_tables import (
    REGRESSION_OUTCOME,
    Group,
    attrition_table,
    baseline_table,
    change_table,
    fraction_table,
    groups_of,
    regression_rows,
    regression_table,
    sizes_table,
    slope_table,
    subset,
    values_in,
)

TITLE = "Cohort report: estradiol exposure and bone density"
E2_ANALYTE = "estradiol"


@dataclass
class ReportContent:
    html: str
    sections: list[Section]
    preview_markdown: str

    @property
    def tables(self) -> list[Table]:
        return [t for s in self.sections for t in s.tables]

    @property
    def figures(self) -> list[Figure]:
        return [f for s in self.sections for f in s.figures]


def _figures(
    comp: Comparison, shown: Sequence[Group], cfg: CohortConfig, data: CohortData, cells: Cells
) -> list[Figure]:
    thresholds = thresholds_of(data)
    fractions = {
        g.label: {thr: values_in(fraction_series(data, thr), g.keys) for thr in thresholds}
        for g in shown
    }
    sites = [(s.site, s.label) for s in cfg.sites]
    e2 = data.labs[data.labs["analyte"] == E2_ANALYTE]
    out = [
        Figure(
            f"{comp.name}__time_below",
            "Distribution of the fraction of interpolated days with E2 below each threshold, by group.",
            figs.fraction_histograms(fractions, thresholds, comp.title, cells.min_cell),
        ),
        Figure(
            f"{comp.name}__bmd_trajectories",
            "BMD per site against years since the first scan: one thin line per patient, "
            "group means per whole year in bold.",
            figs.bmd_trajectories(
                {g.label: subset(data.dexa, g.keys) for g in shown},
                sites,
                comp.title,
                cells.min_cell,
            ),
        ),
        Figure(
            f"{comp.name}__e2_over_time",
            "E2 against years since the first E2 result: one thin line per patient, group "
            "means per half year in bold.",
            figs.e2_over_time(
                {g.label: subset(e2, g.keys) for g in shown}, comp.title, cells.min_cell
            ),
        ),
    ]
    thr = cfg.settings.regression_threshold_pg_ml
    points = []
    for label, df in regression_rows(shown, cfg, data):
        if not cells.shown(len(df)):
            points.append((label, None, None))
            continue
        fit = ols_fit(df["fraction_below"], df[REGRESSION_OUTCOME])
        points.append((label, df, None if fit is None else (fit.intercept, fit.estimate)))
    out.append(
        Figure(
            f"{comp.name}__slope_vs_fraction",
            f"BMD slope against the fraction of time with E2 < {thr:g} pg/mL, with the OLS "
            "line (groups shown pooled).",
            figs.slope_vs_fraction(points, thr, comp.title),
        )
    )
    return out


def comparison_section(
    comp: Comparison, selections: dict[str, Selection], cfg: CohortConfig, data: CohortData
) -> Section:
    cells = Cells(cfg.settings.min_cell_count)
    groups = groups_of(comp, selections)
    shown = [g for g in groups if cells.shown(len(g.keys))]
    sec = Section(f"cmp-{comp.name}", comp.title)
    for g in groups:
        if g not in shown:
            sec.intro.append(
                f"Group “{g.label}” has fewer than {cells.min_cell} patients: its statistics "
                "are suppressed and it is not drawn in the figures."
            )
    overlap = len(groups[0].keys & groups[1].keys)
    if overlap:
        sec.intro.append(
            f"{cells.count(overlap)} patients belong to both groups (tests assume independent "
            "groups)."
        )
    sec.tables = [
        attrition_table(comp, selections, cells),
        baseline_table(comp, groups, cfg, data, cells),
        fraction_table(comp, groups, data, cells),
        slope_table(comp, groups, cfg, data, cells),
        regression_table(comp, shown, cfg, data, cells),
        change_table(comp, groups, cfg, data, cells),
    ]
    sec.figures = _figures(comp, shown, cfg, data, cells)
    return sec


def preview_table(sections: Sequence[Section], cfg: CohortConfig) -> Table:
    """Per comparison and group: size and the first site's slope (%/year) with CI and p."""
    site = cfg.sites[0].label
    t = Table(
        "preview",
        "Preview",
        ["Comparison", "Group", "Patients", f"{site} slope %/y", "95 % CI", "Welch p"],
    )
    for s in sections:
        by_key = {tb.key.rsplit("-", 1)[-1]: tb for tb in s.tables}
        sizes = by_key["baseline"].rows[0]
        slope = by_key["slopes"].rows[0]
        labels = [c.rsplit(": ", 1)[0] for c in by_key["baseline"].columns[1::2]]
        for i, label in enumerate(labels):
            t.rows.append(
                [
                    s.title if i == 0 else "",
                    label,
                    sizes[1 + 2 * i],
                    *slope[3 + 3 * i : 5 + 3 * i],
                    slope[-1] if i == 0 else "",
                ]
            )
    return t


def build_content(
    cfg: CohortConfig, data: CohortData, meta: Sequence[tuple[str, str]] = ()
) -> ReportContent:
    cells = Cells(cfg.settings.min_cell_count)
    selections = select_all(cfg, data)
    overview = Section(
        "cohorts",
        "Cohorts",
        intro=[
            f"Counts below {cells.min_cell} are shown as “<{cells.min_cell}” and statistics "
            f"of fewer than {cells.min_cell} patients are suppressed (“—”). No patient "
            "identifiers appear in this report.",
            *(
                # "<11" would read as 1-10 patients: an empty warehouse says so
                ["The warehouse holds no patient yet: every count below is 0."]
                if data.patients.empty
                else []
            ),
            *data.notes,
        ],
        tables=[sizes_table(cfg, selections, cells)],
    )
    sections = [comparison_section(c, selections, cfg, data) for c in cfg.comparisons]
    preview = preview_table(sections, cfg)
    everything = [overview, *sections, methods_section(cfg)]
    html = render(TITLE, list(meta), everything)
    return ReportContent(html, everything, preview.to_markdown())


def methods_section(cfg: CohortConfig) -> Section:
    s = cfg.settings
    return Section(
        "methods",
        "Definitions",
        intro=[
            "Sources: core.dim_patient, core.medication_exposure (anastrozole days = sum of "
            "episode days), marts.feat_e2_exposure (overall window: follow-up, fraction of "
            "interpolated days below each threshold), marts.feat_bmd_trend (OLS slope of BMD "
            "on years since the first scan), core.fct_lab_result and core.fct_dexa_scan.",
            "Baseline = the patient's first value of each measure. 1-year value = the value "
            f"whose date is closest to baseline + {s.one_year_target_days} days among dates "
            f"within ± {s.one_year_window_days} days of it (tie: the earlier date).",
            f"Lab results with status {', '.join(s.result_statuses)}; a censored '<L' result "
            f"counts as L × {s.censored_fraction:g}; several results on one date: their mean. "
            "BMD per scan date: the mean over the sides measured; sBMD/1000 when the "
            "patient-site's trend uses sBMD. Age = year of the first E2 − birth year.",
            "Group statistics: mean, SD, 95 % CI = mean ± t(0.975, n−1)·SD/√n; two-sided "
            "Welch t-test between groups; OLS of slope (%/year) on the fraction of time with "
            f"E2 < {s.regression_threshold_pg_ml:g} pg/mL, groups pooled.",
        ],
    )
