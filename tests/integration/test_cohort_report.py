"""The cohort report on a hand-built warehouse: every number checked against a plain computation.

The fixture (30 men in two groups plus patients each base criterion must exclude) is built
from per-patient values chosen here; the expected numbers are computed from those chosen
values with numpy/scipy formulas written in this file (means, SD, t-based CI, Welch t with
Satterthwaite df, closed-form OLS), never from the tables the report reads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from warehouse.cohort_report import build_cohort_report
from warehouse.home import Home

pytestmark = pytest.mark.integration

N_PER_GROUP = 15
SITES = ("lumbar_spine", "total_hip", "femoral_neck")
N_NECK = 8  # femoral neck scans only for the first 8 patients of a group: a small cell
LABS = ("testosterone_total", "estradiol", "ctx", "p1np")
LOINC = {"testosterone_total": "2986-8", "estradiol": "2243-4", "ctx": "41171-0", "p1np": "77370-5"}
THRESHOLDS = (10.0, 20.0, 30.0)
DAYS_PER_YEAR = 365.25

# ---- the test's own cohort definitions (the shipped config is exercised separately) ------
TEST_CONFIG = {
    "settings": {
        "min_cell_count": 11,
        "regression_threshold_pg_ml": 20,
        "one_year": {"target_days": 365, "window_days": 90},
        "censored_fraction": 0.5,
        "result_statuses": ["F", "C"],
    },
    "labs": [
        {"analyte": "testosterone_total", "label": "TT", "unit": "ng/dL", "decimals": 1},
        {"analyte": "estradiol", "label": "E2", "unit": "pg/mL", "decimals": 2},
        {"analyte": "ctx", "label": "CTX", "unit": "pg/mL", "decimals": 1},
        {"analyte": "p1np", "label": "P1NP", "unit": "ng/mL", "decimals": 2},
    ],
    "sites": [
        {"site": "lumbar_spine", "label": "Spine"},
        {"site": "total_hip", "label": "Hip"},
        {"site": "femoral_neck", "label": "Neck"},
    ],
    "base_criteria": [
        {"type": "sex", "in": ["M"], "label": "men"},
        {"type": "e2_followup_days", "min": 365, "label": "follow-up"},
    ],
    "cohorts": {
        "ai": {
            "label": "AI",
            "criteria": [{"type": "anastrozole_days", "min": 183, "label": "AI 6 mo"}],
        },
        "no_ai": {
            "label": "NoAI",
            "criteria": [{"type": "anastrozole_days", "max": 0, "label": "no AI"}],
        },
        "old": {
            "label": "Old",
            "criteria": [{"type": "age_at_first_e2", "min": 80, "label": "age 80+"}],
        },
        "young": {
            "label": "Young",
            "criteria": [{"type": "age_at_first_e2", "less_than": 80, "label": "age <80"}],
        },
    },
    "comparisons": [
        {"name": "ai_vs_no_ai", "title": "AI vs no AI", "groups": ["ai", "no_ai"]},
        {"name": "old_vs_young", "title": "Old vs young", "groups": ["old", "young"]},
    ],
}
MEASURE_LABEL = {
    "testosterone_total": "TT, ng/dL",
    "estradiol": "E2, pg/mL",
    "ctx": "CTX, pg/mL",
    "p1np": "P1NP, ng/mL",
    "lumbar_spine": "Spine BMD, g/cm²",
    "total_hip": "Hip BMD, g/cm²",
    "femoral_neck": "Neck BMD, g/cm²",
}
DECIMALS = {"testosterone_total": 1, "estradiol": 2, "ctx": 1, "p1np": 2}


# ---- fixture: patients with chosen values -------------------------------------------------


@dataclass
class Patient:
    key: str
    group: str | None  # "ai" / "no_ai" / None (excluded)
    sex: str
    birth_year: int
    d0: dt.date
    followup_days: int
    anastrozole_episodes: list[int]
    frac: dict[float, float]
    base: dict[str, float] = field(default_factory=dict)  # chosen baseline value per measure
    one_year: dict[str, float] = field(default_factory=dict)  # chosen 1-year value (if any)
    t_base: dict[str, float] = field(default_factory=dict)
    slope_g: dict[str, float] = field(default_factory=dict)
    slope_pct: dict[str, float] = field(default_factory=dict)

    @property
    def age(self) -> int:
        return self.d0.year - self.birth_year


def pkey(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def make_patients() -> list[Patient]:
    rng = np.random.default_rng(20240611)
    out = []
    for group in ("ai", "no_ai"):
        for i in range(N_PER_GROUP):
            is_ai = group == "ai"
            old = is_ai and i < 5  # five patients aged 85: the small cell of "old"
            f20 = rng.uniform(0.4, 1.0) if is_ai else rng.uniform(0.0, 0.6)
            out.append(
                Patient(
                    key=pkey(f"{group}{i}"),
                    group=group,
                    sex="M",
                    birth_year=1935 if old else 1945 + (7 * i) % 20 + (2 if is_ai else 0),
                    d0=dt.date(2020, 1, 6) + dt.timedelta(days=3 * i + (1 if is_ai else 0)),
                    followup_days=730,
                    anastrozole_episodes=[100, 120] if is_ai else [],
                    frac={10.0: f20 / 2, 20.0: f20, 30.0: min(1.0, f20 + 0.2)},
                )
            )
    for name, sex, follow, ai in (
        ("x_female", "F", 730, []),
        ("x_short", "M", 200, []),
        ("x_partial", "M", 730, [150]),
        ("x_noe2", "M", None, []),
    ):
        out.append(
            Patient(
                pkey(name),
                None,
                sex,
                1955,
                dt.date(2020, 2, 3),
                follow,
                ai,
                {t: 0.3 for t in THRESHOLDS},
            )
        )
    return out


def lab_rows(p: Patient, i: int, rng) -> list[dict]:
    """Chosen baseline / 1-year values, with the edge cases the report must handle."""
    is_ai = p.group == "ai"
    rows = []

    def add(analyte, day, value, comparator=None, status="F"):
        rows.append(
            {
                "patient_key": p.key,
                "analyte": analyte,
                "loinc_code": LOINC[analyte],
                "collected_at": dt.datetime.combine(p.d0 + dt.timedelta(days=day), dt.time(8, 30)),
                "value": value,
                "comparator": comparator,
                "result_status": status,
            }
        )

    means = {
        "testosterone_total": (320, 500 if is_ai else 480),
        "estradiol": (18, 11 if is_ai else 24),
        "ctx": (350, 390 if is_ai else 345),
        "p1np": (45, 50 if is_ai else 46),
    }
    for analyte, (m0, m1) in means.items():
        base = round(float(rng.normal(m0, m0 * 0.2)), 2)
        y1 = round(float(rng.normal(m1, m1 * 0.2)), 2)
        off = int(rng.integers(-40, 41))
        if analyte == "estradiol" and i == 0:
            add(analyte, 0, base - 2)  # two results on the baseline date → their mean
            add(analyte, 0, base + 2)
        elif analyte == "estradiol" and i == 1:
            add(analyte, 0, 10.0, "<")  # censored "<10" → 10 × 0.5
            base = 5.0
        else:
            add(analyte, 0, base)
        if analyte == "estradiol" and i == 2:
            add(analyte, -30, 99.0, status="P")  # preliminary: not current, ignored
            add(analyte, 20, 77.0, status="D")  # (a retraction row cannot be current)
        p.base[analyte] = base
        add(analyte, 120, base * 1.1)  # within a year: never the 1-year value
        if analyte == "estradiol" and is_ai and i in (3, 4):
            add(analyte, 365 + 91, y1)  # 91 days after the target: outside the window
        else:
            add(analyte, 365 + off, y1)
            far = off + (25 if off >= 0 else -25)  # also in the window, but farther
            add(analyte, 365 + far, y1 + 1000)
            p.one_year[analyte] = y1
        add(analyte, 730, base * 0.9)
    return rows


def dexa_rows(p: Patient, i: int, rng) -> list[dict]:
    is_ai = p.group == "ai"
    rows = []
    s0 = p.d0 + dt.timedelta(days=14)
    days = [0, 365 + int(rng.integers(-60, 61)), 730 + int(rng.integers(-30, 31))]
    use_sbmd = p.group == "no_ai" and i == 0
    for site, b_mean, t_mean in (
        ("lumbar_spine", 1.12 if is_ai else 1.18, -0.8),
        ("total_hip", 0.98 if is_ai else 1.00, -0.5),
        ("femoral_neck", 0.85, -1.2),
    ):
        if site == "femoral_neck" and i >= N_NECK:
            continue
        b0 = float(rng.normal(b_mean, 0.12))
        rate = float(rng.normal(-1.7 if is_ai else 0.8, 0.6)) / 100
        t0 = round(float(rng.normal(t_mean, 0.7)), 2)
        values = [b0 * (1 + rate * d / DAYS_PER_YEAR) + float(rng.normal(0, 0.004)) for d in days]
        for k, (d, v) in enumerate(zip(days, values, strict=True)):
            sides = [None] if site == "lumbar_spine" else ["left", "right"]
            for j, side in enumerate(sides):
                delta = 0.0 if side is None else (-0.01 if j == 0 else 0.01)
                rows.append(
                    {
                        "patient_key": p.key,
                        "scan_date": s0 + dt.timedelta(days=d),
                        "site": site,
                        "side": side,
                        "bmd_g_cm2": v + delta,
                        # sBMD differs from BMD so the test sees which one is used
                        "sbmd_mg_cm2": (v + delta) * 1000 * 1.05,
                        "t_score": t0 + k * 0.1 + (delta * 10),
                        "manufacturer": "Hologic",
                    }
                )
        used = [v * 1.05 for v in values] if use_sbmd else values
        p.base[site] = used[0]
        p.one_year[site] = used[1]
        p.t_base[site] = t0
        x = np.array(days) / DAYS_PER_YEAR
        slope = float(np.polyfit(x, np.array(used), 1)[0])
        p.slope_g[site] = slope
        p.slope_pct[site] = 100 * slope / used[0]
    return rows, use_sbmd


def build_warehouse(path: Path, patients: list[Patient]) -> None:
    rng = np.random.default_rng(11)
    labs, scans, trends, expo, meds = [], [], [], [], []
    counters = {"ai": 0, "no_ai": 0}
    for p in patients:
        if p.group is None:
            i = 99
        else:
            i = counters[p.group]
            counters[p.group] += 1
        if p.followup_days is not None:
            labs += lab_rows(p, i, rng)
            for thr in THRESHOLDS:
                expo.append(
                    {
                        "patient_key": p.key,
                        "threshold_pg_ml": thr,
                        "period": "overall",
                        "first_date": p.d0,
                        "followup_days": p.followup_days,
                        "interpolated_days": p.followup_days,
                        "below_days": round(p.frac[thr] * p.followup_days),
                        "fraction_below": p.frac[thr],
                    }
                )
                # a calendar-year row with other values: the report must use 'overall'
                expo.append(
                    {
                        "patient_key": p.key,
                        "threshold_pg_ml": thr,
                        "period": "2020",
                        "first_date": p.d0,
                        "followup_days": 300,
                        "interpolated_days": 300,
                        "below_days": 0,
                        "fraction_below": 0.0,
                    }
                )
        rows, use_sbmd = dexa_rows(p, i, rng)
        scans += rows
        for site in p.slope_g:
            trends.append(
                {
                    "patient_key": p.key,
                    "site": site,
                    "n_scans": 3,
                    "span_years": 2.0,
                    "first_bmd_g_cm2": p.base[site],
                    "slope_g_cm2_per_year": p.slope_g[site],
                    "slope_pct_per_year": p.slope_pct[site],
                    "uses_sbmd": use_sbmd,
                }
            )
        start = dt.date(2019, 12, 1)
        for days in p.anastrozole_episodes:
            meds.append(
                {
                    "patient_key": p.key,
                    "ingredient": "anastrozole",
                    "episode_start": start,
                    "episode_end": start + dt.timedelta(days=days - 1),
                    "days_exposed": days,
                    "cumulative_dose_mg": float(days),
                    "n_records": 2,
                }
            )
            start += dt.timedelta(days=days + 60)
        meds.append(
            {
                "patient_key": p.key,
                "ingredient": "testosterone",
                "episode_start": dt.date(2019, 6, 1),
                "episode_end": dt.date(2021, 6, 1),
                "days_exposed": 731,
                "cumulative_dose_mg": 20000.0,
                "n_records": 50,
            }
        )
    frames = {
        "core.dim_patient": pd.DataFrame(
            [{"patient_key": p.key, "birth_year": p.birth_year, "sex": p.sex} for p in patients]
        ),
        "core.fct_lab_result": pd.DataFrame(labs).assign(unit="x", is_mapped=True),
        "core.fct_dexa_scan": pd.DataFrame(scans),
        "core.medication_exposure": pd.DataFrame(meds),
        "marts.feat_e2_exposure": pd.DataFrame(expo),
        "marts.feat_bmd_trend": pd.DataFrame(trends),
        "raw.runs": pd.DataFrame(
            [
                {
                    "run_id": "run-0001",
                    "started_at": dt.datetime(2024, 1, 1, 10),
                    "finished_at": dt.datetime(2024, 1, 1, 11),
                    "status": "success",
                },
                {
                    "run_id": "run-0002",
                    "started_at": dt.datetime(2024, 1, 2, 10),
                    "finished_at": None,
                    "status": "failed",
                },
            ]
        ),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    for schema in ("core", "marts", "raw"):
        con.execute("CREATE SCHEMA " + schema)
    for name, df in frames.items():
        con.register("frame", df)
        con.execute("CREATE TABLE " + name + " AS SELECT * FROM frame")  # noqa: S608
        con.unregister("frame")
    con.close()


# ---- reading the report back --------------------------------------------------------------


class _Tables(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._id = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._id = dict(attrs).get("id")
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self.tables[self._id].append([])
        elif tag in ("td", "th") and self._id:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._id][-1].append(self._cell)
            self._cell = None
        elif tag == "table":
            self._id = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def html_tables(html: str) -> dict[str, dict[str, dict[str, str]]]:
    """table id → row label → column header → cell text."""
    parser = _Tables()
    parser.feed(html)
    out = {}
    for tid, rows in parser.tables.items():
        header = rows[0]
        body = {}
        for r in rows[1:]:
            label = r[0] if r[0] not in body else f"{r[0]} | {r[1]}"
            if len(header) > 1 and header[1] == "Measure":
                label = f"{r[0]} | {r[1]}"
            body[label] = dict(zip(header, r, strict=True))
        out[tid] = body
    return out


def close(cell: str, expected: float, decimals: int) -> bool:
    return abs(float(cell) - expected) <= 0.5 * 10.0**-decimals + 1e-9


def check_mean_sd(cell: str, values, decimals: int) -> None:
    m, s = (x.strip() for x in cell.split("±"))
    a = np.asarray(values, dtype=float)
    mean = a.sum() / a.size
    sd = math.sqrt(((a - mean) ** 2).sum() / (a.size - 1))
    assert close(m, mean, decimals), (cell, mean)
    assert close(s, sd, decimals), (cell, sd)


def t_ci(values) -> tuple[float, float, float]:
    a = np.asarray(values, dtype=float)
    n = a.size
    mean = a.sum() / n
    se = math.sqrt(((a - mean) ** 2).sum() / (n - 1)) / math.sqrt(n)
    half = stats.t.ppf(0.975, n - 1) * se
    return mean, mean - half, mean + half


def welch_reference(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return float(2 * stats.t.sf(abs(t), df))


def check_p(cell: str, p: float) -> None:
    if "e" in cell:
        assert float(cell) == pytest.approx(p, rel=0.01), (cell, p)
    else:
        assert abs(float(cell) - p) <= 0.0005 + 1e-12, (cell, p)


def check_ci(cell: str, lo: float, hi: float, decimals: int) -> None:
    a, b = cell.split(" to ")
    assert close(a, lo, decimals) and close(b, hi, decimals), (cell, lo, hi)


# ---- fixtures -----------------------------------------------------------------------------


@dataclass
class Built:
    home: Home
    patients: list[Patient]
    result: dict
    html: str
    tables: dict


def _build(tmp_path: Path, config: dict, *, published: bool = True, run_id=None) -> Built:
    home = Home(tmp_path / "home")
    patients = make_patients()
    build_warehouse(home.published if published else home.warehouse, patients)
    cfg_path = tmp_path / "cohorts.yaml"
    cfg_path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    result = build_cohort_report(home, run_id=run_id, config_path=cfg_path)
    html = Path(result["html_path"]).read_text(encoding="utf-8")
    return Built(home, patients, result, html, html_tables(html))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Built:
    return _build(tmp_path_factory.mktemp("cohort"), TEST_CONFIG)


def eligible(p: Patient) -> bool:
    """Passes the base criteria: a man with ≥ 365 days of E2 follow-up."""
    return p.sex == "M" and p.followup_days is not None and p.followup_days >= 365


def group(b: Built, name: str) -> list[Patient]:
    return [p for p in b.patients if p.group == name]


# ---- tests --------------------------------------------------------------------------------


def test_sizes_and_attrition(built):
    sizes = built.tables["cohort-sizes"]
    assert sizes["AI"]["Patients"] == "15"
    assert sizes["NoAI"]["Patients"] == "15"
    assert sizes["Old"]["Patients"] == "<11"  # 5 patients aged 85
    young = [p for p in built.patients if eligible(p) and p.age < 80]
    assert sizes["Young"]["Patients"] == str(len(young))
    att = built.tables["ai_vs_no_ai-attrition"]
    # 34 patients; 33 men; 31 with ≥ 365 days of E2 follow-up (short and no-E2 excluded)
    assert att["patients in the warehouse"]["AI"] == "34"
    assert att["men"]["AI"] == "33" and att["men"]["NoAI"] == "33"
    assert att["follow-up"]["AI"] == "31"
    assert att["AI 6 mo"] == {"Criterion": "AI 6 mo", "AI": "15", "NoAI": ""}
    assert att["no AI"] == {"Criterion": "no AI", "AI": "", "NoAI": "15"}


def test_baseline_table(built):
    t = built.tables["ai_vs_no_ai-baseline"]
    for g, label in (("ai", "AI"), ("no_ai", "NoAI")):
        ps = group(built, g)
        assert t["Patients"][f"{label}: n"] == "15"
        row = t["Age at first E2, years"]
        check_mean_sd(row[f"{label}: mean ± SD"], [p.age for p in ps], 1)
        for analyte in LABS:
            row = t[MEASURE_LABEL[analyte]]
            assert row[f"{label}: n"] == "15"
            check_mean_sd(
                row[f"{label}: mean ± SD"], [p.base[analyte] for p in ps], DECIMALS[analyte]
            )
        for site, lab in (("lumbar_spine", "Spine"), ("total_hip", "Hip")):
            check_mean_sd(
                t[MEASURE_LABEL[site]][f"{label}: mean ± SD"], [p.base[site] for p in ps], 3
            )
            check_mean_sd(
                t[f"{lab} T-score"][f"{label}: mean ± SD"], [p.t_base[site] for p in ps], 2
            )
        # femoral neck: 8 patients per group → count shown as <11, statistics suppressed
        assert t[MEASURE_LABEL["femoral_neck"]][f"{label}: n"] == "<11"
        assert t[MEASURE_LABEL["femoral_neck"]][f"{label}: mean ± SD"] == "—"


def test_slope_table_means_cis_and_welch(built):
    t = built.tables["ai_vs_no_ai-slopes"]
    for site, lab in (("lumbar_spine", "Spine"), ("total_hip", "Hip")):
        for attr, measure, decimals in (
            ("slope_pct", "BMD slope, %/year", 2),
            ("slope_g", "BMD slope, g/cm²/year", 4),
        ):
            row = t[f"{lab} | {measure}"]
            values = {}
            for g, label in (("ai", "AI"), ("no_ai", "NoAI")):
                vals = [getattr(p, attr)[site] for p in group(built, g)]
                values[g] = vals
                mean, lo, hi = t_ci(vals)
                assert row[f"{label}: n"] == "15"
                assert close(row[f"{label}: mean"], mean, decimals)
                check_ci(row[f"{label}: 95 % CI"], lo, hi, decimals)
            check_p(row["Welch p"], welch_reference(values["ai"], values["no_ai"]))
    # the constructed difference (−1.7 vs +0.8 %/year) is detected at the spine
    assert float(t["Spine | BMD slope, %/year"]["Welch p"]) < 0.001
    neck = t["Neck | BMD slope, %/year"]
    assert neck["AI: n"] == "<11" and neck["AI: mean"] == "—" and neck["Welch p"] == "—"
    # Holm over the four tests shown (the suppressed neck rows are in no family): the k-th
    # smallest p × (4 − k + 1), running maximum, at most 1
    raw = {}
    for site, lab in (("lumbar_spine", "Spine"), ("total_hip", "Hip")):
        for attr, measure in (
            ("slope_pct", "BMD slope, %/year"),
            ("slope_g", "BMD slope, g/cm²/year"),
        ):
            vals = [[getattr(p, attr)[site] for p in group(built, g)] for g in ("ai", "no_ai")]
            raw[f"{lab} | {measure}"] = welch_reference(*vals)
    running = 0.0
    for k, (label, p) in enumerate(sorted(raw.items(), key=lambda kv: kv[1])):
        running = max(running, min(1.0, (len(raw) - k) * p))
        check_p(t[label]["Holm p (this table)"], running)
    assert neck["Holm p (this table)"] == "—"


def test_regression_estimate_and_ci(built):
    t = built.tables["ai_vs_no_ai-regression"]
    ps = group(built, "ai") + group(built, "no_ai")
    for site, lab in (("lumbar_spine", "Spine"), ("total_hip", "Hip")):
        x = np.array([p.frac[20.0] for p in ps])
        y = np.array([p.slope_pct[site] for p in ps])
        n = x.size
        sxx = ((x - x.mean()) ** 2).sum()
        b = ((x - x.mean()) * (y - y.mean())).sum() / sxx
        a = y.mean() - b * x.mean()
        se = math.sqrt(((y - a - b * x) ** 2).sum() / (n - 2) / sxx)
        half = stats.t.ppf(0.975, n - 2) * se
        row = t[lab]
        assert row["n"] == "30"
        assert close(row["Estimate (%/year per 100 % of time below)"], b, 3)
        check_ci(row["95 % CI"], b - half, b + half, 3)
        check_p(row["p"], float(2 * stats.t.sf(abs(b / se), n - 2)))
    assert t["Neck"]["n"] == "16"  # 8 + 8 patients with a neck slope


def test_one_year_change_table(built):
    t = built.tables["ai_vs_no_ai-change"]
    for measure, decimals in (
        *((a, DECIMALS[a]) for a in LABS),
        ("lumbar_spine", 3),
        ("total_hip", 3),
    ):
        row = t[MEASURE_LABEL[measure]]
        changes = {}
        for g, label in (("ai", "AI"), ("no_ai", "NoAI")):
            ps = [p for p in group(built, g) if measure in p.one_year]
            base = [p.base[measure] for p in ps]
            y1 = [p.one_year[measure] for p in ps]
            delta = np.array(y1) - np.array(base)
            changes[g] = delta
            assert row[f"{label}: n"] == str(len(ps))
            check_mean_sd(row[f"{label}: baseline"], base, decimals)
            check_mean_sd(row[f"{label}: 1 year"], y1, decimals)
            check_mean_sd(row[f"{label}: change"], delta, decimals)
        check_p(row["p (Welch, changes)"], welch_reference(changes["ai"], changes["no_ai"]))
    # two AI patients' E2 has no result within ±90 days of day 365: 13 pairs
    assert t[MEASURE_LABEL["estradiol"]]["AI: n"] == "13"
    assert t[MEASURE_LABEL["femoral_neck"]]["AI: change"] == "—"


def test_fraction_table_uses_overall_window(built):
    t = built.tables["ai_vs_no_ai-time-below"]
    for thr in THRESHOLDS:
        row = t[f"< {thr:g} pg/mL"]
        for g, label in (("ai", "AI"), ("no_ai", "NoAI")):
            fractions = [p.frac[thr] for p in group(built, g)]
            check_mean_sd(row[f"{label}: mean ± SD"], fractions, 3)
            # the median and quartiles by hand: sorted values, linear between order statistics
            v = sorted(fractions)

            def at(q, v=v):
                pos = q * (len(v) - 1)
                lo = int(pos)
                return v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (pos - lo)

            expected = f"{at(0.5):.3f} [{at(0.25):.3f} to {at(0.75):.3f}]"
            assert row[f"{label}: median [IQR]"] == expected.replace("-0.000", "0.000")


def test_figures_written_and_embedded(built):
    r = built.result
    assert len(r["figure_paths"]) == 8  # 4 figures × 2 comparisons
    for path in r["figure_paths"] + r["run_figure_paths"]:
        data = Path(path).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert Path(path).parent in (Path(r["html_path"]).parent, Path(r["run_html_path"]).parent)
    assert built.html.count('src="data:image/png;base64,') == 8
    assert Path(r["html_path"]) == built.home.reports / "cohort" / "cohort_report.html"
    # the latest successful run names the per-run copy
    assert r["run_id"] == "run-0001"
    run_html = Path(r["run_html_path"])
    assert run_html == built.home.reports / "cohort" / "runs" / "run-0001" / "cohort_report.html"
    assert run_html.read_text(encoding="utf-8") == built.html


def test_html_is_self_contained_and_has_no_identifiers(built):
    html = built.html
    assert not re.search(r"""(src|href)=["'](?!data:)""", html)
    assert "<script" not in html and "@import" not in html
    for p in built.patients:
        assert p.key not in html
        assert p.key[:12] not in html


def test_small_cell_suppressed_everywhere(built):
    """'Old' has 5 patients: counts show <11, no statistic, not drawn."""
    t = built.tables
    att = t["old_vs_young-attrition"]
    assert att["age 80+"]["Old"] == "<11"
    base = t["old_vs_young-baseline"]
    assert base["Patients"]["Old: n"] == "<11"
    for label, row in base.items():
        if label != "Patients":
            assert row["Old: n"] == "<11"
            assert row["Old: mean ± SD"] == "—"
    for row in t["old_vs_young-slopes"].values():
        assert row["Old: n"] == "<11"
        assert row["Old: mean"] == "—" and row["Old: 95 % CI"] == "—"
        assert row["Welch p"] == "—"
    for row in t["old_vs_young-change"].values():
        assert [row[f"Old: {c}"] for c in ("n", "baseline", "1 year", "change")] == [
            "<11",
            "—",
            "—",
            "—",
        ]
        assert row["p (Welch, changes)"] == "—"
    for row in t["old_vs_young-time-below"].values():
        assert row["Old: n"] == "<11" and row["Old: mean ± SD"] == "—"
    # regression on the groups that may be shown (Young only)
    young = [p for p in built.patients if eligible(p) and p.age < 80]
    assert t["old_vs_young-regression"]["Spine"]["n"] == str(len(young))
    section = built.html.split('id="cmp-old_vs_young"')[1]
    assert "fewer than 11 patients" in section
    # no count from 1 to 10 anywhere in any table cell
    for rows in t.values():
        for row in rows.values():
            for header, cell in row.items():
                if header.endswith(": n") or header in (
                    "n",
                    "Patients",
                    "AI",
                    "NoAI",
                    "Old",
                    "Young",
                ):
                    assert not re.fullmatch(r"[0-9]|10", cell), (header, cell)


def test_preview_markdown(built):
    md = built.result["preview_markdown"]
    lines = md.splitlines()
    assert lines[0] == "| Comparison | Group | Patients | Spine slope %/y | 95 % CI | Welch p |"
    assert lines[1] == "| --- | --- | --- | --- | --- | --- |"
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [r[1] for r in rows] == ["AI", "NoAI", "Old", "Young"]
    ai = group(built, "ai")
    mean, lo, hi = t_ci([p.slope_pct["lumbar_spine"] for p in ai])
    assert rows[0][0] == "AI vs no AI" and rows[0][2] == "15"
    assert close(rows[0][3], mean, 2)
    check_ci(rows[0][4], lo, hi, 2)
    assert rows[2][2:] == ["<11", "—", "—", "—"]


def test_reads_the_warehouse_read_only_when_nothing_is_published(tmp_path):
    b = _build(tmp_path, TEST_CONFIG, published=False, run_id="manual-1")
    assert b.result["source"] == "warehouse (read-only)"
    assert b.tables["cohort-sizes"]["AI"]["Patients"] == "15"
    assert Path(b.result["run_html_path"]).parent.name == "manual-1"


def test_shipped_config_builds_every_comparison(tmp_path):
    home = Home(tmp_path / "home")
    build_warehouse(home.published, make_patients())
    result = build_cohort_report(home)
    html = Path(result["html_path"]).read_text(encoding="utf-8")
    tables = html_tables(html)
    shipped = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "config" / "cohorts.yaml").read_text("utf-8")
    )
    for comp in shipped["comparisons"]:
        assert f'id="cmp-{comp["name"]}"' in html
        assert f"{comp['name']}-change" in tables
    assert tables["cohort-sizes"]["AI ≥ 6 mo"]["Patients"] == "15"
    assert tables["cohort-sizes"]["no AI"]["Patients"] == "15"


def test_bad_run_id_is_refused(tmp_path):
    with pytest.raises(ValueError):
        _build(tmp_path, TEST_CONFIG, run_id="../escape")


# ---- on the generator's cohort through the whole pipeline (conftest's ``pipeline``) --------


def _truth_attributes(truth: Path) -> pd.DataFrame:
    """Per MRN, the attributes of the shipped criteria, from the generator's truth files."""
    patients = pd.read_csv(truth / "patients.csv")
    meds = pd.read_csv(truth / "medication_exposure.csv")
    expo = pd.read_csv(truth / "feat_e2_exposure.csv")
    overall = expo[expo["period"].astype(str) == "overall"]
    ai = meds[meds["ingredient"] == "anastrozole"].groupby("mrn")["days"].sum()
    first = overall.groupby("mrn")["first_date"].min().str[:4].astype(int)
    out = patients.set_index("mrn")[["sex", "birth_year"]]
    out["anastrozole_days"] = ai.reindex(out.index).fillna(0)
    out["e2_followup_days"] = overall.groupby("mrn")["followup_days"].max()
    out["age_at_first_e2"] = first - out["birth_year"]
    for thr in sorted(overall["threshold_pg_ml"].unique()):
        rows = overall[overall["threshold_pg_ml"] == thr].set_index("mrn")["fraction_below"]
        out[f"fraction_below_{float(thr):g}"] = rows
    return out


def _passes(attrs: pd.DataFrame, c: dict) -> pd.Series:
    if c["type"] == "sex":
        return attrs["sex"].isin(c["in"])
    col = c["type"]
    if col == "fraction_below":
        col = f"fraction_below_{float(c['threshold_pg_ml']):g}"
    v = attrs[col]
    ok = v.notna()
    if "min" in c:
        ok &= v >= c["min"]
    if "max" in c:
        ok &= v <= c["max"]
    if "less_than" in c:
        ok &= v < c["less_than"]
    return ok


def test_generated_cohort_sizes_and_slopes_match_the_truth(pipeline):
    home = pipeline["home"]
    result = build_cohort_report(home)
    assert result["source"] == "published snapshot"
    assert result["run_id"] in (pipeline["run_id"], pipeline["second_run_id"])
    html = Path(result["html_path"]).read_text(encoding="utf-8")
    tables = html_tables(html)
    shipped = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "config" / "cohorts.yaml").read_text("utf-8")
    )
    min_cell = shipped["settings"]["min_cell_count"]
    attrs = _truth_attributes(pipeline["truth"])
    slopes = pd.read_csv(pipeline["truth"] / "feat_bmd_trend.csv")
    spine = slopes[slopes["site"] == "lumbar_spine"].set_index("mrn")["slope_pct_per_year"]
    for name, cohort in shipped["cohorts"].items():
        ok = pd.Series(True, index=attrs.index)
        for c in shipped["base_criteria"] + cohort["criteria"]:
            ok &= _passes(attrs, c)
        n = int(ok.sum())
        shown = str(n) if n >= min_cell else f"<{min_cell}"
        assert tables["cohort-sizes"][cohort["label"]]["Patients"] == shown, name
        for comp in shipped["comparisons"]:
            if name not in comp["groups"]:
                continue
            row = tables[f"{comp['name']}-slopes"][
                f"{shipped['sites'][0]['label']} | BMD slope, %/year"
            ]
            vals = spine.reindex(ok[ok].index).dropna()
            assert row[f"{cohort['label']}: n"] == (
                str(len(vals)) if len(vals) >= min_cell else f"<{min_cell}"
            )
            if len(vals) >= min_cell:
                assert close(row[f"{cohort['label']}: mean"], vals.mean(), 2)
    # no identifier of the generated patients reaches the report
    patients = pd.read_csv(pipeline["truth"] / "patients.csv")
    for mrn in patients["mrn"]:
        assert mrn not in html
        assert pipeline["pk"]("NORTH_CLINIC", mrn) not in html


CHROMIUM_CHECK = Path(__file__).resolve().parents[2] / "scripts" / "check_reports_chromium.sh"


@pytest.mark.skipif(
    not (Path("/usr/bin/chromium").exists() and CHROMIUM_CHECK.exists()),
    reason="headless chromium (or its check script) is not available",
)
def test_report_opens_offline_in_headless_chromium(built, tmp_path):
    import subprocess

    result = subprocess.run(
        ["bash", str(CHROMIUM_CHECK), str(built.home.reports / "cohort"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 report(s) checked" in result.stdout  # the report and its per-run copy
