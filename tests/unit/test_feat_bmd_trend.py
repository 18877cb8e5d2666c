"""marts.feat_bmd_trend: hand-worked OLS and edge cases, numpy/scipy and a plain reference.

x = (scan_date - first_scan_date) days / 365.25; slope = Sxy / Sxx;
SE = sqrt(SSE / (n - 2) / Sxx); LSC defaults spine 0.030, total hip 0.025, neck 0.035.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from feature_reference import (
    Scan,
    assert_rows_equal,
    bmd_reference,
    bmd_rows,
    default_params,
    insert,
    new_warehouse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from warehouse import runner

BMD = "marts.feat_bmd_trend"
D = dt.date


def run(scans, **overrides):
    con = new_warehouse()
    insert(con, scans)
    runner.materialize(con, BMD, default_params(**overrides))
    return bmd_rows(con)


def test_three_scans_ols_by_hand():
    # 2021-01-01, 2022-01-01, 2023-01-01: 0, 365, 730 days ⇒ x = (0, 1, 2) × 365/365.25.
    # In units u = 0, 1, 2 with y = 1.000, 0.990, 0.970: ū = 1, ȳ = 0.98667, Suu = 2,
    # Suy = (-1)(0.01333) + (1)(-0.01667) = -0.03 ⇒ slope_u = -0.015, intercept 1.001667;
    # residuals -0.001667, +0.003333, -0.001667 ⇒ SSE = (1 + 4 + 1)/600² = 1/60000;
    # SE_u = sqrt(SSE / 1 / 2) = sqrt(1/120000) = 0.00288675.
    # x = u × 365/365.25 scales both by 365.25/365.
    rows = run(
        [
            Scan("p", "2021-01-01", "lumbar_spine", 1.000),
            Scan("p", "2022-01-01", "lumbar_spine", 0.990),
            Scan("p", "2023-01-01", "lumbar_spine", 0.970),
        ]
    )
    r = rows[("p", "lumbar_spine")]
    scale = 365.25 / 365
    assert r["slope_g_cm2_per_year"] == pytest.approx(-0.015 * scale, rel=1e-12)
    assert r["slope_se_g_cm2_per_year"] == pytest.approx(math.sqrt(1 / 120000) * scale, rel=1e-9)
    assert r["slope_pct_per_year"] == pytest.approx(-1.5 * scale, rel=1e-12)
    assert r["n_scans"] == 3 and r["reason"] is None
    assert r["span_years"] == pytest.approx(730 / 365.25)
    assert (r["first_scan_date"], r["last_scan_date"]) == (D(2021, 1, 1), D(2023, 1, 1))
    assert r["change_g_cm2"] == pytest.approx(-0.030)
    assert (r["uses_sbmd"], r["n_manufacturers"], r["manufacturers"]) == (False, 1, "Hologic")


@pytest.mark.parametrize(
    ("values", "step_days"),
    [
        ([0.950, 0.940, 0.930], 399),
        ([0.950, 0.940, 0.930, 0.920], 183),
        ([0.874, 0.871, 0.868, 0.865, 0.862], 400),
    ],
)
def test_points_on_a_line_have_a_standard_error_of_zero(values, step_days):
    # equal steps in date and in BMD: the points lie exactly on a line, every residual is 0,
    # so SSE = 0 and SE = 0. Syy - Sxy²/Sxx from one-pass sums cancels to noise instead
    # (1e-10 to 2e-9 g/cm²/year for these, a different value from build to build).
    scans = [
        Scan("p", (D(2019, 1, 7) + dt.timedelta(days=step_days * k)).isoformat(), "lumbar_spine", y)
        for k, y in enumerate(values)
    ]
    r = run(scans)[("p", "lumbar_spine")]
    step_bmd = values[1] - values[0]
    assert r["slope_g_cm2_per_year"] == pytest.approx(step_bmd * 365.25 / step_days, rel=1e-9)
    assert r["slope_se_g_cm2_per_year"] == pytest.approx(0.0, abs=1e-15)


def test_two_scans_slope_without_se():
    # 2021-01-01 → 2022-01-02 = 366 days = 1.00205 years ≥ 1: slope = -0.010 / (366/365.25)
    rows = run(
        [
            Scan("p", "2021-01-01", "femoral_neck", 0.800, side="left"),
            Scan("p", "2022-01-02", "femoral_neck", 0.790, side="left"),
        ]
    )
    r = rows[("p", "femoral_neck")]
    assert r["slope_g_cm2_per_year"] == pytest.approx(-0.010 * 365.25 / 366, rel=1e-9)
    assert r["slope_se_g_cm2_per_year"] is None
    assert r["reason"] is None
    assert r["exceeds_lsc"] is False  # |−0.010| ≤ 0.035


def test_one_scan_has_a_reason_and_no_change():
    r = run([Scan("p", "2021-06-01", "total_hip", 0.95, side="right")])[("p", "total_hip")]
    assert r["n_scans"] == 1 and r["reason"] == "fewer_than_2_scans"
    assert r["slope_g_cm2_per_year"] is None and r["slope_se_g_cm2_per_year"] is None
    assert r["change_g_cm2"] is None and r["exceeds_lsc"] is None
    assert r["first_bmd_g_cm2"] == r["last_bmd_g_cm2"] == 0.95
    assert r["span_years"] == 0.0


def test_span_below_minimum():
    # 365 days = 0.99932 years < 1.0 (one calendar year apart is not enough); three scans.
    # change = 0.960 - 1.000 = -0.040, |change| > 0.030 ⇒ exceeds_lsc even without a slope.
    rows = run(
        [
            Scan("p", "2021-03-01", "lumbar_spine", 1.000),
            Scan("p", "2021-09-01", "lumbar_spine", 0.980),
            Scan("p", "2022-03-01", "lumbar_spine", 0.960),
        ]
    )
    r = rows[("p", "lumbar_spine")]
    assert r["reason"] == "span_below_minimum"
    assert r["slope_g_cm2_per_year"] is None and r["slope_pct_per_year"] is None
    assert r["slope_se_g_cm2_per_year"] is None
    assert r["change_g_cm2"] == pytest.approx(-0.040) and r["exceeds_lsc"] is True
    # a smaller minimum makes the same scans eligible
    rows = run(
        [
            Scan("p", "2021-03-01", "lumbar_spine", 1.0),
            Scan("p", "2022-03-01", "lumbar_spine", 0.96),
        ],
        min_span_years=0.5,
    )
    assert rows[("p", "lumbar_spine")]["reason"] is None


def test_hips_use_the_mean_of_the_sides_measured():
    # total hip: 2021-01-01 left 0.900, right 0.940 ⇒ 0.920; 2022-06-01 left only 0.910.
    # change = -0.010 ≤ 0.025; slope = -0.010 / (516 / 365.25) (2021-01-01 → 2022-06-01 = 516 d).
    rows = run(
        [
            Scan("p", "2021-01-01", "total_hip", 0.900, side="left"),
            Scan("p", "2021-01-01", "total_hip", 0.940, side="right"),
            Scan("p", "2022-06-01", "total_hip", 0.910, side="left"),
            Scan("p", "2021-01-01", "total_body", 1.2),  # other sites are ignored
        ]
    )
    assert set(rows) == {("p", "total_hip")}
    r = rows[("p", "total_hip")]
    assert r["n_scans"] == 2
    assert r["first_bmd_g_cm2"] == pytest.approx(0.920)
    assert r["change_g_cm2"] == pytest.approx(-0.010) and r["exceeds_lsc"] is False
    assert r["slope_g_cm2_per_year"] == pytest.approx(-0.010 * 365.25 / 516)


def test_manufacturer_change_uses_sbmd_for_every_scan():
    # Spine (Genant, g/cm²): Hologic L2-L4 1.000 ⇒ 1.0550 × (1.000 - 0.972) + 1.0436 = 1.07314;
    # Lunar 1.100 ⇒ 0.9683 × (1.100 - 1.100) + 1.0436 = 1.0436 (flagged approximate: L1-L4).
    # Measured BMD would rise by 0.100; sBMD falls by 0.02954 (≤ 0.030: not beyond LSC).
    # Total hip (Hui/Lu): Hologic 0.900 ⇒ 1000 × (0.006 + 1.008 × 0.900) = 913.2 mg/cm²;
    # Lunar 0.950 ⇒ 1000 × (-0.031 + 0.979 × 0.950) = 899.05 ⇒ change -0.01415.
    rows = run(
        [
            Scan("p", "2020-01-01", "lumbar_spine", 1.000, "Hologic", None, 1073.14, False),
            Scan("p", "2021-07-01", "lumbar_spine", 1.100, "GE Lunar", None, 1043.6, True),
            Scan("p", "2020-01-01", "total_hip", 0.900, "Hologic", "left", 913.2),
            Scan("p", "2021-07-01", "total_hip", 0.950, "GE Lunar", "left", 899.05),
            Scan("p", "2020-01-01", "femoral_neck", 0.800, "Hologic", "left", 888.6),
            Scan("p", "2021-07-01", "femoral_neck", 0.810, "Hologic", "left", 899.47),
        ]
    )
    spine, hip, neck = (rows[("p", s)] for s in ("lumbar_spine", "total_hip", "femoral_neck"))
    assert spine["uses_sbmd"] is True and spine["sbmd_is_approximate"] is True
    assert (spine["n_manufacturers"], spine["manufacturers"]) == (2, "GE Lunar,Hologic")
    assert spine["first_bmd_g_cm2"] == pytest.approx(1.07314)
    assert spine["change_g_cm2"] == pytest.approx(-0.02954) and spine["exceeds_lsc"] is False
    assert hip["uses_sbmd"] is True and hip["sbmd_is_approximate"] is False
    assert hip["change_g_cm2"] == pytest.approx(-0.01415)
    # the neck stayed on one manufacturer: measured BMD, sBMD ignored
    assert neck["uses_sbmd"] is False and neck["change_g_cm2"] == pytest.approx(0.010)


def test_three_manufacturers_and_a_date_without_sbmd():
    # Three manufacturers, two of them on the sides of one date: the list is every distinct
    # one, sorted. The 2021 date has no sBMD, so the sBMD fit (used for every scan) has the
    # two other dates (sides' mean 900 mg/cm², then 950): change 0.050 g/cm² over 731 days.
    rows = run(
        [
            Scan("p", "2020-01-01", "total_hip", 1.000, "GE Lunar", "left", 900.0),
            Scan("p", "2020-01-01", "total_hip", 1.010, "Norland", "right", 900.0),
            Scan("p", "2021-01-01", "total_hip", 0.990, "Hologic", "left", None),
            Scan("p", "2022-01-01", "total_hip", 0.980, "Norland", "left", 950.0),
        ]
    )
    r = rows[("p", "total_hip")]
    assert (r["n_manufacturers"], r["manufacturers"]) == (3, "GE Lunar,Hologic,Norland")
    assert r["uses_sbmd"] is True and r["n_scans"] == 2
    assert (r["first_scan_date"], r["last_scan_date"]) == (D(2020, 1, 1), D(2022, 1, 1))
    assert r["change_g_cm2"] == pytest.approx(0.050)
    assert r["slope_g_cm2_per_year"] == pytest.approx(0.050 / (731 / 365.25))
    assert r["slope_se_g_cm2_per_year"] is None


def test_lsc_flag_per_site_and_configurable():
    scans = [
        Scan("p", "2020-01-01", "lumbar_spine", 1.000),
        Scan("p", "2021-06-01", "lumbar_spine", 0.960),  # |-0.040| > 0.030
        Scan("p", "2020-01-01", "total_hip", 0.900, side="left"),
        Scan("p", "2021-06-01", "total_hip", 0.880, side="left"),  # |-0.020| ≤ 0.025
    ]
    rows = run(scans)
    assert rows[("p", "lumbar_spine")]["exceeds_lsc"] is True
    assert rows[("p", "total_hip")]["exceeds_lsc"] is False
    assert rows[("p", "total_hip")]["lsc_g_cm2"] == 0.025
    params = default_params()
    params["lsc_g_cm2"] = [0.050 if s == "lumbar_spine" else 0.010 for s in params["bmd_sites"]]
    rows = run(scans, lsc_g_cm2=params["lsc_g_cm2"])
    assert rows[("p", "lumbar_spine")]["exceeds_lsc"] is False
    assert rows[("p", "total_hip")]["exceeds_lsc"] is True


def test_change_equal_to_the_lsc_is_not_beyond_it():
    # Reported to 0.001 g/cm²: 0.900 → 0.875 is a change of exactly 0.025, the total-hip
    # LSC; in binary doubles 0.875 - 0.900 = -0.025000000000000022, which a plain > would
    # flag. 0.900 → 0.874 (0.026) is beyond it. The spine pair 0.830 → 0.800 (-0.030 exactly,
    # -0.029999999999999916 in doubles) stays not beyond 0.030 as well.
    assert abs(0.875 - 0.900) > 0.025  # the rounding the flag must not count
    rows = run(
        [
            Scan("a", "2020-01-01", "total_hip", 0.900, side="left"),
            Scan("a", "2022-01-01", "total_hip", 0.875, side="left"),
            Scan("b", "2020-01-01", "total_hip", 0.900, side="left"),
            Scan("b", "2022-01-01", "total_hip", 0.874, side="left"),
            Scan("c", "2020-01-01", "lumbar_spine", 0.830),
            Scan("c", "2022-01-01", "lumbar_spine", 0.800),
        ]
    )
    assert rows[("a", "total_hip")]["exceeds_lsc"] is False
    assert rows[("a", "total_hip")]["change_g_cm2"] == pytest.approx(-0.025)
    assert rows[("b", "total_hip")]["exceeds_lsc"] is True
    assert rows[("c", "lumbar_spine")]["exceeds_lsc"] is False


def test_a_row_without_bmd_is_no_scan_and_no_manufacturer():
    # Two Hologic scans, then a GE Lunar row with a T-score but no BMD and no sBMD: it is no
    # scan, so the site stays on one manufacturer and uses measured BMD (change -0.020 over
    # 731 days), not sBMD. A site whose only row has no value keeps a row with 0 scans.
    rows = run(
        [
            Scan("p", "2019-01-01", "total_hip", 0.900, "Hologic", "left", 913.2),
            Scan("p", "2021-01-01", "total_hip", 0.880, "Hologic", "left", 893.04),
            Scan("p", "2022-01-01", "total_hip", None, "GE Lunar", "left", None),
            Scan("p", "2022-01-01", "femoral_neck", None, "GE Lunar", "left", None),
        ]
    )
    hip = rows[("p", "total_hip")]
    assert (hip["uses_sbmd"], hip["n_manufacturers"], hip["manufacturers"]) == (False, 1, "Hologic")
    assert hip["n_scans"] == 2 and hip["last_scan_date"] == D(2021, 1, 1)
    assert hip["first_bmd_g_cm2"] == 0.900 and hip["change_g_cm2"] == pytest.approx(-0.020)
    assert hip["slope_g_cm2_per_year"] == pytest.approx(-0.020 / (731 / 365.25))
    neck = rows[("p", "femoral_neck")]
    assert (neck["n_scans"], neck["reason"]) == (0, "fewer_than_2_scans")
    assert (neck["n_manufacturers"], neck["manufacturers"]) == (0, None)


def test_slopes_match_numpy_and_scipy_on_random_data():
    rng = np.random.default_rng(7)
    scans, truth = [], {}
    for i in range(40):
        n = int(rng.integers(3, 9))
        offsets = np.sort(rng.choice(np.arange(0, 3650), size=n, replace=False))
        offsets -= offsets[0]
        if offsets[-1] < 366:
            offsets[-1] = 366 + int(rng.integers(0, 300))
        y = 1.0 - 0.01 * offsets / 365.25 + rng.normal(0, 0.01, n)
        start = D(2010, 1, 1) + dt.timedelta(days=int(rng.integers(0, 3000)))
        for off, val in zip(offsets, y, strict=True):
            scans.append(
                Scan(
                    f"p{i}",
                    (start + dt.timedelta(days=int(off))).isoformat(),
                    "lumbar_spine",
                    float(val),
                )
            )
        x = offsets / 365.25
        fit = stats.linregress(x, y)
        truth[f"p{i}"] = (np.polyfit(x, y, 1)[0], fit.slope, fit.stderr)
    rows = run(scans)
    for key, (poly_slope, lin_slope, stderr) in truth.items():
        r = rows[(key, "lumbar_spine")]
        assert r["slope_g_cm2_per_year"] == pytest.approx(poly_slope, rel=1e-9, abs=1e-12)
        assert r["slope_g_cm2_per_year"] == pytest.approx(lin_slope, rel=1e-9, abs=1e-12)
        assert r["slope_se_g_cm2_per_year"] == pytest.approx(stderr, rel=1e-7)


SITES = st.sampled_from(["lumbar_spine", "total_hip", "femoral_neck", "forearm"])
MAKERS = st.sampled_from(["Hologic", "Hologic", "GE Lunar", "Norland", None])


@st.composite
def scan_sets(draw):
    scans = []
    for i in range(draw(st.integers(1, 3))):
        start = D(2012, 1, 1) + dt.timedelta(days=draw(st.integers(0, 2000)))
        for _ in range(draw(st.integers(1, 8))):
            day = start + dt.timedelta(days=draw(st.integers(0, 2500)))
            site = draw(SITES)
            side = None if site == "lumbar_spine" else draw(st.sampled_from(["left", "right"]))
            bmd = draw(st.one_of(st.none(), st.integers(500, 1500).map(lambda v: v / 1000)))
            sbmd = draw(st.one_of(st.none(), st.integers(500, 1500).map(float)))
            approx = draw(st.one_of(st.none(), st.booleans()))
            scans.append(
                Scan(f"p{i}", day.isoformat(), site, bmd, draw(MAKERS), side, sbmd, approx)
            )
    return scans, draw(st.sampled_from([0.5, 1.0, 2.0]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scan_sets())
def test_matches_plain_reference(case):
    scans, min_span = case
    rows = run(scans, min_span_years=min_span)
    expected = bmd_reference(scans, min_span_years=min_span)
    assert_rows_equal(rows, expected, rel=1e-7, abs_tol=1e-9)
