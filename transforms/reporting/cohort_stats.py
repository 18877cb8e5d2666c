"""Statistics of the cohort report (docs/cohort_report.md): pure functions on numbers.

- ``describe``: n, mean, SD (ddof 1) and a t-based 95 % CI of the mean.
- ``welch_p``: two-sided Welch t-test (unequal variances) p-value.
- ``ols_fit``: y = a + b·x by ordinary least squares (statsmodels), b with its 95 % CI.
- ``one_year_pairs``: baseline (first value) and the 1-year value of dated series.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None


def _clean(values: Iterable[float]) -> np.ndarray:
    a = np.asarray([v for v in values if v is not None], dtype=float)
    return a[np.isfinite(a)]


def describe(values: Iterable[float]) -> Summary:
    """n, mean, SD and the t-based 95 % CI (mean ± t(0.975, n−1)·SD/√n); NaN/None ignored."""
    a = _clean(values)
    n = int(a.size)
    if n == 0:
        return Summary(0, None, None, None, None)
    mean = float(a.mean())
    if n < 2:
        return Summary(n, mean, None, None, None)
    sd = float(a.std(ddof=1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half)


@dataclass(frozen=True)
class Quartiles:
    n: int
    q1: float | None
    median: float | None
    q3: float | None


def quartiles(values: Iterable[float]) -> Quartiles:
    """n, first quartile, median and third quartile (linear interpolation between order
    statistics, numpy's and pandas' default); NaN/None ignored."""
    a = _clean(values)
    if a.size == 0:
        return Quartiles(0, None, None, None)
    q1, median, q3 = (float(q) for q in np.percentile(a, [25, 50, 75]))
    return Quartiles(int(a.size), q1, median, q3)


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values (None: not a member, stays None):
    the k-th smallest of m becomes max over j ≤ k of min(1, (m − j + 1)·p₍ⱼ₎)."""
    members = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(members)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(members):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def welch_p(a: Iterable[float], b: Iterable[float]) -> float | None:
    """Two-sided Welch t-test p-value; None when a group has fewer than 2 values."""
    x, y = _clean(a), _clean(b)
    if x.size < 2 or y.size < 2:
        return None
    if x.var(ddof=1) == 0 and y.var(ddof=1) == 0:
        return None
    return float(stats.ttest_ind(x, y, equal_var=False).pvalue)


@dataclass(frozen=True)
class OlsFit:
    n: int
    estimate: float
    ci_low: float
    ci_high: float
    p: float
    intercept: float


def ols_fit(x: Sequence[float], y: Sequence[float]) -> OlsFit | None:
    """OLS of y on x with an intercept; None with fewer than 3 complete pairs or constant x."""
    from statsmodels.regression.linear_model import OLS  # statsmodels.api imports for seconds

    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    if xs.size < 3 or np.ptp(xs) == 0:
        return None
    res = OLS(ys, np.column_stack([np.ones_like(xs), xs])).fit()
    lo, hi = res.conf_int(alpha=1 - CONFIDENCE)[1]
    return OlsFit(
        n=int(xs.size),
        estimate=float(res.params[1]),
        ci_low=float(lo),
        ci_high=float(hi),
        p=float(res.pvalues[1]),
        intercept=float(res.params[0]),
    )


def one_year_pairs(
    series: pd.DataFrame,
    *,
    key: str,
    date_col: str,
    value_col: str,
    target_days: int = 365,
    window_days: int = 90,
) -> pd.DataFrame:
    """Per ``key``: the baseline (first dated value) and the 1-year value.

    The 1-year value is the value whose date is closest to baseline date + ``target_days``
    among the dates within ± ``window_days`` of it (and after the baseline date); on a tie
    the earlier date wins. Keys without such a date get NaN. Rows with a missing value are
    ignored. Returns one row per key: baseline_date, baseline, one_year_date, one_year.
    """
    cols = ["baseline_date", "baseline", "one_year_date", "one_year"]
    df = series[[key, date_col, value_col]].dropna()
    df = df.assign(_d=pd.to_datetime(df[date_col], cache=False), _v=df[value_col].astype(float))
    df = df.sort_values([key, "_d"], kind="stable")
    first = df.groupby(key, sort=True).head(1)[[key, "_d", "_v"]]
    first = first.rename(columns={"_d": "baseline_date", "_v": "baseline"})
    cand = df.merge(first[[key, "baseline_date"]], on=key)
    offset = (cand["_d"] - cand["baseline_date"]).dt.days
    cand = cand.assign(_dist=(offset - target_days).abs())
    cand = cand[(cand["_dist"] <= window_days) & (offset > 0)]
    best = cand.sort_values([key, "_dist", "_d"], kind="stable").groupby(key).head(1)
    best = best[[key, "_d", "_v"]].rename(columns={"_d": "one_year_date", "_v": "one_year"})
    out = first.merge(best, on=key, how="left")
    return out[[key, *cols]].reset_index(drop=True)


def first_values(series: pd.DataFrame, *, key: str, date_col: str, value_col: str) -> pd.Series:
    """Per ``key``: the value of its earliest date (the baseline), index = key."""
    df = series[[key, date_col, value_col]].dropna().sort_values([key, date_col])
    return df.groupby(key, sort=True)[value_col].first()
