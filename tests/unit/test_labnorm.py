import polars as pl
import pytest

from schemas.staging import StgLabResult, empty_frame
from transforms.catalog import load_catalog, unit_key
from transforms.labnorm import normalize_lab_results


def _frame(**cols):
    n = len(next(iter(cols.values())))
    base = {"position": [f"p{i}" for i in range(n)], "source_code_system": ["L"] * n}
    base.update(cols)
    return pl.concat([empty_frame(StgLabResult), pl.DataFrame(base)], how="diagonal_relaxed")


def test_unit_key_folds_case_spaces_and_micro_sign():
    assert unit_key(" PG / mL") == "pg/ml"
    assert unit_key("µmol/L") == unit_key("umol/L") == "umol/l"


def test_pmol_estradiol_converted_with_domain_factor():
    # DOMAIN.md: pg/mL x 3.671 = pmol/L, so 73.42 pmol/L = 20.0 pg/mL
    df = _frame(
        source_code=["E2"],
        alt_code=["14715-7"],
        alt_code_system=["LN"],
        value_num_original=[73.42],
        original_unit=["pmol/L"],
    )
    out, rejects = normalize_lab_results(df, local_codes={}, catalog=load_catalog())
    assert rejects == []
    row = out.row(0, named=True)
    assert row["loinc_code"] == "14715-7" and row["analyte"] == "estradiol"
    assert row["unit"] == "pg/mL"
    assert row["value"] == pytest.approx(20.0, rel=1e-12)


def test_censored_value_keeps_limit_and_comparator():
    df = _frame(
        source_code=["2243-4"],
        source_code_system=["LN"],
        value_num_original=[5.0],
        comparator=["<"],
        original_unit=["pg/mL"],
    )
    out, _ = normalize_lab_results(df, local_codes={}, catalog=load_catalog())
    row = out.row(0, named=True)
    assert (row["value"], row["comparator"], row["detection_limit"]) == (5.0, "<", 5.0)


def test_testosterone_nmol_converted_to_ng_dl():
    # ng/dL x 0.03467 = nmol/L  →  17.335 nmol/L = 500 ng/dL
    df = _frame(source_code=["TT"], value_num_original=[17.335], original_unit=["nmol/L"])
    out, _ = normalize_lab_results(df, local_codes={"TT": "2986-8"}, catalog=load_catalog())
    assert out["value"][0] == pytest.approx(500.0, rel=1e-9)
    assert out["unit"][0] == "ng/dL"


def test_unknown_unit_of_catalogued_analyte_is_rejected_not_guessed():
    df = _frame(
        source_code=["E2", "E2"],
        value_num_original=[2.0, 20.0],
        original_unit=["ng/dL", "pg/mL"],
        original_value=["2", "20"],
    )
    out, rejects = normalize_lab_results(df, local_codes={"E2": "2243-4"}, catalog=load_catalog())
    assert out["position"].to_list() == ["p1"]
    assert [(r.position, r.check_name) for r in rejects] == [("p0", "unknown_unit")]


def test_unmapped_analyte_passes_through_with_value_and_unit_as_sent():
    df = _frame(
        source_code=["WBC"],
        source_text=["White cells"],
        value_num_original=[7.1],
        original_unit=["10*3/uL"],
    )
    out, rejects = normalize_lab_results(df, local_codes={}, catalog=load_catalog())
    row = out.row(0, named=True)
    assert rejects == []
    assert (row["is_mapped"], row["loinc_code"], row["value"], row["unit"]) == (
        False,
        None,
        7.1,
        "10*3/uL",
    )


def test_missing_numeric_value_is_not_a_unit_error():
    df = _frame(source_code=["E2"], value_num_original=[None], original_unit=[None])
    out, rejects = normalize_lab_results(df, local_codes={"E2": "2243-4"}, catalog=load_catalog())
    assert rejects == [] and out["value"][0] is None and out["is_mapped"][0]
