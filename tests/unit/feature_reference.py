"""Test helpers for the feature marts: input tables, loaders and plain-Python references.

The references follow docs/features.md literally and day by day (no closed forms), so that
the SQL models' arithmetic shortcuts are checked against the definition itself.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import duckdb
import pandas as pd

from transforms import feature_config
from warehouse import runner

E2 = "marts.feat_e2_exposure"
BMD = "marts.feat_bmd_trend"

INPUT_DDL = """
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS marts;
CREATE TABLE core.fct_lab_result (
    patient_key VARCHAR, result_id VARCHAR, source_system VARCHAR, source_code VARCHAR,
    loinc_code VARCHAR, analyte VARCHAR, is_mapped BOOLEAN, collected_at TIMESTAMP,
    value DOUBLE, unit VARCHAR, comparator VARCHAR, original_value VARCHAR,
    original_unit VARCHAR, detection_limit DOUBLE, method VARCHAR, result_status VARCHAR,
    file_sha256 VARCHAR, position VARCHAR
);
CREATE TABLE core.fct_dexa_scan (
    patient_key VARCHAR, scan_id VARCHAR, scan_date DATE, site VARCHAR, side VARCHAR,
    region VARCHAR, bmd_g_cm2 DOUBLE, bmd_l2_l4_g_cm2 DOUBLE, sbmd_mg_cm2 DOUBLE,
    sbmd_is_approximate BOOLEAN, t_score DOUBLE, z_score DOUBLE, manufacturer VARCHAR,
    model VARCHAR, serial VARCHAR, file_sha256 VARCHAR, position VARCHAR
);
CREATE TABLE core.medication_exposure (
    patient_key VARCHAR, ingredient VARCHAR, episode_start DATE, episode_end DATE,
    days_exposed INTEGER, cumulative_dose_mg DOUBLE, n_records INTEGER
);
"""


def default_params(**overrides) -> dict:
    """The model parameters of config/features.yaml, with some replaced."""
    params = feature_config.model_params()
    params.update(overrides)
    return params


def new_warehouse(path=None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path) if path else ":memory:")
    for stmt in runner.split_statements(INPUT_DDL):
        con.execute(stmt)
    return con


@dataclass(frozen=True)
class Lab:
    patient_key: str
    collected_at: str  # 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM'
    value: float | None
    comparator: str | None = None
    loinc_code: str | None = "2243-4"
    result_status: str = "F"


@dataclass(frozen=True)
class Scan:
    patient_key: str
    scan_date: str
    site: str
    bmd_g_cm2: float | None
    manufacturer: str = "Hologic"
    side: str | None = None
    sbmd_mg_cm2: float | None = None
    sbmd_is_approximate: bool | None = None


@dataclass(frozen=True)
class Episode:
    patient_key: str
    episode_start: str
    episode_end: str
    ingredient: str = "anastrozole"


_INSERT_SQL = {
    Lab: "INSERT INTO core.fct_lab_result BY NAME SELECT * FROM new_rows",
    Scan: "INSERT INTO core.fct_dexa_scan BY NAME SELECT * FROM new_rows",
    Episode: "INSERT INTO core.medication_exposure BY NAME SELECT * FROM new_rows",
}


def insert(con, records: Iterable[Lab | Scan | Episode]) -> None:
    """Append records (all of one kind) to their input table; other columns stay NULL."""
    records = list(records)
    if not records:
        return
    frame = pd.DataFrame([asdict(r) for r in records])
    con.register("new_rows", frame)
    try:
        con.execute(_INSERT_SQL[type(records[0])])
    finally:
        con.unregister("new_rows")


def build(con, params: dict | None = None, patient_keys=None) -> None:
    params = default_params() if params is None else params
    runner.materialize(con, E2, params, patient_keys=patient_keys)
    runner.materialize(con, BMD, params, patient_keys=patient_keys)


def fetch(con, table: str) -> list[dict]:
    """All rows of a mart as dicts."""
    rel = con.table(table)
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def _keyed(rows: list[dict], key_columns: tuple[str, ...]) -> dict[tuple, dict]:
    out = {tuple(r[c] for c in key_columns): r for r in rows}
    assert len(out) == len(rows), f"duplicate {key_columns} rows"
    return out


def e2_rows(con) -> dict[tuple, dict]:
    """marts.feat_e2_exposure keyed by (patient_key, threshold_pg_ml, period); keys unique."""
    return _keyed(fetch(con, E2), ("patient_key", "threshold_pg_ml", "period"))


def bmd_rows(con) -> dict[tuple, dict]:
    """marts.feat_bmd_trend keyed by (patient_key, site); keys unique."""
    return _keyed(fetch(con, BMD), ("patient_key", "site"))


# --- plain-Python reference of marts.feat_e2_exposure, day by day ------------------------------


def _as_date(s: str) -> dt.date:
    return dt.date.fromisoformat(s[:10])


def e2_reference(
    labs: Iterable[Lab],
    episodes: Iterable[Episode] = (),
    *,
    thresholds=(10.0, 20.0, 30.0),
    max_gap_days: int = 180,
    censored_fraction: float = 0.5,
) -> dict[tuple, dict]:
    """docs/features.md, literally: expand every interval day by day."""
    codes = {"2243-4", "14715-7", "72873-3", "83096-8"}
    by_patient: dict[str, dict[dt.date, list[tuple[float, bool, float]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for x in labs:
        if x.loinc_code not in codes or x.result_status not in ("F", "C") or x.value is None:
            continue
        censored = x.comparator in ("<", "<=")
        interp = x.value * censored_fraction if censored else x.value
        by_patient[x.patient_key][_as_date(x.collected_at)].append((interp, censored, x.value))
    exposed: dict[str, set[dt.date]] = defaultdict(set)
    for e in episodes:
        if e.ingredient != "anastrozole":
            continue
        d, end = _as_date(e.episode_start), _as_date(e.episode_end)
        while d <= end:
            exposed[e.patient_key].add(d)
            d += dt.timedelta(days=1)

    out: dict[tuple, dict] = {}
    for patient, per_date in by_patient.items():
        dates = sorted(per_date)
        info = {}
        for d in dates:
            res = per_date[d]
            vals = [r[0] for r in res]
            all_censored = all(r[1] for r in res)
            limit = sum(r[2] for r in res) / len(res) if all_censored else None
            info[d] = (sum(vals) / len(vals), all_censored, limit, len(res), sum(r[1] for r in res))
        for t in thresholds:
            days: dict[dt.date, str] = {}  # covered day -> 'interpolated'|'below'|'gap'|'indet'
            for d0, d1 in zip(dates, dates[1:], strict=False):
                n = (d1 - d0).days
                v0, c0, lim0 = info[d0][:3]
                v1, c1, lim1 = info[d1][:3]
                for k in range(n):
                    day = d0 + dt.timedelta(days=k)
                    if n > max_gap_days:
                        days[day] = "gap"
                    elif (c0 and lim0 > t) or (c1 and lim1 > t):
                        days[day] = "indet"
                    else:
                        value = v0 + (v1 - v0) * k / n
                        days[day] = "below" if value < t else "interpolated"
            windows = {"overall": (lambda _d: True)}
            for y in sorted({d.year for d in dates} | {d.year for d in days}):
                windows[str(y)] = lambda d, y=y: d.year == y
            for period, inside in windows.items():
                wdates = [d for d in dates if inside(d)]
                wdays = [d for d in days if inside(d)]
                cls = [days[d] for d in wdays]
                interp = cls.count("interpolated") + cls.count("below")
                below = cls.count("below")
                vals = [info[d][0] for d in wdates]
                out[(patient, float(t), period)] = {
                    "patient_key": patient,
                    "threshold_pg_ml": float(t),
                    "period": period,
                    "first_date": min(wdates) if wdates else None,
                    "last_date": max(wdates) if wdates else None,
                    "n_results": sum(info[d][3] for d in wdates),
                    "n_dates": len(wdates),
                    "n_censored": sum(info[d][4] for d in wdates),
                    "mean_e2_pg_ml": sum(vals) / len(vals) if vals else None,
                    "min_e2_pg_ml": min(vals) if vals else None,
                    "max_e2_pg_ml": max(vals) if vals else None,
                    "followup_days": len(wdays),
                    "interpolated_days": interp,
                    "below_days": below,
                    "gap_days": cls.count("gap"),
                    "indeterminate_days": cls.count("indet"),
                    "fraction_below": below / interp if interp else None,
                    "anastrozole_days": sum(1 for d in wdays if d in exposed[patient]),
                    "anastrozole_below_days": sum(
                        1 for d in wdays if d in exposed[patient] and days[d] == "below"
                    ),
                }
    return out


# --- plain-Python reference of marts.feat_bmd_trend ------------------------------------------


def bmd_reference(
    scans: Iterable[Scan], *, min_span_years: float = 1.0, lsc: dict | None = None
) -> dict[tuple, dict]:
    lsc = lsc or {"lumbar_spine": 0.030, "total_hip": 0.025, "femoral_neck": 0.035}
    groups: dict[tuple, list[Scan]] = defaultdict(list)
    for s in scans:
        if s.site in lsc:
            groups[(s.patient_key, s.site)].append(s)
    out = {}
    for key, rows in groups.items():
        # a row without BMD and sBMD (T-score only) is no scan: its manufacturer does not count
        makers = sorted(
            {
                s.manufacturer
                for s in rows
                if s.manufacturer is not None
                and (s.bmd_g_cm2 is not None or s.sbmd_mg_cm2 is not None)
            }
        )
        uses_sbmd = len(makers) > 1
        per_date: dict[dt.date, list[Scan]] = defaultdict(list)
        for s in rows:
            if not uses_sbmd:
                y = s.bmd_g_cm2
            else:
                y = None if s.sbmd_mg_cm2 is None else s.sbmd_mg_cm2 / 1000.0
            if y is not None:
                per_date[_as_date(s.scan_date)].append((y, s))
        dates = sorted(per_date)
        ys = [sum(v for v, _ in per_date[d]) / len(per_date[d]) for d in dates]
        n = len(dates)
        row = {
            "patient_key": key[0],
            "site": key[1],
            "n_scans": n,
            "first_scan_date": dates[0] if n else None,
            "last_scan_date": dates[-1] if n else None,
            "span_years": (dates[-1] - dates[0]).days / 365.25 if n else None,
            "first_bmd_g_cm2": ys[0] if n else None,
            "last_bmd_g_cm2": ys[-1] if n else None,
            "change_g_cm2": ys[-1] - ys[0] if n >= 2 else None,
            "lsc_g_cm2": lsc[key[1]],
            # beyond the LSC in decimal terms: the change rounded to 1e-9 g/cm² (far below
            # DXA's 0.001 resolution) so that 0.900 - 0.875 equals a 0.025 LSC
            "exceeds_lsc": round(abs(ys[-1] - ys[0]), 9) > lsc[key[1]] if n >= 2 else None,
            "slope_g_cm2_per_year": None,
            "slope_se_g_cm2_per_year": None,
            "slope_pct_per_year": None,
            "reason": None,
            "uses_sbmd": uses_sbmd,
            "sbmd_is_approximate": uses_sbmd
            and any(bool(s.sbmd_is_approximate) for d in dates for _, s in per_date[d]),
            "n_manufacturers": len(makers),
            "manufacturers": ",".join(makers) or None,
        }
        if n < 2:
            row["reason"] = "fewer_than_2_scans"
        elif row["span_years"] < min_span_years:
            row["reason"] = "span_below_minimum"
        else:
            # normal equations on raw sums (a formulation independent of the model's)
            xs = [(d - dates[0]).days / 365.25 for d in dates]
            sx, sy = math.fsum(xs), math.fsum(ys)
            sxx_raw = math.fsum(x * x for x in xs)
            sxy_raw = math.fsum(x * y for x, y in zip(xs, ys, strict=True))
            slope = (n * sxy_raw - sx * sy) / (n * sxx_raw - sx * sx)
            intercept = (sy - slope * sx) / n
            row["slope_g_cm2_per_year"] = slope
            row["slope_pct_per_year"] = 100.0 * slope / ys[0]
            if n > 2:
                residuals = [y - intercept - slope * x for x, y in zip(xs, ys, strict=True)]
                centred_xx = sxx_raw - sx * sx / n
                row["slope_se_g_cm2_per_year"] = math.sqrt(
                    math.fsum(r * r for r in residuals) / (n - 2) / centred_xx
                )
        out[key] = row
    return out


# --- comparison --------------------------------------------------------------------------------

APPROX_COLUMNS = {
    "mean_e2_pg_ml",
    "fraction_below",
    "span_years",
    "slope_g_cm2_per_year",
    "slope_se_g_cm2_per_year",
    "slope_pct_per_year",
    "change_g_cm2",
    "first_bmd_g_cm2",
    "last_bmd_g_cm2",
}


def assert_rows_equal(actual: dict, expected: dict, *, rel=1e-9, abs_tol=1e-12) -> None:
    """Same keys, and every column equal (doubles of means/fractions/fits with tolerance)."""
    assert sorted(actual) == sorted(expected), (sorted(actual), sorted(expected))
    for key, exp in expected.items():
        got = actual[key]
        assert set(got) == set(exp), (key, set(got) ^ set(exp))
        for col, e in exp.items():
            a = got[col]
            if col in APPROX_COLUMNS and e is not None and a is not None:
                assert math.isclose(a, e, rel_tol=rel, abs_tol=abs_tol), (key, col, a, e)
            else:
                assert a == e, (key, col, a, e)
