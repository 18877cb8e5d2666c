"""marts.feat_e2_exposure: hand-worked cases and a property test against a day-by-day reference.

Defaults unless a test says otherwise: thresholds 10/20/30 pg/mL, max_gap_days 180,
censored_fraction 0.5 (config/features.yaml). Day d0+k of an interval of n days has value
v0 + (v1 - v0) * k / n and is below T when that value is strictly < T.
"""

from __future__ import annotations

import datetime as dt

import pytest
from feature_reference import (
    Episode,
    Lab,
    assert_rows_equal,
    default_params,
    e2_reference,
    e2_rows,
    insert,
    new_warehouse,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms import feature_config
from warehouse import runner

E2 = "marts.feat_e2_exposure"
D = dt.date


def run(labs, episodes=(), **overrides):
    con = new_warehouse()
    insert(con, labs)
    insert(con, episodes)
    runner.materialize(con, E2, default_params(**overrides))
    return e2_rows(con)


def days(row):
    keys = ("interpolated_days", "below_days", "gap_days", "indeterminate_days", "followup_days")
    return tuple(row[k] for k in keys)


def test_gap_of_exactly_max_gap_days_is_interpolated_one_more_is_a_gap():
    # p1: 2023-01-01 → 2023-06-30 is n = 180 days (31+28+31+30+31 = 151, + 29): interpolated.
    #     v = 40 - 36k/180 = 40 - k/5. Below 20 ⇔ k > 100 ⇒ k = 101…179 = 79 days
    #     (k = 100 gives exactly 20.0, not below). Below 10 ⇔ k > 150 ⇒ 29; below 30 ⇔ k > 50 ⇒ 129.
    # p2: 2023-01-01 → 2023-07-01 is 181 days > 180: all 181 are gap days, none interpolated.
    rows = run(
        [
            Lab("p1", "2023-01-01 08:00", 40.0),
            Lab("p1", "2023-06-30 17:45", 4.0),
            Lab("p2", "2023-01-01", 40.0),
            Lab("p2", "2023-07-01", 4.0),
        ]
    )
    assert days(rows[("p1", 20.0, "overall")]) == (180, 79, 0, 0, 180)
    assert days(rows[("p1", 10.0, "overall")]) == (180, 29, 0, 0, 180)
    assert days(rows[("p1", 30.0, "overall")]) == (180, 129, 0, 0, 180)
    assert rows[("p1", 20.0, "overall")]["fraction_below"] == pytest.approx(79 / 180)
    p2 = rows[("p2", 20.0, "overall")]
    assert days(p2) == (0, 0, 181, 0, 181)
    assert p2["fraction_below"] is None


def test_crossing_inside_a_rising_interval():
    # 2023-03-01 v=10 → 2023-03-11 v=30, n = 10: v(k) = 10 + 2k.
    # T=20: below ⇔ k < 5 ⇒ 5 days; T=10: 10+2k < 10 never (k=0 is exactly 10) ⇒ 0;
    # T=30: max is v(9) = 28 ⇒ all 10.
    rows = run([Lab("p", "2023-03-01", 10.0), Lab("p", "2023-03-11", 30.0)])
    assert rows[("p", 20.0, "overall")]["below_days"] == 5
    assert rows[("p", 10.0, "overall")]["below_days"] == 0
    assert rows[("p", 30.0, "overall")]["below_days"] == 10
    assert rows[("p", 20.0, "overall")]["fraction_below"] == pytest.approx(0.5)


def test_falling_interval():
    # 2023-01-01 v=30 → 2023-01-31 v=0, n = 30: v(k) = 30 - k.
    # T=10: below ⇔ k > 20 ⇒ k = 21…29 = 9 days (v(20) = 10.0 exactly is not below);
    # T=20: k > 10 ⇒ 19; T=30: k > 0 ⇒ 29.
    rows = run([Lab("p", "2023-01-01", 30.0), Lab("p", "2023-01-31", 0.0)])
    assert [rows[("p", t, "overall")]["below_days"] for t in (10.0, 20.0, 30.0)] == [9, 19, 29]


def test_flat_interval_at_exactly_the_threshold_is_not_below():
    # 20 → 20 over 31 days: v(k) = 20.0 for all k. Not < 20; < 30 all 31 days; < 10 none.
    rows = run([Lab("p", "2023-01-01", 20.0), Lab("p", "2023-02-01", 20.0)])
    assert days(rows[("p", 20.0, "overall")]) == (31, 0, 0, 0, 31)
    assert rows[("p", 30.0, "overall")]["below_days"] == 31
    assert rows[("p", 10.0, "overall")]["below_days"] == 0


def test_censored_end_above_threshold_is_indeterminate_below_is_interpolated():
    # 2023-01-01 v=30 → 2023-01-21 "<24" (L=24, interpolation value 12), n = 20.
    # T=10, T=20: L=24 > T ⇒ 20 indeterminate days, nothing interpolated.
    # T=30: L ≤ 30 ⇒ interpolated, v(k) = 30 - 18k/20 = 30 - 0.9k < 30 ⇔ k ≥ 1 ⇒ 19 days.
    rows = run([Lab("p", "2023-01-01", 30.0), Lab("p", "2023-01-21", 24.0, "<")])
    assert days(rows[("p", 10.0, "overall")]) == (0, 0, 0, 20, 20)
    assert days(rows[("p", 20.0, "overall")]) == (0, 0, 0, 20, 20)
    assert days(rows[("p", 30.0, "overall")]) == (20, 19, 0, 0, 20)
    r = rows[("p", 30.0, "overall")]
    assert (r["n_censored"], r["min_e2_pg_ml"], r["max_e2_pg_ml"]) == (1, 12.0, 30.0)
    assert r["mean_e2_pg_ml"] == pytest.approx(21.0)


def test_censored_start_below_threshold_is_interpolated_from_half_the_limit():
    # 2023-01-01 "<=5" (L=5, value 2.5) → 2023-01-11 v=12.5, n = 10: v(k) = 2.5 + k.
    # T=10: L=5 ≤ 10 ⇒ interpolated; below ⇔ k < 7.5 ⇒ k = 0…7 = 8 days. T=20, 30: all 10.
    rows = run([Lab("p", "2023-01-01", 5.0, "<="), Lab("p", "2023-01-11", 12.5)])
    assert days(rows[("p", 10.0, "overall")]) == (10, 8, 0, 0, 10)
    assert rows[("p", 20.0, "overall")]["below_days"] == 10
    # with censored_fraction 1.0 the start is 5: v(k) = 5 + 0.75k < 10 ⇔ k < 6.67 ⇒ 7 days
    rows = run(
        [Lab("p", "2023-01-01", 5.0, "<="), Lab("p", "2023-01-11", 12.5)], censored_fraction=1.0
    )
    assert rows[("p", 10.0, "overall")]["below_days"] == 7


def test_single_result():
    rows = run([Lab("p", "2023-05-05 10:00", 15.0)])
    assert sorted(k[2] for k in rows if k[1] == 20.0) == ["2023", "overall"]
    for period in ("overall", "2023"):
        r = rows[("p", 20.0, period)]
        assert days(r) == (0, 0, 0, 0, 0)
        assert r["fraction_below"] is None
        assert (r["first_date"], r["last_date"]) == (D(2023, 5, 5), D(2023, 5, 5))
        assert (r["n_results"], r["n_dates"], r["n_censored"]) == (1, 1, 0)
        assert (r["mean_e2_pg_ml"], r["min_e2_pg_ml"], r["max_e2_pg_ml"]) == (15.0, 15.0, 15.0)
        assert (r["anastrozole_days"], r["anastrozole_below_days"]) == (0, 0)


def test_same_day_duplicates_mean_and_censored_only_if_all_are():
    # D1 2023-01-01: 10 and 20           → 15, not censored
    # D2 2023-01-11: "<8" and "<4"       → mean(4, 2) = 3, censored (all), limit mean(8, 4) = 6
    # D3 2023-01-21: "<40" and 30        → mean(20, 30) = 25, not censored (not all)
    # T=10 (limit 6 ≤ 10): D1→D2 v = 15 - 1.2k < 10 ⇔ k > 4.17 ⇒ k = 5…9 = 5 days;
    #                      D2→D3 v = 3 + 2.2k < 10 ⇔ k < 3.18 ⇒ k = 0…3 = 4 days. Total 9 of 20.
    # T=5 (limit 6 > 5): both intervals touch D2 ⇒ 20 indeterminate days.
    labs = [
        Lab("p", "2023-01-01 08:00", 10.0),
        Lab("p", "2023-01-01 16:00", 20.0),
        Lab("p", "2023-01-11", 8.0, "<"),
        Lab("p", "2023-01-11", 4.0, "<"),
        Lab("p", "2023-01-21", 40.0, "<"),
        Lab("p", "2023-01-21", 30.0),
    ]
    rows = run(labs, thresholds_pg_ml=[5.0, 10.0])
    r = rows[("p", 10.0, "overall")]
    assert days(r) == (20, 9, 0, 0, 20)
    assert (r["n_results"], r["n_dates"], r["n_censored"]) == (6, 3, 3)
    assert r["mean_e2_pg_ml"] == pytest.approx((15 + 3 + 25) / 3)
    assert (r["min_e2_pg_ml"], r["max_e2_pg_ml"]) == (3.0, 25.0)
    assert days(rows[("p", 5.0, "overall")]) == (0, 0, 0, 20, 20)


def test_a_correction_in_the_input_changes_the_feature():
    # Before: 25 → 25 over 10 days: never below 20. The table then holds the corrected
    # value (status C) 15 for the second date: v = 25 - k < 20 ⇔ k > 5 ⇒ k = 6…9 = 4 days.
    # A preliminary result (status P) and another analyte on the same dates are ignored.
    con = new_warehouse()
    insert(
        con,
        [
            Lab("p", "2023-01-01", 25.0),
            Lab("p", "2023-01-11", 25.0),
            Lab("p", "2023-01-06", 1.0, result_status="P"),
            Lab("p", "2023-01-06", 1.0, loinc_code="2986-8"),
        ],
    )
    runner.materialize(con, E2, default_params())
    before = e2_rows(con)[("p", 20.0, "overall")]
    assert (before["below_days"], before["min_e2_pg_ml"], before["n_results"]) == (0, 25.0, 2)
    con.execute(
        "UPDATE core.fct_lab_result SET value = 15.0, result_status = 'C'"
        " WHERE collected_at = DATE '2023-01-11'"
    )
    runner.materialize(con, E2, default_params(), patient_keys=["p"])
    after = e2_rows(con)[("p", 20.0, "overall")]
    assert (after["below_days"], after["min_e2_pg_ml"], after["n_results"]) == (4, 15.0, 2)


def test_year_boundary_inside_an_interval():
    # 2022-12-22 v=10 → 2023-01-11 v=30, n = 20: v(k) = 10 + k; T=25 ⇒ below k = 0…14.
    # 2022 covers k = 0…9 (Dec 22-31): 10 days, all below. 2023 covers k = 10…19 (Jan 1-10):
    # 10 days, below k = 10…14 = 5. The result date 2023-01-11 belongs to 2023 only.
    rows = run(
        [Lab("p", "2022-12-22", 10.0), Lab("p", "2023-01-11", 30.0)], thresholds_pg_ml=[25.0]
    )
    y22, y23, ov = (rows[("p", 25.0, p)] for p in ("2022", "2023", "overall"))
    assert days(y22) == (10, 10, 0, 0, 10)
    assert days(y23) == (10, 5, 0, 0, 10)
    assert days(ov) == (20, 15, 0, 0, 20)
    assert (y22["first_date"], y22["last_date"], y22["n_results"]) == (D(2022, 12, 22),) * 2 + (1,)
    assert (y23["first_date"], y23["mean_e2_pg_ml"], y23["n_dates"]) == (D(2023, 1, 11), 30.0, 1)
    assert y22["fraction_below"] == 1.0 and y23["fraction_below"] == 0.5


def test_a_year_with_covered_days_but_no_result_date():
    # max_gap_days 800: 2022-12-31 → 2024-01-02 (n = 367) at a flat 8 pg/mL, T=10.
    # 2022: Dec 31 (1 day); 2023: 365 days, no result date; 2024: Jan 1 (Jan 2 is the last date).
    rows = run(
        [Lab("p", "2022-12-31", 8.0), Lab("p", "2024-01-02", 8.0)],
        thresholds_pg_ml=[10.0],
        max_gap_days=800,
    )
    assert [days(rows[("p", 10.0, y)]) for y in ("2022", "2023", "2024")] == [
        (1, 1, 0, 0, 1),
        (365, 365, 0, 0, 365),
        (1, 1, 0, 0, 1),
    ]
    y23 = rows[("p", 10.0, "2023")]
    assert (y23["n_results"], y23["n_dates"], y23["n_censored"]) == (0, 0, 0)
    assert y23["first_date"] is None and y23["mean_e2_pg_ml"] is None
    assert y23["min_e2_pg_ml"] is None and y23["max_e2_pg_ml"] is None


def test_anastrozole_days_and_below_days():
    # 2023-01-01 v=30 → 2023-01-31 v=0: covered Jan 1-30, below 10 on k = 21…29 = Jan 22-30.
    # Episodes Jan 10-24 and Jan 20-25 overlap: merged Jan 10-25 = 16 days; Jan 30 - Mar 1
    # adds Jan 30 (Jan 31 is the last date, not covered) ⇒ 17 anastrozole days.
    # Below and exposed: Jan 22-25 (4) + Jan 30 (1) = 5. A testosterone episode is ignored.
    rows = run(
        [Lab("p", "2023-01-01", 30.0), Lab("p", "2023-01-31", 0.0)],
        [
            Episode("p", "2023-01-10", "2023-01-24"),
            Episode("p", "2023-01-20", "2023-01-25"),
            Episode("p", "2023-01-30", "2023-03-01"),
            Episode("p", "2023-01-01", "2023-01-31", ingredient="testosterone"),
        ],
    )
    r = rows[("p", 10.0, "overall")]
    assert (r["anastrozole_days"], r["anastrozole_below_days"]) == (17, 5)
    # T=30: below on k ≥ 1 (Jan 2-30), which holds all 17 exposed days
    assert rows[("p", 30.0, "overall")]["anastrozole_below_days"] == 17


@pytest.mark.parametrize("half_width", [1e-13, 3e-14, 1e-12, 7e-15])
def test_near_flat_interval_matches_day_by_day(half_width):
    # a slope of a few ulps per day: the arithmetic boundary is off by many days, so the model
    # must fall back to counting; compare with the literal day-by-day evaluation
    labs = [Lab("p", "2023-01-01", 20.0 - half_width), Lab("p", "2023-06-30", 20.0 + half_width)]
    v0, v1, n = 20.0 - half_width, 20.0 + half_width, 180
    expected = sum(1 for k in range(n) if v0 + (v1 - v0) * k / n < 20.0)
    rows = run(labs)
    assert rows[("p", 20.0, "overall")]["below_days"] == expected
    rows = run(labs[::-1][:0] + [Lab("p", "2023-01-01", v1), Lab("p", "2023-06-30", v0)])
    assert rows[("p", 20.0, "overall")]["below_days"] == sum(
        1 for k in range(n) if v1 + (v0 - v1) * k / n < 20.0
    )


NEAR_20 = [
    20.0 + d for d in (-1.0, -1e-6, -2e-8, -1e-9, -1e-12, -4e-15, 0.0, 4e-15, 1e-12, 2e-8, 1.0)
]


@pytest.mark.parametrize("v0", NEAR_20)
@pytest.mark.parametrize("v1", NEAR_20)
def test_ends_near_the_threshold_match_day_by_day(v0, v1):
    # ends on the same side of T skip the boundary search only when clear of it by far more
    # than rounding; every pair around T=20 (same side, straddling, touching, both equal to
    # T) must count exactly the days the literal evaluation counts
    n = 97
    labs = [Lab("p", "2023-01-01", v0), Lab("p", "2023-04-08", v1)]
    expected = sum(1 for k in range(n) if v0 + (v1 - v0) * k / n < 20.0)
    assert run(labs)[("p", 20.0, "overall")]["below_days"] == expected


# --- property test against the day-by-day reference ----------------------------------------------

QUARTERS = st.integers(0, 240).map(lambda i: i / 4)  # exact sums: any summation order agrees
HUNDREDTHS = st.integers(0, 6000).map(lambda i: i / 100)
COMPARATORS = st.sampled_from([None, None, None, None, "<", "<=", ">", ">="])


@st.composite
def patient_labs(draw, key: str, max_gap: int):
    n_dates = draw(st.integers(1, 7))
    day = D(2019, 1, 1) + dt.timedelta(days=draw(st.integers(0, 5 * 365)))
    labs: list[Lab] = []
    gaps = st.one_of(
        st.integers(1, 120), st.sampled_from([max_gap, max_gap + 1, 1, 365]), st.integers(1, 400)
    )
    for i in range(n_dates):
        if i:
            day += dt.timedelta(days=draw(gaps))
        n_res = draw(st.integers(1, 3))
        values = QUARTERS if n_res >= 3 else st.one_of(QUARTERS, HUNDREDTHS)
        for _ in range(n_res):
            hour = draw(st.integers(0, 23))
            labs.append(
                Lab(
                    key,
                    f"{day.isoformat()} {hour:02d}:30",
                    draw(values),
                    draw(COMPARATORS),
                    draw(st.sampled_from(["2243-4", "14715-7", "72873-3", "83096-8"])),
                    draw(st.sampled_from(["F", "F", "C"])),
                )
            )
    # noise the model must ignore: other analytes, non-current statuses, NULL values
    noise = draw(st.integers(0, 2))
    for j in range(noise):
        when = f"{(day - dt.timedelta(days=7 * j + 3)).isoformat()} 09:00"
        labs.append(Lab(key, when, 1.0, loinc_code="2986-8"))
        labs.append(Lab(key, when, 2.0, result_status="P"))
        labs.append(Lab(key, when, None))
    return labs


@st.composite
def patient_episodes(draw, key: str):
    out = []
    for _ in range(draw(st.integers(0, 3))):
        start = D(2019, 1, 1) + dt.timedelta(days=draw(st.integers(0, 7 * 365)))
        end = start + dt.timedelta(days=draw(st.integers(0, 300)))
        out.append(Episode(key, start.isoformat(), end.isoformat()))
    return out


@st.composite
def cohorts(draw):
    max_gap = draw(st.sampled_from([30, 90, 180]))
    thresholds = draw(
        st.lists(
            st.sampled_from([5.0, 10.0, 12.5, 20.0, 24.0, 30.0, 45.25]),
            min_size=1,
            max_size=3,
            unique=True,
        )
    )
    fraction = draw(st.sampled_from([0.5, 0.25, 1.0]))
    labs, episodes = [], []
    for i in range(draw(st.integers(1, 3))):
        labs += draw(patient_labs(f"p{i}", max_gap))
        episodes += draw(patient_episodes(f"p{i}"))
    return labs, episodes, thresholds, max_gap, fraction


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohorts())
def test_matches_day_by_day_reference(cohort):
    labs, episodes, thresholds, max_gap, fraction = cohort
    rows = run(
        labs,
        episodes,
        thresholds_pg_ml=thresholds,
        max_gap_days=max_gap,
        censored_fraction=fraction,
    )
    expected = e2_reference(
        labs, episodes, thresholds=thresholds, max_gap_days=max_gap, censored_fraction=fraction
    )
    assert_rows_equal(rows, expected)


def test_feature_config_defaults_and_validation():

    params = feature_config.model_params()
    assert params["thresholds_pg_ml"] == [10.0, 20.0, 30.0]
    assert (params["max_gap_days"], params["censored_fraction"]) == (180, 0.5)
    assert params["e2_loinc_codes"] == ["2243-4", "14715-7", "72873-3", "83096-8"]
    assert dict(zip(params["bmd_sites"], params["lsc_g_cm2"], strict=True)) == {
        "lumbar_spine": 0.030,
        "total_hip": 0.025,
        "femoral_neck": 0.035,
    }
    raw = {
        "e2_exposure": {
            "loinc_codes": ["2243-4"],
            "result_statuses": ["F"],
            "thresholds_pg_ml": [20],
            "max_gap_days": 180.5,
            "censored_fraction": 0.5,
        },
        "bmd_trend": {"min_span_years": 1, "lsc_g_cm2": {"lumbar_spine": 0.03}},
    }
    with pytest.raises(ValueError, match="max_gap_days"):
        feature_config.from_mapping(raw)
    raw["e2_exposure"]["max_gap_days"] = 90
    with pytest.raises(ValueError, match="lsc_g_cm2"):
        feature_config.from_mapping(raw)


def test_a_bad_feature_config_names_every_problem_at_once():
    raw = {
        "e2_exposure": {
            "loinc_codes": ["2243-4"],
            "result_statuses": ["F"],
            "thresholds_pg_ml": [-10, 20],
            "max_gap_days": -5,
            "censored_fraction": 7,
        },
        "bmd_trend": {
            "min_span_years": "one",
            "lsc_g_cm2": {"lumbar_spine": 0.03, "total_hip": 0.025, "femoral_neck": 0.035},
        },
    }
    with pytest.raises(ValueError) as err:
        feature_config.from_mapping(raw)
    message = str(err.value)
    for what in ("thresholds_pg_ml must be numbers > 0 (got [-10.0, 20.0])", "max_gap_days",
                 "censored_fraction", "min_span_years"):  # fmt: skip
        assert what in message
    raw["e2_exposure"].update(thresholds_pg_ml=[10, float("inf")], max_gap_days=180)
    raw["e2_exposure"]["censored_fraction"] = 0.5
    raw["bmd_trend"]["min_span_years"] = 1
    with pytest.raises(
        ValueError, match=r"thresholds_pg_ml must be numbers > 0 \(got \[10.0, inf\]\)"
    ):
        feature_config.from_mapping(raw)
    raw["e2_exposure"]["thresholds_pg_ml"] = [10, 20]
    assert feature_config.from_mapping(raw).e2.thresholds_pg_ml == (10.0, 20.0)
