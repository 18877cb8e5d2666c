"""Benchmark of the feature marts (marts.feat_e2_exposure + marts.feat_bmd_trend).

Generates synthetic core tables directly in DuckDB (hash-based pseudo-random numbers, not the
cohort generator): per patient ~10 E2 results (+5 testosterone rows the model must skip),
4 DXA visits × 5 site/side rows, and an anastrozole episode for about a third of patients.
Times the full build of both marts through warehouse/runner.py with peak RSS, and, side by
side, the pandas groupby-apply an analyst would write for the same definition (day by day per
patient) on a sample of patients, extrapolated linearly to the cohort. The pandas output is
also checked against the mart on that sample.

    .venv/bin/python bench/bench_features.py --patients 100000 [--pandas-sample 2000] [--write]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import platform
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms import feature_config  # noqa: E402
from warehouse import runner  # noqa: E402

DOC = ROOT / "docs" / "benchmarks_features.md"
E2_RESULTS_PER_PATIENT = 10
OTHER_RESULTS_PER_PATIENT = 5
SCAN_VISITS = 4


def bench_key(p: int) -> str:
    """Patient p's key: the shape of a real pseudonymous key (``pk_`` + 20 hex characters),
    long enough that DuckDB stores it out of line as it does real keys."""
    return "pk_" + hashlib.md5(str(p).encode()).hexdigest()[:20]  # noqa: S324 - not security


GENERATE = [
    "CREATE SCHEMA IF NOT EXISTS core",
    "CREATE SCHEMA IF NOT EXISTS marts",
    # results: r < 10 are estradiol, the rest testosterone on the same dates
    """
    CREATE OR REPLACE TABLE core.fct_lab_result AS
    WITH base AS (
        SELECT
            p, r,
            'pk_' || left(md5(CAST(p AS VARCHAR)), 20) AS patient_key,
            DATE '2015-01-01' + CAST(hash(p, 0) % 2500 AS INTEGER)
                + CAST((r % $n_e2) * 150 + hash(p, r % $n_e2, 1) % 100 AS INTEGER) AS d,
            (hash(p, r, 2) % 1000000) / 1e6 AS u1,
            (hash(p, r, 3) % 1000000) / 1e6 AS u2,
            CAST(hash(p, r, 4) % 24 AS INTEGER) AS hh
        FROM range($n) AS t(p), range($n_e2 + $n_other) AS s(r)
    )
    SELECT
        patient_key,
        'R' || p || '-' || r AS result_id,
        'BENCH' AS source_system,
        CASE WHEN r < $n_e2 THEN 'E2' ELSE 'TT' END AS source_code,
        CASE WHEN r < $n_e2 THEN ['2243-4', '14715-7', '72873-3', '83096-8'][CAST(1 + hash(p, r, 5) % 4 AS BIGINT)]
             ELSE '2986-8' END AS loinc_code,
        CASE WHEN r < $n_e2 THEN 'estradiol' ELSE 'testosterone_total' END AS analyte,
        true AS is_mapped,
        CAST(d AS TIMESTAMP) + to_hours(hh) AS collected_at,
        CASE WHEN u2 < 0.1 THEN [5.0, 10.0, 24.0][CAST(1 + hash(p, r, 6) % 3 AS BIGINT)]
             ELSE round(4 + 46 * u1, 2) END AS value,
        CASE WHEN r < $n_e2 THEN 'pg/mL' ELSE 'ng/dL' END AS unit,
        CASE WHEN u2 < 0.1 THEN '<' END AS comparator,
        CAST(value AS VARCHAR) AS original_value,
        unit AS original_unit,
        CASE WHEN u2 < 0.1 THEN value END AS detection_limit,
        CASE WHEN u1 < 0.5 THEN 'LC-MS/MS' ELSE 'immunoassay' END AS method,
        CASE WHEN u2 > 0.97 THEN 'C' ELSE 'F' END AS result_status,
        'bench' AS file_sha256,
        'line ' || r AS position
    FROM base
    """,
    """
    CREATE OR REPLACE TABLE core.fct_dexa_scan AS
    WITH visits AS (
        SELECT
            p, v,
            'pk_' || left(md5(CAST(p AS VARCHAR)), 20) AS patient_key,
            DATE '2015-06-01' + CAST(hash(p, 7) % 2500 + v * 365 + hash(p, v, 8) % 60 AS INTEGER)
                AS scan_date,
            CASE WHEN hash(p, 9) % 10 = 0 AND v >= 2 THEN 'GE Lunar' ELSE 'Hologic' END
                AS manufacturer,
            0.8 + (hash(p, 10) % 400) / 1000 - v * (hash(p, 11) % 30) / 1000 AS base_bmd
        FROM range($n) AS t(p), range($n_visits) AS s(v)
    ),
    regions AS (
        SELECT * FROM (VALUES
            ('lumbar_spine', NULL, 0.15), ('total_hip', 'left', 0.0), ('total_hip', 'right', 0.01),
            ('femoral_neck', 'left', -0.1), ('femoral_neck', 'right', -0.09)
        ) AS r(site, side, offset_g_cm2)
    )
    SELECT
        patient_key,
        'S' || p || '-' || v AS scan_id,
        scan_date,
        site,
        side,
        site AS region,
        base_bmd + offset_g_cm2 + (hash(p, v, site, side) % 100) / 10000 AS bmd_g_cm2,
        CASE WHEN site = 'lumbar_spine' THEN bmd_g_cm2 - 0.01 END AS bmd_l2_l4_g_cm2,
        1000 * (1.01 * bmd_g_cm2 + 0.01) AS sbmd_mg_cm2,
        site = 'lumbar_spine' AND manufacturer = 'GE Lunar' AS sbmd_is_approximate,
        NULL::DOUBLE AS t_score,
        NULL::DOUBLE AS z_score,
        manufacturer,
        'model' AS model,
        'serial' AS serial,
        'bench' AS file_sha256,
        'line ' || v AS position
    FROM visits CROSS JOIN regions
    """,
    """
    CREATE OR REPLACE TABLE core.medication_exposure AS
    SELECT
        'pk_' || left(md5(CAST(p AS VARCHAR)), 20) AS patient_key,
        'anastrozole' AS ingredient,
        DATE '2015-06-01' + CAST(hash(p, 12) % 3000 AS INTEGER) AS episode_start,
        episode_start + CAST(30 + hash(p, 13) % 400 AS INTEGER) AS episode_end,
        CAST(episode_end - episode_start + 1 AS INTEGER) AS days_exposed,
        CAST(episode_end - episode_start + 1 AS DOUBLE) AS cumulative_dose_mg,
        1 AS n_records
    FROM range($n) AS t(p)
    WHERE hash(p, 14) % 3 = 0
    """,
]


class PeakRss:
    """Samples this process's RSS every 20 ms while active."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self):
        self.peak = self.proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def generate(con, n: int) -> float:
    t0 = time.perf_counter()
    args = {"n": n, "n_e2": E2_RESULTS_PER_PATIENT, "n_other": OTHER_RESULTS_PER_PATIENT}
    for stmt in GENERATE:
        used = runner.bind(stmt, {**args, "n_visits": SCAN_VISITS})
        con.execute(stmt, used)
    return time.perf_counter() - t0


# --- the analyst's pandas version (day by day per patient) ------------------------------------


def pandas_features(labs: pd.DataFrame, scans: pd.DataFrame, episodes: pd.DataFrame, p: dict):
    """What an analyst would write: per-patient groupby-apply, every interval day by day."""
    labs = labs[
        labs.loinc_code.isin(p["e2_loinc_codes"])
        & labs.result_status.isin(p["e2_result_statuses"])
        & labs.value.notna()
    ].copy()
    labs["date"] = labs.collected_at.dt.normalize()
    labs["censored"] = labs.comparator.isin(["<", "<="])
    labs["v"] = np.where(labs.censored, labs.value * p["censored_fraction"], labs.value)
    daily = (
        labs.groupby(["patient_key", "date"])
        .agg(
            v=("v", "mean"),
            all_censored=("censored", "all"),
            limit=("value", "mean"),
            n_results=("v", "size"),
            n_censored=("censored", "sum"),
        )
        .reset_index()
    )
    exposed = {
        key: np.concatenate(
            [
                pd.date_range(s, e).values
                for s, e in zip(g.episode_start, g.episode_end, strict=True)
            ]
        )
        for key, g in episodes[episodes.ingredient == p["anastrozole_ingredient"]].groupby(
            "patient_key"
        )
    }

    def per_patient(g: pd.DataFrame) -> pd.DataFrame:
        key = g.name
        g = g.sort_values("date")
        dates = g.date.to_numpy()
        v = g.v.to_numpy()
        limit = np.where(g.all_censored, g.limit, np.nan)
        # every covered day of every interval, once
        pieces = []
        for i in range(len(dates) - 1):
            n = int((dates[i + 1] - dates[i]) / np.timedelta64(1, "D"))
            k = np.arange(n)
            pieces.append(
                pd.DataFrame(
                    {
                        "day": dates[i] + k.astype("timedelta64[D]"),
                        "value": v[i] + (v[i + 1] - v[i]) * k / n,
                        "gap": n > p["max_gap_days"],
                        "limit": np.nanmax([limit[i], limit[i + 1], -np.inf]),
                    }
                )
            )
        days = (
            pd.concat(pieces) if pieces else pd.DataFrame(columns=["day", "value", "gap", "limit"])
        )
        days["day"] = pd.to_datetime(days.day)
        days["year"] = days.day.dt.year.astype(str)
        days["anastrozole"] = days.day.isin(exposed.get(key, []))
        g = g.assign(year=g.date.dt.year.astype(str))
        out = []
        for t in p["thresholds_pg_ml"]:
            d = days.assign(
                indeterminate=~days.gap & (days.limit > t),
            )
            d["interpolated"] = ~d.gap & ~d.indeterminate
            d["below"] = d.interpolated & (d.value < t)
            d["anastrozole_below"] = d.anastrozole & d.below
            counts = d.groupby("year")[
                [
                    "interpolated",
                    "below",
                    "gap",
                    "indeterminate",
                    "anastrozole",
                    "anastrozole_below",
                ]
            ].sum()
            counts.loc["overall"] = counts.sum()
            stats = g.groupby("year").agg(
                first_date=("date", "min"),
                last_date=("date", "max"),
                n_results=("n_results", "sum"),
                n_dates=("date", "size"),
                n_censored=("n_censored", "sum"),
                mean_e2_pg_ml=("v", "mean"),
                min_e2_pg_ml=("v", "min"),
                max_e2_pg_ml=("v", "max"),
            )
            stats.loc["overall"] = [
                g.date.min(),
                g.date.max(),
                g.n_results.sum(),
                len(g),
                g.n_censored.sum(),
                g.v.mean(),
                g.v.min(),
                g.v.max(),
            ]
            res = stats.join(counts, how="outer").fillna(
                {c: 0 for c in counts.columns} | {"n_results": 0, "n_dates": 0, "n_censored": 0}
            )
            res["followup_days"] = res.interpolated + res.gap + res.indeterminate
            res["fraction_below"] = res.below / res.interpolated.where(res.interpolated > 0)
            res["threshold_pg_ml"] = t
            out.append(res)
        res = pd.concat(out).rename_axis("period").reset_index()
        return res.rename(
            columns={
                "interpolated": "interpolated_days",
                "below": "below_days",
                "gap": "gap_days",
                "indeterminate": "indeterminate_days",
                "anastrozole": "anastrozole_days",
                "anastrozole_below": "anastrozole_below_days",
            }
        )

    e2 = daily.groupby("patient_key").apply(per_patient, include_groups=False)

    sites = dict(zip(p["bmd_sites"], p["lsc_g_cm2"], strict=True))
    scans = scans[scans.site.isin(sites)]

    def per_site(g: pd.DataFrame) -> pd.Series:
        uses_sbmd = g.manufacturer.nunique() > 1
        y = g.sbmd_mg_cm2 / 1000 if uses_sbmd else g.bmd_g_cm2
        by_date = y.groupby(g.scan_date).mean().sort_index()
        x = (by_date.index - by_date.index[0]).days.to_numpy() / 365.25
        n = len(by_date)
        slope = np.polyfit(x, by_date.to_numpy(), 1)[0] if n >= 2 else np.nan
        return pd.Series({"n_scans": n, "slope_g_cm2_per_year": slope, "uses_sbmd": uses_sbmd})

    bmd = scans.groupby(["patient_key", "site"]).apply(per_site, include_groups=False)
    return e2.reset_index(level=0), bmd.reset_index()


def check_pandas_against_mart(con, e2_pd: pd.DataFrame, keys: list[str]) -> None:
    cols = ["patient_key", "threshold_pg_ml", "period", "below_days", "interpolated_days"]
    cols += ["gap_days", "indeterminate_days", "anastrozole_days", "anastrozole_below_days"]
    mart = con.execute(
        "SELECT * FROM marts.feat_e2_exposure WHERE list_contains($keys, patient_key)",
        {"keys": keys},
    ).df()
    merged = mart[cols].merge(e2_pd[cols], on=cols[:3], suffixes=("", "_pd"), how="outer")
    assert len(merged) == len(mart) == len(e2_pd), "pandas and mart rows differ"
    for c in cols[3:]:
        assert (merged[c] == merged[c + "_pd"]).all(), f"pandas and mart differ on {c}"


# --- run -----------------------------------------------------------------------------------------


def build_both(con, params: dict) -> dict:
    """One full build of both marts: wall time of each, CPU time, peak RSS, row counts."""
    cpu0 = sum(psutil.Process().cpu_times()[:2])
    with PeakRss() as mem:
        t0 = time.perf_counter()
        e2_rows = runner.materialize(con, "marts.feat_e2_exposure", params)
        t1 = time.perf_counter()
        bmd_rows = runner.materialize(con, "marts.feat_bmd_trend", params)
        t2 = time.perf_counter()
    return {
        "e2_s": t1 - t0,
        "bmd_s": t2 - t1,
        "sql_s": t2 - t0,
        "cpu_s": sum(psutil.Process().cpu_times()[:2]) - cpu0,
        "load_avg": psutil.getloadavg()[0],
        "e2_rows": e2_rows,
        "bmd_rows": bmd_rows,
        "peak_rss": mem.peak,
    }


def run(n: int, sample: int, db_dir: Path, repeat: int = 1) -> dict:
    con = duckdb.connect(str(db_dir / "bench.duckdb"))
    gen_s = generate(con, n)
    counts = con.execute(
        "SELECT (SELECT count(*) FROM core.fct_lab_result), (SELECT count(*) FROM core.fct_dexa_scan),"
        " (SELECT count(*) FROM core.medication_exposure)"
    ).fetchone()
    params = feature_config.model_params()
    # the same build `repeat` times on the same data: the row reports the fastest, and the
    # range shows how much a shared machine moves a single run; peak memory is the highest of
    # all builds, its growth counted from before the first (later builds reuse what the
    # allocator kept)
    base_rss = psutil.Process().memory_info().rss
    builds = [build_both(con, params) for _ in range(repeat)]
    best = min(builds, key=lambda b: b["sql_s"])
    peak_rss = max(b["peak_rss"] for b in builds)
    e2_rows, bmd_rows = best["e2_rows"], best["bmd_rows"]
    assert all((b["e2_rows"], b["bmd_rows"]) == (e2_rows, bmd_rows) for b in builds)
    refresh_s = refresh_one_percent(con, n, params, (e2_rows, bmd_rows))

    keys = [bench_key(i) for i in range(0, n, max(1, n // sample))][:sample]
    labs, scans, episodes = (
        con.execute(
            "SELECT * FROM " + table + " WHERE list_contains($keys, patient_key)",  # noqa: S608
            {"keys": keys},
        ).df()
        for table in ("core.fct_lab_result", "core.fct_dexa_scan", "core.medication_exposure")
    )
    t3 = time.perf_counter()
    e2_pd, _bmd_pd = pandas_features(labs, scans, episodes, params)
    pandas_s = time.perf_counter() - t3
    check_pandas_against_mart(con, e2_pd, keys)
    con.close()
    pandas_full_s = pandas_s * n / len(keys)
    return {
        "patients": n,
        "lab_rows": counts[0],
        "scan_rows": counts[1],
        "episodes": counts[2],
        "generate_s": gen_s,
        **best,
        "peak_rss_mb": peak_rss / 2**20,
        "rss_growth_mb": (peak_rss - base_rss) / 2**20,
        "builds": len(builds),
        "slowest_s": max(b["sql_s"] for b in builds),
        "pandas_sample": len(keys),
        "pandas_sample_s": pandas_s,
        "pandas_est_s": pandas_full_s,
        "speedup": pandas_full_s / best["sql_s"],
        "refresh_s": refresh_s,
    }


def refresh_one_percent(con, n: int, params: dict, full_rows: tuple[int, int]) -> float:
    """Wall time of the incremental refresh a run that touched 1 % of the patients makes
    (every 100th patient): both marts, rows deleted and recomputed (the table sizes must not
    change: same inputs)."""
    touched = [bench_key(i) for i in range(0, n, 100)]
    t0 = time.perf_counter()
    rows = tuple(
        runner.materialize(con, name, params, patient_keys=touched)
        for name in ("marts.feat_e2_exposure", "marts.feat_bmd_trend")
    )
    elapsed = time.perf_counter() - t0
    assert rows == full_rows, (rows, full_rows)
    return elapsed


def table_row(r: dict) -> str:
    return (
        f"| {r['patients']:,} | {r['lab_rows']:,} / {r['scan_rows']:,} | {r['e2_s']:.2f} "
        f"| {r['bmd_s']:.2f} | **{r['sql_s']:.2f}** | {r['builds']}: {r['sql_s']:.1f}–{r['slowest_s']:.1f} "
        f"| {r['cpu_s']:.1f} | {r['peak_rss_mb']:,.0f} "
        f"(+{r['rss_growth_mb']:,.0f}) | {r['e2_rows']:,} / {r['bmd_rows']:,} "
        f"| {r['pandas_sample']:,} in {r['pandas_sample_s']:.1f} s | {r['pandas_est_s']:,.0f} "
        f"| **{r['speedup']:,.0f}×** | {r['refresh_s']:.2f} | {r['load_avg']:.1f} "
        f"| {dt.date.today().isoformat()} |"
    )


def write_doc(row: str, patients: int, doc: Path = DOC) -> None:
    """Replace (or add) the row of this cohort size in the results table of the doc: the
    table that ends at the marker; rows of the same size in other tables (earlier machines)
    stay as they are."""
    text = doc.read_text(encoding="utf-8")
    marker = "<!-- results: bench_features.py --write adds rows above this line -->"
    before, marker_and_after = text.split(marker, 1)
    table_at = before.rfind("\n| patients |") + 1
    head, table = before[:table_at], before[table_at:]
    pattern = re.compile(r"^\| " + re.escape(f"{patients:,}") + r" \|.*$", re.MULTILINE)
    if pattern.search(table):
        table = pattern.sub(lambda _m: row, table)
    else:
        table += row + "\n"
    doc.write_text(head + table + marker + marker_and_after, encoding="utf-8")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--pandas-sample", type=int, default=2_000)
    ap.add_argument(
        "--repeat",
        type=positive_int,
        default=1,
        help="full builds on the same data; the fastest is reported",
    )
    ap.add_argument("--write", action="store_true", help="update docs/benchmarks_features.md")
    args = ap.parse_args(argv)
    sample = min(args.patients, args.pandas_sample)
    with tempfile.TemporaryDirectory(prefix="bench_features_") as d:
        r = run(args.patients, sample, Path(d), args.repeat)
    for k, v in r.items():
        print(f"{k:>18}: {v:,.2f}" if isinstance(v, float) else f"{k:>18}: {v:,}")
    print(f"machine: {platform.processor() or platform.machine()}, {psutil.cpu_count()} cpus")
    row = table_row(r)
    print(row)
    if args.write:
        write_doc(row, args.patients)


if __name__ == "__main__":
    main()
