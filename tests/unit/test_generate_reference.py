"""Hand-worked cases for the generator's reference implementation of docs/features.md."""

from __future__ import annotations

import datetime as dt

import pytest

from transforms.generate.reference import (
    bmd_from_sbmd,
    bmd_trend,
    e2_exposure,
    exposure_episodes,
    sbmd_mg_cm2,
)

D = dt.date


def run(results, thresholds=(20.0,), episodes=()):
    return e2_exposure(results, thresholds=thresholds, max_gap_days=180, censored_fraction=0.5,
                       episodes=episodes)  # fmt: skip


def overall(rows, t=20.0):
    return next(r for r in rows if r["period"] == "overall" and r["threshold_pg_ml"] == t)


def test_ten_days_from_10_to_30():
    # days 0..9 take 10, 12, …, 28: below 20 are 10, 12, 14, 16, 18 -> 5 days
    r = overall(run([(D(2020, 1, 1), 10.0, None), (D(2020, 1, 11), 30.0, None)]))
    assert r["interpolated_days"] == 10
    assert r["below_days"] == 5
    assert r["fraction_below"] == 0.5
    assert r["followup_days"] == 10
    assert (r["gap_days"], r["indeterminate_days"]) == (0, 0)
    assert (r["n_results"], r["n_dates"], r["n_censored"]) == (2, 2, 0)
    assert (r["mean_e2_pg_ml"], r["min_e2_pg_ml"], r["max_e2_pg_ml"]) == (20.0, 10.0, 30.0)


def test_value_equal_to_threshold_is_not_below():
    # 20 -> 20 over 4 days: every day is exactly 20, none strictly below
    r = overall(run([(D(2020, 1, 1), 20.0, None), (D(2020, 1, 5), 20.0, None)]))
    assert (r["interpolated_days"], r["below_days"]) == (4, 0)


@pytest.mark.parametrize(("n", "interp", "gap"), [(180, 180, 0), (181, 0, 181)])
def test_max_gap_edge(n, interp, gap):
    d0 = D(2021, 1, 1)
    r = overall(run([(d0, 5.0, None), (d0 + dt.timedelta(days=n), 5.0, None)]))
    assert (r["interpolated_days"], r["gap_days"], r["followup_days"]) == (interp, gap, n)
    assert r["below_days"] == interp


def test_censored_limit_above_threshold_is_indeterminate():
    res = [(D(2020, 3, 1), 40.0, None), (D(2020, 3, 31), 24.0, "<")]
    r20 = overall(run(res), 20.0)
    assert (r20["indeterminate_days"], r20["interpolated_days"], r20["below_days"]) == (30, 0, 0)
    assert r20["fraction_below"] is None
    assert r20["n_censored"] == 1
    # at 30 the limit 24 is known below: interpolated from 40 to 12 (24 x 0.5) over 30 days;
    # day k = 40 - 28k/30 < 30  <=>  k > 10.71 -> k = 11 … 29 -> 19 days
    r30 = overall(run(res, (30.0,)), 30.0)
    assert (r30["interpolated_days"], r30["below_days"]) == (30, 19)
    assert r30["min_e2_pg_ml"] == 12.0


def test_same_day_results_are_merged():
    # '<5' (2.5) and 10 on one day -> 6.25, not censored; then 6.25 -> 6.25 stays below 20
    res = [(D(2020, 1, 1), 5.0, "<"), (D(2020, 1, 1), 10.0, None), (D(2020, 1, 3), 6.25, None)]
    r = overall(run(res))
    assert (r["n_results"], r["n_dates"], r["n_censored"]) == (3, 2, 1)
    assert r["min_e2_pg_ml"] == 6.25
    assert (r["interpolated_days"], r["below_days"], r["indeterminate_days"]) == (2, 2, 0)


def test_all_censored_same_day_uses_mean_limit():
    # limits 24 and 30 -> censored date with limit 27 > 20 -> indeterminate
    res = [(D(2020, 1, 1), 24.0, "<"), (D(2020, 1, 1), 30.0, "<"), (D(2020, 1, 11), 10.0, None)]
    assert overall(run(res))["indeterminate_days"] == 10


def test_calendar_years_split_covered_days():
    res = [(D(2020, 12, 27), 10.0, None), (D(2021, 1, 6), 10.0, None)]
    rows = {r["period"]: r for r in run(res)}
    assert set(rows) == {"overall", "2020", "2021"}
    assert rows["2020"]["interpolated_days"] == 5  # Dec 27 … Dec 31
    assert rows["2021"]["interpolated_days"] == 5  # Jan 1 … Jan 5 (Jan 6 starts nothing)
    assert rows["2020"]["n_results"] == 1 and rows["2021"]["last_date"] == D(2021, 1, 6)


def test_year_with_only_covered_days_has_a_row():
    res = [(D(2020, 12, 1), 10.0, None), (D(2022, 1, 10), 10.0, None)]  # one long gap
    rows = {r["period"]: r for r in run(res)}
    assert rows["2021"]["gap_days"] == 365
    assert rows["2021"]["n_results"] == 0 and rows["2021"]["first_date"] is None
    assert rows["2021"]["mean_e2_pg_ml"] is None


def test_single_date():
    rows = run([(D(2020, 5, 5), 12.0, None)])
    r = overall(rows)
    assert r["followup_days"] == 0 and r["fraction_below"] is None
    assert r["n_results"] == 1


def test_anastrozole_days_inside_episodes():
    res = [(D(2020, 1, 1), 10.0, None), (D(2020, 1, 11), 30.0, None)]
    r = overall(run(res, episodes=[(D(2020, 1, 3), D(2020, 1, 4)), (D(2020, 1, 9), D(2020, 2, 1))]))
    # covered days Jan 1..10: in episodes Jan 3, 4, 9, 10 -> 4; below (value < 20): Jan 3 (14), Jan 4 (16)
    assert (r["anastrozole_days"], r["anastrozole_below_days"]) == (4, 2)


def test_exposure_episode_persistence_window():
    a = (D(2020, 1, 1), D(2020, 1, 30))
    merged = exposure_episodes([a, (D(2020, 3, 2), D(2020, 3, 31))], 30)  # gap Jan 31..Mar 1 = 31
    assert merged == [a, (D(2020, 3, 2), D(2020, 3, 31))]
    merged = exposure_episodes([(D(2020, 3, 1), D(2020, 3, 31)), a], 30)  # gap 30 days
    assert merged == [(D(2020, 1, 1), D(2020, 3, 31))]
    overlap = exposure_episodes([a, (D(2020, 1, 20), D(2020, 1, 25))], 30)
    assert overlap == [a]


@pytest.mark.parametrize("site", ["lumbar_spine", "total_hip", "femoral_neck"])
@pytest.mark.parametrize("manufacturer", ["Hologic", "GE Lunar"])
def test_sbmd_inverse(site, manufacturer):
    assert sbmd_mg_cm2(site, manufacturer, bmd_from_sbmd(site, manufacturer, 1.0)) == pytest.approx(
        1000.0
    )


def test_sbmd_values_from_domain_formulas():
    assert sbmd_mg_cm2("lumbar_spine", "Hologic", 0.972) == pytest.approx(1043.6)
    assert sbmd_mg_cm2("lumbar_spine", "GE Lunar", 1.200) == pytest.approx(
        1000 * (0.9683 * 0.1 + 1.0436)
    )
    assert sbmd_mg_cm2("total_hip", "GE Lunar", 1.0) == pytest.approx(948.0)
    assert sbmd_mg_cm2("femoral_neck", "Hologic", 1.0) == pytest.approx(1106.0)


def scan(day, site, bmd, manufacturer="Hologic", side=None, l24=None):
    return {"scan_date": day, "site": site, "side": side, "bmd_g_cm2": bmd,
            "bmd_l2_l4_g_cm2": l24, "manufacturer": manufacturer}  # fmt: skip


LSC = {"lumbar_spine": 0.030, "total_hip": 0.025, "femoral_neck": 0.035}


def test_bmd_slope_three_scans():
    # x = 0, 1, 2 years (365.25-day years) ; y = 1.00, 0.99, 0.95 -> slope -0.025
    d0 = D(2019, 1, 1)
    scans = [scan(d0 + dt.timedelta(days=round(365.25 * i)), "lumbar_spine", y)
             for i, y in enumerate((1.00, 0.99, 0.95))]  # fmt: skip
    scans[1]["scan_date"] = D(2020, 1, 1)  # 365 days; keep exact x below
    (r,) = bmd_trend(scans, lsc_g_cm2=LSC, min_span_years=1.0)
    xs = [0.0, 365 / 365.25, (scans[2]["scan_date"] - d0).days / 365.25]
    ys = [1.00, 0.99, 0.95]
    xb, yb = sum(xs) / 3, sum(ys) / 3
    sxx = sum((x - xb) ** 2 for x in xs)
    slope = sum((x - xb) * (y - yb) for x, y in zip(xs, ys, strict=True)) / sxx
    assert r["slope_g_cm2_per_year"] == pytest.approx(slope)
    assert r["slope_pct_per_year"] == pytest.approx(100 * slope / 1.00)
    assert r["change_g_cm2"] == pytest.approx(-0.05) and r["exceeds_lsc"] is True
    assert r["slope_se_g_cm2_per_year"] is not None and r["reason"] is None


def test_bmd_two_scans_and_short_span():
    two = [
        scan(D(2019, 1, 1), "total_hip", 0.9, side="left"),
        scan(D(2020, 6, 1), "total_hip", 0.92, side="left"),
    ]
    (r,) = bmd_trend(two, lsc_g_cm2=LSC, min_span_years=1.0)
    assert r["slope_se_g_cm2_per_year"] is None and r["slope_g_cm2_per_year"] is not None
    short = [
        scan(D(2019, 1, 1), "femoral_neck", 0.8, side="left"),
        scan(D(2019, 9, 1), "femoral_neck", 0.8, side="left"),
    ]
    (r,) = bmd_trend(short, lsc_g_cm2=LSC, min_span_years=1.0)
    assert r["reason"] == "span_below_minimum" and r["slope_g_cm2_per_year"] is None
    assert r["change_g_cm2"] == 0.0 and r["exceeds_lsc"] is False
    (r,) = bmd_trend(short[:1], lsc_g_cm2=LSC, min_span_years=1.0)
    assert r["reason"] == "fewer_than_2_scans" and r["change_g_cm2"] is None


def test_a_change_equal_to_the_lsc_does_not_exceed_it():
    # 0.930 → 0.900 is 0.030000000000000027 in binary floating point: not beyond the spine's
    # LSC of 0.030 (docs/features.md: 1e-9 g/cm² of rounding is not beyond it); 0.031 is
    assert abs(0.900 - 0.930) > 0.030  # the rounding the rule is about
    tie = [
        scan(D(2019, 1, 1), "lumbar_spine", 0.930),
        scan(D(2020, 6, 1), "lumbar_spine", 0.900),
    ]
    (r,) = bmd_trend(tie, lsc_g_cm2=LSC, min_span_years=1.0)
    assert r["exceeds_lsc"] is False
    tie[1] = scan(D(2020, 6, 1), "lumbar_spine", 0.899)
    (r,) = bmd_trend(tie, lsc_g_cm2=LSC, min_span_years=1.0)
    assert r["exceeds_lsc"] is True


def test_bmd_hips_mean_of_sides_and_sbmd_on_vendor_change():
    scans = [
        scan(D(2019, 1, 1), "total_hip", 1.00, "Hologic", "left"),
        scan(D(2019, 1, 1), "total_hip", 1.02, "Hologic", "right"),
        scan(D(2021, 1, 1), "total_hip", 1.05, "GE Lunar", "left"),
    ]
    (r,) = bmd_trend(scans, lsc_g_cm2=LSC, min_span_years=1.0)
    first = ((0.006 + 1.008 * 1.00) + (0.006 + 1.008 * 1.02)) / 2
    assert r["uses_sbmd"] is True and r["manufacturers"] == "GE Lunar,Hologic"
    assert r["first_bmd_g_cm2"] == pytest.approx(first)
    assert r["last_bmd_g_cm2"] == pytest.approx(-0.031 + 0.979 * 1.05)
    spine = [scan(D(2019, 1, 1), "lumbar_spine", 1.0, "Hologic", l24=1.02),
             scan(D(2021, 1, 1), "lumbar_spine", 1.1, "GE Lunar")]  # fmt: skip
    (r,) = bmd_trend(spine, lsc_g_cm2=LSC, min_span_years=1.0)
    assert r["sbmd_is_approximate"] is True
    assert r["first_bmd_g_cm2"] == pytest.approx(1.0550 * (1.02 - 0.972) + 1.0436)
