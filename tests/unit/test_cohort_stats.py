"""Cohort report statistics against hand-worked values and plain formulas."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from transforms.reporting.cohort_figures import binned_counts
from transforms.reporting.cohort_stats import (
    describe,
    first_values,
    ols_fit,
    one_year_pairs,
    welch_p,
)

D = dt.date


def test_describe_by_hand():
    # 2, 4, 6: mean 4, SD 2, CI 4 ± t(0.975, 2) · 2 / √3 (t = 4.302653)
    s = describe([2.0, 4.0, None, 6.0, float("nan")])
    assert (s.n, s.mean, s.sd) == (3, 4.0, 2.0)
    half = 4.302652729911275 * 2 / math.sqrt(3)
    assert s.ci_low == pytest.approx(4 - half, abs=1e-9)
    assert s.ci_high == pytest.approx(4 + half, abs=1e-9)


def test_describe_small_inputs():
    assert describe([]).n == 0 and describe([]).mean is None
    one = describe([5.0])
    assert (one.n, one.mean, one.sd, one.ci_low) == (1, 5.0, None, None)


def test_welch_matches_the_formula():
    a = [1.0, 2.0, 3.0, 4.0, 5.5]
    b = [2.0, 4.5, 6.0, 7.0, 9.0, 11.0]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert welch_p(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    assert welch_p([1.0], b) is None
    assert welch_p([1.0, 1.0], [2.0, 2.0]) is None


def test_ols_matches_the_normal_equations():
    x = np.array([0.0, 0.1, 0.4, 0.5, 0.9, 1.0])
    y = np.array([1.0, 0.7, 0.1, -0.2, -1.1, -1.0])
    design = np.column_stack([np.ones_like(x), x])
    xtx_inv = np.linalg.inv(design.T @ design)
    a, b = xtx_inv @ design.T @ y
    resid = y - design @ np.array([a, b])
    sigma2 = resid @ resid / (x.size - 2)
    se_b = math.sqrt(sigma2 * xtx_inv[1, 1])
    t975 = stats.t.ppf(0.975, x.size - 2)
    fit = ols_fit(x, y)
    assert fit.n == 6
    assert (fit.intercept, fit.estimate) == pytest.approx((a, b), rel=1e-10)
    assert (fit.ci_low, fit.ci_high) == pytest.approx((b - t975 * se_b, b + t975 * se_b), rel=1e-9)
    assert fit.p == pytest.approx(2 * stats.t.sf(abs(b / se_b), x.size - 2), rel=1e-6)


def test_ols_needs_three_points_and_varying_x():
    assert ols_fit([0.1, 0.2], [1.0, 2.0]) is None
    assert ols_fit([0.5, 0.5, 0.5], [1.0, 2.0, 3.0]) is None
    assert ols_fit([0.1, np.nan, 0.2, 0.3], [1.0, 5.0, 2.0, np.nan]) is None


def series(rows):
    return pd.DataFrame(rows, columns=["k", "d", "v"])


def pairs(rows, **kw):
    out = one_year_pairs(series(rows), key="k", date_col="d", value_col="v", **kw)
    return {r.k: (r.baseline, r.one_year) for r in out.itertuples()}


def test_one_year_value_is_the_closest_to_day_365():
    base = D(2020, 1, 1)
    rows = [
        ("a", base, 10.0),
        ("a", base + dt.timedelta(days=120), 11.0),  # far from day 365
        ("a", base + dt.timedelta(days=350), 12.0),  # 15 days from target
        ("a", base + dt.timedelta(days=370), 13.0),  # 5 days from target: chosen
        ("a", base + dt.timedelta(days=730), 14.0),
    ]
    assert pairs(rows) == {"a": (10.0, 13.0)}


def test_one_year_window_edges_and_ties():
    b = D(2021, 3, 1)
    day = lambda n: b + dt.timedelta(days=n)  # noqa: E731
    rows = [
        ("edge_in", b, 1.0), ("edge_in", day(455), 2.0),  # exactly +90: in
        ("edge_out", b, 1.0), ("edge_out", day(456), 2.0),  # +91: out
        ("low_in", b, 1.0), ("low_in", day(275), 3.0),  # exactly −90: in
        ("tie", b, 1.0), ("tie", day(355), 4.0), ("tie", day(375), 5.0),  # tie → earlier
        ("only", b, 7.0),
    ]  # fmt: skip
    got = pairs(rows)
    assert got["edge_in"] == (1.0, 2.0)
    assert got["edge_out"][0] == 1.0 and math.isnan(got["edge_out"][1])
    assert got["low_in"] == (1.0, 3.0)
    assert got["tie"] == (1.0, 4.0)
    assert got["only"][0] == 7.0 and math.isnan(got["only"][1])


def test_one_year_rule_is_configurable_and_ignores_missing_values():
    b = D(2020, 1, 1)
    rows = [
        ("a", b - dt.timedelta(days=10), None),  # missing value: not the baseline
        ("a", b, 2.0),
        ("a", b + dt.timedelta(days=180), 3.0),
        ("a", b + dt.timedelta(days=365), 4.0),
    ]
    assert pairs(rows, target_days=182, window_days=30) == {"a": (2.0, 3.0)}
    assert pairs(rows) == {"a": (2.0, 4.0)}


def test_first_values_takes_the_earliest_date():
    rows = [("a", D(2021, 5, 1), 3.0), ("a", D(2020, 5, 1), 1.0), ("b", D(2022, 1, 1), 9.0)]
    got = first_values(series(rows), key="k", date_col="d", value_col="v")
    assert got.to_dict() == {"a": 1.0, "b": 9.0}


def test_histogram_bins_with_few_patients_are_hidden():
    values = np.array([0.05] * 12 + [0.5] * 3 + [1.0] * 11 + [np.nan])
    counts, hidden = binned_counts(values, np.linspace(0, 1, 6), 11)
    assert counts.tolist() == [12, 0, 3, 0, 11]  # 1.0 falls in the last bin
    assert hidden.tolist() == [False, False, True, False, False]


def test_holm_matches_statsmodels_and_keeps_non_members_out():
    from statsmodels.stats.multitest import multipletests

    from transforms.reporting.cohort_stats import holm

    ps = [0.01, 0.04, 0.03, 0.005, 0.2, 0.6]
    expected = multipletests(ps, method="holm")[1]
    assert holm(ps) == pytest.approx(list(expected), abs=1e-15)
    # by hand: sorted 0.005 0.01 0.03 0.04 0.2 0.6 → ×6 ×5 ×4 ×3 ×2 ×1, running max, cap 1
    assert holm(ps) == pytest.approx([0.05, 0.12, 0.12, 0.03, 0.4, 0.6])
    # None is no test: the family is the other three
    # (0.01 ×3, 0.03 ×2, 0.04 ×1 → 0.03, 0.06, max(0.06, 0.04))
    assert holm([0.01, None, 0.04, 0.03]) == pytest.approx([0.03, None, 0.06, 0.06])
    assert holm([]) == [] and holm([None]) == [None]
