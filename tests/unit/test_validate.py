import datetime as dt

import polars as pl

from schemas.staging import StgDexaScan, StgLabResult, StgMedication, empty_frame
from schemas.validate import validate

AS_OF = dt.datetime(2026, 1, 1)


def _lab(values, dates, analyte="estradiol", unit="pg/mL"):
    n = len(values)
    rows = pl.DataFrame(
        {
            "file_sha256": ["f"] * n,
            "position": [f"line {i + 2}" for i in range(n)],
            "source_system": ["s"] * n,
            "patient_key": ["pk"] * n,
            "is_mapped": [True] * n,
            "analyte": [analyte] * n,
            "unit": [unit] * n,
            "value": values,
            "collected_at": dates,
        }
    )
    return pl.concat([empty_frame(StgLabResult), rows], how="diagonal_relaxed")


def test_plausible_range_and_future_date_from_config():
    d = dt.datetime(2020, 5, 1)
    df = _lab([20.0, 40000.0, 40000.5, -0.1, 15.0], [d, d, d, d, dt.datetime(2099, 1, 1)])
    got = sorted((r.position, r.check_name) for r in validate("lab_result", df, AS_OF))
    # estradiol pg/mL plausible range is [0, 40000] (config/plausible_ranges.csv, DOMAIN.md)
    assert got == [
        ("line 4", "implausible_value"),
        ("line 5", "implausible_value"),
        ("line 6", "future_date"),
    ]


def test_reasons_carry_no_patient_key():
    df = _lab([99999.0], [dt.datetime(2020, 1, 1)])
    (r,) = validate("lab_result", df, AS_OF)
    assert "pk" not in r.reason.replace("pg/mL", "") and "99999" in r.reason


def test_unknown_analyte_has_no_range_and_passes():
    df = _lab([123456.0], [dt.datetime(2020, 1, 1)], analyte="White cells", unit="10*3/uL")
    assert validate("lab_result", df, AS_OF) == []


def _staged(model, defaults: dict, **columns):
    """Staged rows of ``model`` from line 2 on: ``columns`` (lists of one length) over
    ``defaults`` (one value for every row)."""
    n = len(next(iter(columns.values())))
    base = {
        "file_sha256": ["f"] * n,
        "position": [f"line {i + 2}" for i in range(n)],
        "patient_key": ["pk"] * n,
        **{name: [value] * n for name, value in defaults.items()},
    }
    return pl.concat(
        [empty_frame(model), pl.DataFrame({**base, **columns})], how="diagonal_relaxed"
    )


def _scans(**columns):
    return _staged(StgDexaScan, {"source_system": "h", "site": "total_hip"}, **columns)


def test_dexa_bmd_range():
    df = _scans(bmd_g_cm2=[1.02, 9.9], scan_date=[dt.date(2020, 1, 1)] * 2)
    rejects = validate("dexa_scan", df, AS_OF)
    assert [(r.position, r.check_name) for r in rejects] == [("line 3", "implausible_value")]
    # the excerpt names the measures the row has (no "T None Z None")
    assert rejects[0].excerpt == "total_hip BMD 9.9"


def test_bmd_range_is_the_sites_own():
    # spine, total hip and femoral neck: 0.2–2.5 g/cm²; any other region only 0.05–4.0 (a
    # unit slip or a zero), so Ward's triangle at 0.19 (osteoporosis) or a total-body skull at
    # 2.64 does not put aside the record that also carries the main sites
    sites = ["wards", "tb_head", "total_hip", "femoral_neck", "tb_head", "wards"]
    bmds = [0.19, 2.64, 0.19, 2.6, 40.0, 0.0]
    rows = pl.DataFrame(
        {
            "file_sha256": ["f"] * 6,
            "position": [f"line {i + 2}" for i in range(6)],
            "source_system": ["h"] * 6,
            "patient_key": ["pk"] * 6,
            "site": sites,
            "bmd_g_cm2": bmds,
            "scan_date": [dt.date(2020, 1, 1)] * 6,
        }
    )
    df = pl.concat([empty_frame(StgDexaScan), rows], how="diagonal_relaxed")
    rejects = validate("dexa_scan", df, AS_OF)
    assert [r.position for r in rejects] == ["line 4", "line 5", "line 6", "line 7"]
    assert "outside BMD (0.2, 2.5) g/cm²" in rejects[0].reason
    assert "outside BMD (0.05, 4.0) g/cm²" in rejects[2].reason


def test_excerpt_numbers_carry_no_conversion_noise():
    # 25.6 pmol/L × 0.2724… is 6.973576682102969 pg/mL: shown to ten significant digits
    df = _lab([-6.973576682102969], [dt.datetime(2020, 5, 1)])
    [reject] = validate("lab_result", df, AS_OF)
    assert reject.excerpt == "estradiol -6.973576682 pg/mL"


def test_a_status_outside_table_0085_is_put_aside_with_a_reason():
    # core orders versions by status (F, C, P, … in any case; NULL = F); anything else would
    # stop core's contract check, so it is quarantined here as unparseable_value
    d = dt.datetime(2020, 5, 1)
    df = _lab([20.0] * 5, [d] * 5).with_columns(
        pl.Series("result_status", ["F", "c", None, "FINAL", "Z9"])
    )
    got = validate("lab_result", df, AS_OF)
    assert [(r.position, r.check_name) for r in got] == [
        ("line 5", "unparseable_value"),
        ("line 6", "unparseable_value"),
    ]
    # the cell is shown by redact's rule: a word that could be a name only by its shape
    assert got[0].reason.startswith("result status 'aaaaa' is not an HL7 table 0085 code (F, C,")
    assert got[1].reason.startswith("result status 'Z9' is not")


def test_excerpts_quote_catalog_names_not_free_text():
    # an unmapped result shows its code by rule, a medication its catalog ingredient: the
    # sent text (`John Smith` in a drug name) never reaches a reason or an excerpt
    d = dt.datetime(2099, 5, 1)
    lab = _lab([5.0], [d], analyte="Smith John 1958-03-12", unit="pg/mL").with_columns(
        pl.lit(False).alias("is_mapped"), pl.lit("XYZ").alias("source_code")
    )
    (r,) = validate("lab_result", lab, AS_OF)
    assert r.excerpt == "unmapped XYZ 5.0 pg/mL" and "Smith" not in r.reason
    med = _meds(
        drug_name=["anastrozole for John Smith MRN0000042"],
        dose_value=[1.0],
        dose_unit=["mg"],
        start_date=[dt.date(2099, 1, 1)],
    )
    (m,) = validate("medication", med, AS_OF)
    assert m.check_name == "future_date"
    assert m.excerpt == "anastrozole 1.0 mg"
    assert "John" not in m.reason + m.excerpt


def test_an_identifier_typed_into_a_value_cell_is_shown_by_its_shape_only():
    # a birth date (19580312) or an MRN sent as OBX-5 is implausible for every analyte; the
    # reason and excerpt must not quote it (docs/hl7.md: OBX-5 as it is only when it looks
    # like data), neither as sent nor after a unit conversion turned it into a decimal
    d = dt.datetime(2020, 5, 1)
    df = _lab([19580312.0, 5333781.803323345, 45000.0], [d] * 3).with_columns(
        pl.Series("value_num_original", [19580312.0, 19580312.0, 45000.0]),
        pl.Series("original_unit", ["pg/mL", "pmol/L", "pg/mL"]),
    )
    got = validate("lab_result", df, AS_OF)
    assert [r.check_name for r in got] == ["implausible_value"] * 3
    text = " ".join(f"{r.reason} {r.excerpt}" for r in got)
    assert "1958" not in text and "5333781" not in text
    assert got[0].excerpt == "estradiol 99999999 pg/mL (as sent)"
    assert got[1].excerpt == "estradiol 99999999 pmol/L (as sent)"
    # a plausible-looking number of five digits is data: shown as it is
    assert got[2].excerpt == "estradiol 45000.0 pg/mL"
    # the text as sent decides: an MRN with leading zeros (0045000, the float 45000.0 alone
    # would be shown) and an SN's caret is no reason to mask `>^45000`
    df = _lab([45000.0, 45000.0], [d] * 2).with_columns(
        pl.Series("value_num_original", [45000.0, 45000.0]),
        pl.Series("original_value", ["0045000", ">^45000"]),
        pl.Series("original_unit", ["pg/mL", "pg/mL"]),
    )
    first, second = validate("lab_result", df, AS_OF)
    assert first.excerpt == "estradiol 9999999 pg/mL (as sent)" and "45000" not in first.reason
    assert second.excerpt == "estradiol 45000.0 pg/mL"


def test_a_dexa_number_that_could_be_an_identifier_is_shaped():
    dexa = pl.concat(
        [
            empty_frame(StgDexaScan),
            pl.DataFrame(
                {
                    "file_sha256": ["f"],
                    "position": ["line 2"],
                    "source_system": ["h"],
                    "patient_key": ["pk"],
                    "site": ["total_hip"],
                    "bmd_g_cm2": [5550102.0],
                    "scan_date": [dt.date(2020, 1, 1)],
                }
            ),
        ],
        how="diagonal_relaxed",
    )
    (r,) = validate("dexa_scan", dexa, AS_OF)
    assert r.excerpt == "total_hip BMD 9999999" and "5550102" not in r.reason


def test_null_date_placeholders_and_dates_before_birth_are_implausible():
    # 1900-01-01 (a null-date placeholder) is before 1950-01-01; a result of 1959 for a man
    # born in 1960 is before his birth year; 1950-01-01 itself and the birth year pass
    dates = [dt.datetime(1900, 1, 1), dt.datetime(1959, 6, 1), dt.datetime(1950, 1, 1),
             dt.datetime(1960, 3, 1), dt.datetime(2020, 1, 1)]  # fmt: skip
    df = _lab([20.0] * 5, dates).with_columns(
        pl.Series("birth_year", [1920, 1960, 1920, 1960, None])
    )
    rejects = validate("lab_result", df, AS_OF)
    assert [(r.position, r.check_name) for r in rejects] == [
        ("line 2", "implausible_date"),
        ("line 3", "implausible_date"),
    ]
    # the year only: a date this early may be a birth date in the wrong column
    assert "in 1900 is before 1950-01-01" in rejects[0].reason
    assert "01-01" not in rejects[0].reason.replace("1950-01-01", "")
    assert "in 1959 is before the birth year" in rejects[1].reason
    assert "1960" not in rejects[1].reason and "06-01" not in rejects[1].reason

    df = _scans(
        bmd_g_cm2=[1.02, 1.02],
        scan_date=[dt.date(1899, 12, 30), dt.date(2001, 1, 1)],
        birth_year=[1950, 2002],
    )
    assert [(r.position, r.check_name) for r in validate("dexa_scan", df, AS_OF)] == [
        ("line 2", "implausible_date"),
        ("line 3", "implausible_date"),
    ]

    df = _meds(
        dose_value=[1.0] * 2,
        dose_unit=["mg"] * 2,
        start_date=[dt.date(1900, 1, 1), dt.date(2020, 1, 1)],
    )
    assert [(r.position, r.check_name) for r in validate("medication", df, AS_OF)] == [
        ("line 2", "implausible_date"),
    ]


def _meds(**columns):
    defaults = {
        "source_system": "meds",
        "ingredient": "anastrozole",
        "frequency_is_unread": False,
        "end_date_is_derived": False,
        "days_supply_is_derived": False,
    }
    return _staged(StgMedication, defaults, **columns)


def test_a_dispense_covering_more_days_than_one_fill_can_is_implausible():
    # config/medication_limits.csv max_dispense_days = 400: 2022-01-01 … 2023-02-04 is 400
    # days (365 + 35), … 2023-02-05 is 401; an order states intent (a standing prescription
    # may span years) and is not bounded; an untyped record counts as a dispense
    start = dt.date(2022, 1, 1)
    df = _meds(
        record_type=["dispense", "dispense", "order", None],
        start_date=[start] * 4,
        end_date=[
            dt.date(2023, 2, 4),
            dt.date(2023, 2, 5),
            dt.date(2030, 1, 1),
            dt.date(2023, 2, 5),
        ],
    )
    got = validate("medication", df, AS_OF)
    assert [(r.position, r.check_name) for r in got] == [
        ("line 3", "implausible_value"),
        ("line 5", "implausible_value"),
    ]
    assert "covers 401 days" in got[0].reason and "400" in got[0].reason


def test_pharmacy_reversals_and_impossible_doses_are_put_aside():
    # finding: quantity -30 (a reversal) loaded as a dispense; 1 g of anastrozole (1 mg
    # tablets; plausible 0.125 … 10 mg per administration, config/medications.csv) was
    # accepted; 1e308 g became dose_mg = inf
    from transforms.meds import parse_meds_csv

    rows = [
        "P1,N,dispense,199224,anastrozole,1,mg,daily,2022-01-01,,30,-30",  # 2 reversal
        "P2,N,dispense,199224,anastrozole,1,g,daily,2022-01-01,,30,30",  # 3 1000 mg
        "P3,N,dispense,199224,anastrozole,1e308,g,daily,2022-01-01,,30,30",  # 4 inf mg
        "P4,N,dispense,199224,anastrozole,1,mg,daily,2022-01-01,,-30,30",  # 5 reversal
        "P5,N,dispense,199224,anastrozole,1,mg,daily,2022-01-01,,0,30",  # 6
        "P6,N,dispense,199224,anastrozole,0,mg,daily,2022-01-01,,30,0",  # 7 zero quantity
        "P7,N,dispense,199224,anastrozole,0.125,mg,daily,2022-01-01,,30,30",  # 8 lowest
        "P8,N,dispense,151124,anastrozole,10,tablet,daily,2022-01-01,,30,300",  # 9 10 mg
        "P9,N,dispense,199224,anastrozole,0.1,mg,daily,2022-01-01,,30,30",  # 10 below
        "P10,N,dispense,835840,testosterone,1,mL,weekly,2022-01-01,,28,4",  # 11 200 mg
        "P11,N,dispense,835840,testosterone,5,mL,weekly,2022-01-01,,28,4",  # 12 1000 mg
        "P12,N,dispense,999999,vitamin D,1,g,daily,2022-01-01,,30,30",  # 13 no range
        "P13,N,dispense,199224,anastrozole,1,mg,daily,2022-01-01,,30,19580312",  # 14
    ]
    header = (
        "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
        "frequency,start_date,end_date,days_supply,quantity"
    )
    parsed = parse_meds_csv(
        "\n".join([header, *rows]).encode(), file_sha256="f", pseudonymize=lambda n, i: i
    )
    rejects = parsed.rejects + validate("medication", parsed.rows, AS_OF)
    got = {r.position: (r.check_name, r.reason) for r in rejects}
    assert {p: c for p, (c, _) in got.items()} == {
        "line 2": "implausible_value",
        "line 3": "implausible_value",
        "line 4": "unparseable_value",
        "line 5": "implausible_value",
        "line 6": "implausible_value",
        "line 7": "implausible_value",
        "line 10": "implausible_value",
        "line 12": "implausible_value",
    }
    assert "quantity -30.0 ≤ 0" in got["line 2"][1]
    assert "1000.0 mg per administration outside anastrozole's [0.125, 10.0] mg" in got["line 3"][1]
    assert "not a finite number" in got["line 4"][1]
    assert "days_supply -30 is not positive" in got["line 5"][1]
    assert "0.1 mg per administration outside" in got["line 10"][1]
    assert "1000.0 mg per administration outside testosterone's" in got["line 12"][1]
    # the patient ids (P1 …) and an identifier-like quantity are never quoted
    text = " ".join(f"{r.reason} {r.excerpt}" for r in rejects)
    assert "19580312" not in text and "P1" not in text
