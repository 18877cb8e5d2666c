"""Cohort criteria, attrition and the cohort definitions file, on inline frames."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import yaml

from transforms.reporting import cohort_config
from transforms.reporting.cohort_config import CohortConfigError, from_mapping
from transforms.reporting.cohort_select import ALL_PATIENTS, CohortData, criterion_mask, select

PATIENTS = pd.DataFrame(
    [
        # key, sex, birth year, first E2, follow-up days, age, anastrozole days
        ("p1", "M", 1955, dt.date(2020, 1, 1), 800, 65, 200),
        ("p2", "M", 1962, dt.date(2020, 1, 1), 400, 58, 183),
        ("p3", "M", 1950, dt.date(2020, 1, 1), 364, 70, 0),
        ("p4", "F", 1950, dt.date(2020, 1, 1), 900, 70, 0),
        ("p5", "M", None, None, None, None, 0),
        ("p6", "M", 1940, dt.date(2020, 1, 1), 1000, 80, 182),
    ],
    columns=["patient_key", "sex", "birth_year", "first_e2_date", "e2_followup_days",
             "age_at_first_e2", "anastrozole_days"],
)  # fmt: skip
FRACTIONS = pd.DataFrame(
    [("p1", 20.0, 0.5), ("p1", 10.0, 0.1), ("p2", 20.0, 0.49), ("p3", 20.0, None),
     ("p6", 20.0, 0.9)],
    columns=["patient_key", "threshold_pg_ml", "fraction_below"],
)  # fmt: skip
TREND = pd.DataFrame(
    [("p1", "lumbar_spine", 2.0), ("p2", "lumbar_spine", 0.5), ("p2", "total_hip", 3.0)],
    columns=["patient_key", "site", "span_years"],
)


def data() -> CohortData:
    return CohortData(PATIENTS, FRACTIONS, TREND, pd.DataFrame(), pd.DataFrame())


def passing(raw: dict) -> list[str]:
    mask = criterion_mask(cohort_config.criterion_from_mapping(raw), data())
    return sorted(PATIENTS["patient_key"][mask.to_numpy()])


def test_bounds_are_inclusive_min_max_and_exclusive_less_than():
    assert passing({"type": "anastrozole_days", "min": 183}) == ["p1", "p2"]
    assert passing({"type": "anastrozole_days", "max": 0}) == ["p3", "p4", "p5"]
    assert passing({"type": "age_at_first_e2", "min": 60, "less_than": 80}) == ["p1", "p3", "p4"]
    assert passing({"type": "e2_followup_days", "min": 365}) == ["p1", "p2", "p4", "p6"]


def test_missing_attributes_fail():
    # p5 has no E2 at all; p3's fraction is NULL; p4 has no fraction row
    assert passing({"type": "fraction_below", "threshold_pg_ml": 20, "min": 0.5}) == ["p1", "p6"]
    assert passing({"type": "fraction_below", "threshold_pg_ml": 20, "less_than": 0.5}) == ["p2"]
    assert passing({"type": "fraction_below", "threshold_pg_ml": 10, "max": 1}) == ["p1"]
    assert passing({"type": "bmd_span_years", "site": "lumbar_spine", "min": 1}) == ["p1"]
    assert passing({"type": "sex", "in": ["M"]}) == ["p1", "p2", "p3", "p5", "p6"]


def test_attrition_counts_patients_left_after_each_step():
    base = (
        cohort_config.criterion_from_mapping({"type": "sex", "in": ["M"], "label": "men"}),
        cohort_config.criterion_from_mapping({"type": "e2_followup_days", "min": 365}),
    )
    cohort = cohort_config.Cohort(
        "ai",
        "AI",
        (cohort_config.criterion_from_mapping({"type": "anastrozole_days", "min": 183}),),
    )
    sel = select(cohort, base, data())
    assert sel.keys == {"p1", "p2"}
    assert sel.attrition == (
        (ALL_PATIENTS, 6),
        ("men", 5),
        ("e2_followup_days ≥ 365", 3),
        ("anastrozole_days ≥ 183", 2),
    )


MINIMAL = {
    "sites": [{"site": "lumbar_spine"}],
    "cohorts": {"a": {"criteria": [{"type": "anastrozole_days", "min": 1}]}, "b": {}},
    "comparisons": [{"name": "a_vs_b", "groups": ["a", "b"]}],
}


def test_shipped_config_loads():
    cfg = cohort_config.load()
    assert cfg.settings.min_cell_count == 11
    assert cfg.settings.one_year_target_days == 365 and cfg.settings.one_year_window_days == 90
    assert len(cfg.comparisons) >= 3
    assert 20.0 in cfg.thresholds()
    shipped = yaml.safe_load(Path(cohort_config.CONFIG_PATH).read_text(encoding="utf-8"))
    assert [c.name for c in cfg.comparisons] == [c["name"] for c in shipped["comparisons"]]


def test_defaults_and_labels():
    cfg = from_mapping(MINIMAL)
    assert cfg.settings.min_cell_count == 11 and cfg.settings.censored_fraction == 0.5
    assert cfg.cohorts["a"].criteria[0].label == "anastrozole_days ≥ 1"
    assert cfg.query_params("anastrozole")["sites"] == ["lumbar_spine"]


@pytest.mark.parametrize(
    "change",
    [
        {"cohorts": {"a": {"criteria": [{"type": "weight", "min": 1}]}, "b": {}}},
        {"cohorts": {"a": {"criteria": [{"type": "fraction_below", "min": 0.5}]}, "b": {}}},
        {"cohorts": {"a": {"criteria": [{"type": "anastrozole_days"}]}, "b": {}}},
        {"comparisons": [{"name": "x", "groups": ["a"]}]},
        {"comparisons": [{"name": "x", "groups": ["a", "zzz"]}]},
        {"comparisons": [{"name": "../x", "groups": ["a", "b"]}]},
        {"sites": []},
    ],
)
def test_invalid_definitions_are_refused(change):
    with pytest.raises(CohortConfigError):
        from_mapping({**MINIMAL, **change})
