"""The cohort report on a generated cohort: every table cell against the generator's truth.

The report (``build_cohort_report``) reads the warehouse the pipeline built from the landing
files. The expected numbers here come only from the generator's own truth files
(``truth/*.csv``, computed by ``transforms/generate`` from its values, independently of the
warehouse), ``config/cohorts.yaml`` and the definitions of docs/cohort_report.md, with plain
numpy/scipy formulas written in this file: first value per measure, 1-year value closest to
baseline + 365 days within ± 90 days (tie: earlier), ``<L`` as L × 0.5, same-day mean, hips
mean of the sides, sBMD / 1000 when the site's trend uses sBMD, t-based CI, Welch test with
Satterthwaite df, closed-form OLS. Cells are compared to the displayed rounding; a ``<11`` /
``—`` cell must correspond to an independent n below 11.

Runs on the session's ``pipeline`` fixture (tests/integration/conftest.py: 60 generated
patients, seed 11); about 670 numeric cells are compared and about 80 checked as suppressed.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from test_cohort_report import (
    _passes,
    _Tables,
    _truth_attributes,
    check_ci,
    check_mean_sd,
    check_p,
    close,
    t_ci,
    welch_reference,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SUPPRESSED = "—"
# displayed decimals of the report (transforms/reporting/cohort_tables.py)
AGE_DECIMALS, BMD_DECIMALS, T_DECIMALS, FRACTION_DECIMALS, REGRESSION_DECIMALS = 1, 3, 2, 3, 3
SLOPES = (
    ("slope_pct_per_year", "BMD slope, %/year", 2),
    ("slope_g_cm2_per_year", "BMD slope, g/cm²/year", 4),
)
ALL_PATIENTS = "patients in the warehouse"


# ---- the report: its HTML tables, row by row ------------------------------------------------


def report_tables(html: str) -> dict[str, list[dict[str, str]]]:
    """table id → rows (column header → cell text), in display order."""
    parser = _Tables()
    parser.feed(html)
    out = {}
    for tid, rows in parser.tables.items():
        header = rows[0]
        out[tid] = [dict(zip(header, r, strict=True)) for r in rows[1:]]
    return out


# ---- independent statistics (the plain formulas of test_cohort_report.py, plus OLS) ---------


def ols(x, y) -> tuple[float, float, float, float]:
    """Slope b of y = a + b·x, its 95 % CI and two-sided p, in closed form."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = x.size
    sxx = ((x - x.mean()) ** 2).sum()
    b = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    a = y.mean() - b * x.mean()
    s2 = ((y - a - b * x) ** 2).sum() / (n - 2)
    se = math.sqrt(s2 / sxx)
    half = stats.t.ppf(0.975, n - 2) * se
    return b, b - half, b + half, float(2 * stats.t.sf(abs(b / se), n - 2))


# ---- cell checks (to the displayed rounding; suppression) ----------------------------------


class Check:
    """Compares cells and counts them; a statistic over fewer than ``min_cell`` patients
    must be shown suppressed."""

    def __init__(self, min_cell: int):
        self.min_cell = min_cell
        self.cells = 0  # numeric cells compared
        self.suppressed = 0  # cells checked as suppressed

    def close(self, cell: str, x: float, decimals: int, where) -> None:
        assert close(cell, x, decimals), (where, cell, x)
        self.cells += 1

    def count(self, cell: str, n: int, where) -> None:
        shown = str(n) if n >= self.min_cell else f"<{self.min_cell}"
        assert cell == shown, (where, cell, n)
        self.cells += 1

    def _suppressed(self, cells, n: int, where) -> bool:
        if n >= self.min_cell:
            return False
        assert all(c == SUPPRESSED for c in cells), (where, cells, n)
        self.suppressed += len(cells)
        return True

    @staticmethod
    def _at(where, check, *args) -> None:
        """Run a check of test_cohort_report.py, naming the cell when it fails."""
        try:
            check(*args)
        except AssertionError as e:
            raise AssertionError((where, *e.args)) from e

    def mean_sd(self, cell: str, values, decimals: int, where) -> None:
        if not self._suppressed([cell], len(values), where):
            self._at(where, check_mean_sd, cell, values, decimals)
            self.cells += 2

    def mean_ci(self, mean_cell: str, ci_cell: str, values, decimals: int, where) -> None:
        if not self._suppressed([mean_cell, ci_cell], len(values), where):
            m, lo, hi = t_ci(values)
            self.close(mean_cell, m, decimals, where)
            self._at(where, check_ci, ci_cell, lo, hi, decimals)
            self.cells += 2

    def p(self, cell: str, p: float, ns, where) -> None:
        if not self._suppressed([cell], min(ns), where):
            self._at(where, check_p, cell, p)
            self.cells += 1


# ---- the truth: per-MRN attributes and dated measures --------------------------------------


def read_truth(truth: Path) -> dict[str, pd.DataFrame]:
    """The truth files the tables need, and the per-MRN attributes of the criteria (age,
    anastrozole days, E2 follow-up, fractions below each threshold)."""
    return {
        "attributes": _truth_attributes(truth),
        "feat_bmd_trend": pd.read_csv(truth / "feat_bmd_trend.csv"),
        "lab_results": pd.read_csv(truth / "lab_results.csv", dtype={"comparator": str}),
        "dexa_scans": pd.read_csv(truth / "dexa_scans.csv"),
    }


def select(attrs: pd.DataFrame, criteria: list[dict]) -> tuple[set[str], list[tuple[str, int]]]:
    keep = pd.Series(True, index=attrs.index)
    steps = [(ALL_PATIENTS, len(keep))]
    for c in criteria:
        keep &= _passes(attrs, c).fillna(False)
        steps.append((c["label"], int(keep.sum())))
    return set(keep[keep].index), steps


def lab_days(t: dict[str, pd.DataFrame], settings: dict) -> pd.DataFrame:
    """mrn, analyte, date, value: current F/C results with a value, <L as L × fraction,
    several results on one date → their mean."""
    lab = t["lab_results"]
    lab = lab[lab["result_status"].isin(settings["result_statuses"]) & lab["value"].notna()]
    lab = lab[lab["is_mapped"].astype(str).str.lower() == "true"]
    censored = lab["comparator"].isin(["<", "<="])
    value = lab["value"].astype(float)
    value = value.where(~censored, value * settings["censored_fraction"])
    day = pd.to_datetime(lab["collected_at"]).dt.normalize()
    df = pd.DataFrame({"mrn": lab["mrn"], "analyte": lab["analyte"], "date": day, "v": value})
    return df.groupby(["mrn", "analyte", "date"], as_index=False)["v"].mean()


def dexa_days(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """mrn, site, date, bmd, t: mean over the sides of a scan date; sBMD / 1000 for every scan
    of a patient-site whose trend uses sBMD."""
    d = t["dexa_scans"]
    trend = t["feat_bmd_trend"]
    uses = trend.assign(u=trend["uses_sbmd"].astype(str).str.lower() == "true")
    d = d.merge(uses[["mrn", "site", "u"]], on=["mrn", "site"], how="left")
    d["u"] = d["u"].fillna(False).astype(bool)
    bmd = d["bmd_g_cm2"].astype(float).where(~d["u"], d["sbmd_mg_cm2"].astype(float) / 1000.0)
    df = pd.DataFrame(
        {
            "mrn": d["mrn"],
            "site": d["site"],
            "date": pd.to_datetime(d["scan_date"]),
            "bmd": bmd,
            "t": d["t_score"].astype(float),
        }
    )
    return df.groupby(["mrn", "site", "date"], as_index=False)[["bmd", "t"]].mean()


def baseline_and_one_year(
    days: pd.DataFrame, value: str, target: int, window: int
) -> dict[str, tuple[float, float | None]]:
    """Per MRN: (first value, 1-year value or None), by a plain loop over each patient."""
    out = {}
    for mrn, g in days.dropna(subset=[value]).groupby("mrn"):
        rows = sorted(zip(g["date"], g[value], strict=True))
        d0, v0 = rows[0]
        best = None
        for d, v in rows[1:]:
            dist = abs((d - d0).days - target)
            if dist <= window and (best is None or dist < best[0]):  # tie: the earlier stays
                best = (dist, v)
        out[mrn] = (v0, None if best is None else best[1])
    return out


# ---- the report on the generated cohort of the session (conftest.py: 60 patients, seed 11) --


@pytest.fixture(scope="module")
def generated_report(pipeline):
    from warehouse.cohort_report import build_cohort_report

    result = build_cohort_report(pipeline["home"])
    html = Path(result["html_path"]).read_text(encoding="utf-8")
    return report_tables(html), read_truth(pipeline["truth"])


def test_every_table_cell_equals_the_truth_computation(generated_report):
    tables, truth = generated_report
    cfg = yaml.safe_load((ROOT / "config" / "cohorts.yaml").read_text("utf-8"))
    settings = cfg["settings"]
    check = Check(settings["min_cell_count"])
    attrs = truth["attributes"]
    selected = {
        name: select(attrs, cfg["base_criteria"] + c["criteria"])
        for name, c in cfg["cohorts"].items()
    }
    labs = lab_days(truth, settings)
    dexa = dexa_days(truth)
    trend = truth["feat_bmd_trend"]
    thresholds = sorted(attrs.filter(like="fraction_below_").columns, key=lambda c: float(c[15:]))
    target, window = settings["one_year"]["target_days"], settings["one_year"]["window_days"]

    # dated measures, in the order of the report's rows
    measures = []  # (label, decimals, days frame, value column, is a T-score)
    for lab in cfg["labs"]:
        frame = labs[labs["analyte"] == lab["analyte"]]
        measures.append((f"{lab['label']}, {lab['unit']}", lab["decimals"], frame, "v", False))
    for s in cfg["sites"]:
        frame = dexa[dexa["site"] == s["site"]]
        measures.append((f"{s['label']} BMD, g/cm²", BMD_DECIMALS, frame, "bmd", False))
        measures.append((f"{s['label']} T-score", T_DECIMALS, frame, "t", True))
    pairs = {m[0]: baseline_and_one_year(m[2], m[3], target, window) for m in measures}

    # cohort sizes
    sizes = {r["Cohort"]: r["Patients"] for r in tables["cohort-sizes"]}
    for name, c in cfg["cohorts"].items():
        check.count(sizes[c["label"]], len(selected[name][0]), ("sizes", name))

    for comp in cfg["comparisons"]:
        cn = comp["name"]
        names = comp["groups"]
        labels = [cfg["cohorts"][g]["label"] for g in names]
        keys = [selected[g][0] for g in names]

        # attrition: shared steps (same label in both), then each group's own
        steps = [selected[g][1] for g in names]
        rows = tables[f"{cn}-attrition"]
        shared = 0
        while steps[0][shared][0] == steps[1][shared][0]:
            shared += 1
        common = zip(steps[0][:shared], steps[1][:shared], strict=True)
        expected = [(lab, na, nb) for (lab, na), (_, nb) in common]
        expected += [(lab, n, None) for lab, n in steps[0][shared:]]
        expected += [(lab, None, n) for lab, n in steps[1][shared:]]
        assert [r["Criterion"] for r in rows] == [e[0] for e in expected], cn
        for r, (lab, na, nb) in zip(rows, expected, strict=True):
            for label, n in zip(labels, (na, nb), strict=True):
                if n is None:
                    assert r[label] == "", (cn, lab)
                else:
                    check.count(r[label], n, (cn, "attrition", lab, label))

        # baseline table
        rows = {r["Characteristic"]: r for r in tables[f"{cn}-baseline"]}
        for label, k in zip(labels, keys, strict=True):
            check.count(rows["Patients"][f"{label}: n"], len(k), (cn, "patients"))
        baseline_rows = [("Age at first E2, years", AGE_DECIMALS, attrs["age_at_first_e2"])]
        for mlabel, decimals, *_ in measures:
            first = pd.Series({m: v[0] for m, v in pairs[mlabel].items()}, dtype=float)
            baseline_rows.append((mlabel, decimals, first))
        assert list(rows) == ["Patients", *[b[0] for b in baseline_rows]], cn
        for mlabel, decimals, series in baseline_rows:
            for label, k in zip(labels, keys, strict=True):
                vals = series.reindex(sorted(k)).dropna().to_numpy()
                where = (cn, "baseline", mlabel, label)
                check.count(rows[mlabel][f"{label}: n"], len(vals), where)
                check.mean_sd(rows[mlabel][f"{label}: mean ± SD"], vals, decimals, where)

        # time below each threshold
        rows = {r["Threshold"]: r for r in tables[f"{cn}-time-below"]}
        assert list(rows) == [f"< {float(c[15:]):g} pg/mL" for c in thresholds], cn
        for col in thresholds:
            row = rows[f"< {float(col[15:]):g} pg/mL"]
            for label, k in zip(labels, keys, strict=True):
                vals = attrs[col].reindex(sorted(k)).dropna().to_numpy()
                where = (cn, "time below", col, label)
                check.count(row[f"{label}: n"], len(vals), where)
                check.mean_sd(row[f"{label}: mean ± SD"], vals, FRACTION_DECIMALS, where)

        # BMD slope per site
        rows = tables[f"{cn}-slopes"]
        expected_rows = [(s, m) for s in cfg["sites"] for m in SLOPES]
        assert [(r["Site"], r["Measure"]) for r in rows] == [
            (s["label"], m[1]) for s, m in expected_rows
        ], cn
        for r, (s, (col, _, decimals)) in zip(rows, expected_rows, strict=True):
            site = trend[trend["site"] == s["site"]].set_index("mrn")[col]
            vals = [site.reindex(sorted(k)).dropna().to_numpy() for k in keys]
            for label, v in zip(labels, vals, strict=True):
                where = (cn, "slope", s["site"], col, label)
                check.count(r[f"{label}: n"], len(v), where)
                check.mean_ci(r[f"{label}: mean"], r[f"{label}: 95 % CI"], v, decimals, where)
            ns = [len(v) for v in vals]
            p = welch_reference(*vals) if min(ns) >= 2 else math.nan
            check.p(r["Welch p"], p, ns, (cn, "slope p", s["site"], col))

        # regression, the shown groups pooled
        thr_col = f"fraction_below_{float(settings['regression_threshold_pg_ml']):g}"
        pooled = set().union(*(k for k in keys if len(k) >= check.min_cell))
        rows = tables[f"{cn}-regression"]
        assert [r["Site"] for r in rows] == [s["label"] for s in cfg["sites"]], cn
        for r, s in zip(rows, cfg["sites"], strict=True):
            site = trend[trend["site"] == s["site"]].set_index("mrn")["slope_pct_per_year"]
            df = pd.DataFrame({"x": attrs[thr_col], "y": site.reindex(attrs.index)})
            df = df.reindex(sorted(pooled)).dropna()
            where = (cn, "regression", s["site"])
            check.count(r["n"], len(df), where)
            cells = [r["Estimate (%/year per 100 % of time below)"], r["95 % CI"], r["p"]]
            if len(df) < check.min_cell:
                assert set(cells) <= {SUPPRESSED, ""}, where
                check.suppressed += 3
                continue
            b, lo, hi, p = ols(df["x"], df["y"])
            check.close(cells[0], b, REGRESSION_DECIMALS, where)
            check._at(where, check_ci, cells[1], lo, hi, REGRESSION_DECIMALS)
            check.p(cells[2], p, [len(df)], where)
            check.cells += 2

        # 1-year change (labs and BMD; no T-scores)
        rows = tables[f"{cn}-change"]
        change_measures = [m for m in measures if not m[4]]
        assert [r["Measure"] for r in rows] == [m[0] for m in change_measures], cn
        for r, (mlabel, decimals, *_) in zip(rows, change_measures, strict=True):
            changes, ns = [], []
            for label, k in zip(labels, keys, strict=True):
                both = [pairs[mlabel][m] for m in sorted(k) if m in pairs[mlabel]]
                both = np.array([v for v in both if v[1] is not None], dtype=float).reshape(-1, 2)
                where = (cn, "change", mlabel, label)
                check.count(r[f"{label}: n"], len(both), where)
                check.mean_sd(r[f"{label}: baseline"], both[:, 0], decimals, where)
                check.mean_sd(r[f"{label}: 1 year"], both[:, 1], decimals, where)
                check.mean_sd(r[f"{label}: change"], both[:, 1] - both[:, 0], decimals, where)
                changes.append(both[:, 1] - both[:, 0])
                ns.append(len(both))
            p = welch_reference(*changes) if min(ns) >= 2 else math.nan
            check.p(r["p (Welch, changes)"], p, ns, (cn, "change p", mlabel))

    # the cohort is big enough for most cells to be compared, not just suppressed
    assert check.cells > 5 * check.suppressed, (check.cells, check.suppressed)


def test_header_says_what_the_report_was_built_from(pipeline):
    # the parameters the marts were built with (raw.feature_state, published), the data
    # date, and the cohort definitions by hash: enough to rebuild the same report
    import hashlib

    import duckdb

    from transforms.reporting.cohort_config import CONFIG_PATH
    from warehouse.cohort_report import build_cohort_report

    html = Path(build_cohort_report(pipeline["home"])["html_path"]).read_text(encoding="utf-8")
    meta = html.split('<p class="meta">', 1)[1].split("</p>", 1)[0]
    assert "Feature parameters: E2 thresholds 10, 20, 30 pg/mL, max gap 180 days" in meta
    assert "LSC g/cm² lumbar_spine 0.03, total_hip 0.025, femoral_neck 0.035" in meta
    sha = hashlib.sha256(CONFIG_PATH.read_bytes()).hexdigest()[:12]
    assert f"Cohort definitions: cohorts.yaml (sha256 {sha}…)" in meta
    con = duckdb.connect(str(pipeline["home"].published), read_only=True)
    try:
        last_lab, last_scan = con.execute(
            "SELECT (SELECT max(CAST(collected_at AS DATE)) FROM core.fct_lab_result), "
            "(SELECT max(scan_date) FROM core.fct_dexa_scan)"
        ).fetchone()
    finally:
        con.close()
    # to the month: the last day is one patient's event date
    assert f"Data through: labs {last_lab:%Y-%m}, DXA {last_scan:%Y-%m}" in meta
    assert f"{last_lab:%Y-%m-%d}" not in meta and f"{last_scan:%Y-%m-%d}" not in meta
