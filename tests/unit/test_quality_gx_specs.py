"""The GX suites as declared (config/gx_suites.yaml + plausible ranges) and the value
stripping of stored results; no Great Expectations import needed."""

from __future__ import annotations

from warehouse.quality_gx import (
    VALUE_KEYS,
    _strip_values,
    expectation_specs,
    load_suites,
    plausible_ranges,
)


def test_lab_suite_has_one_range_per_analyte_and_unit():
    ranges = [
        {"analyte": "estradiol", "unit": "pg/mL", "min_value": 0.0, "max_value": 40000.0},
        {"analyte": "lh", "unit": "m[IU]/mL", "min_value": 0.0, "max_value": 200.0},
    ]
    suite = {
        "not_null": ["result_id"],
        "unique": ["result_id"],
        "in_set": {"patient_in_dim": [True]},
        "between": {"days_after_run_date": [None, 0]},
        "plausible_ranges": "value",
    }
    assert expectation_specs(suite, ranges) == [
        ("ExpectColumnValuesToNotBeNull", {"column": "result_id"}),
        ("ExpectColumnValuesToBeUnique", {"column": "result_id"}),
        ("ExpectColumnValuesToBeInSet", {"column": "patient_in_dim", "value_set": [True]}),
        (
            "ExpectColumnValuesToBeBetween",
            {"column": "days_after_run_date", "min_value": None, "max_value": 0},
        ),
        (
            "ExpectColumnValuesToBeBetween",
            {
                "column": "value",
                "min_value": 0.0,
                "max_value": 40000.0,
                "row_condition": 'analyte=="estradiol" and unit=="pg/mL"',
                "condition_parser": "pandas",
            },
        ),
        (
            "ExpectColumnValuesToBeBetween",
            {
                "column": "value",
                "min_value": 0.0,
                "max_value": 200.0,
                "row_condition": 'analyte=="lh" and unit=="m[IU]/mL"',
                "condition_parser": "pandas",
            },
        ),
    ]


def test_configured_suites_cover_core_and_marts_with_integrity_and_dates():
    suites = load_suites()
    assert set(suites) == {
        "core.fct_lab_result",
        "core.fct_dexa_scan",
        "core.fct_medication",
        "core.dim_patient",
        "marts.feat_e2_exposure",
        "marts.feat_bmd_trend",
    }
    for table, suite in suites.items():
        if table != "core.dim_patient":
            assert suite["in_set"]["patient_in_dim"] == [True], table
            assert suite["between"]["days_after_run_date"] == [None, 0], table
    n_ranges = len(plausible_ranges())
    lab = expectation_specs(suites["core.fct_lab_result"], plausible_ranges())
    assert sum(1 for _, kw in lab if "row_condition" in kw) == n_ranges == 11


def test_strip_values_removes_every_value_key_at_any_depth():
    result = {
        "success": False,
        "result": {
            "element_count": 9,
            "unexpected_count": 1,
            "partial_unexpected_list": ["pkSECRET"],
            "details": {"value_counts": [{"value": "pkSECRET", "count": 2}]},
        },
        "results": [{"result": {"observed_value": "pkSECRET", "unexpected_list": ["x"]}}],
    }
    stripped = _strip_values(result)
    assert stripped == {
        "success": False,
        "result": {"element_count": 9, "unexpected_count": 1},
        "results": [{"result": {}}],
    }
    assert "pkSECRET" not in repr(stripped)
    assert {"partial_unexpected_list", "unexpected_list", "observed_value"} <= VALUE_KEYS
