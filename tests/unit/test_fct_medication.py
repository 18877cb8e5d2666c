"""core.fct_medication: one row per distinct record, with an id that tells records apart."""

from __future__ import annotations

import datetime as dt

import duckdb
from staging_fixture import core_from_staged

from schemas.staging import StgMedication
from transforms.meds import parse_meds_csv

RUN_1 = dt.datetime(2024, 1, 1)
RUN_2 = dt.datetime(2024, 2, 1)


def build(records: list[dict], files: dict | None = None) -> duckdb.DuckDBPyConnection:
    """Records default to file f1, patient pk, an order, at lines 2, 3, …"""
    base = {
        "file_sha256": "f1",
        "source_system": "meds",
        "patient_key": "pk",
        "record_type": "order",
    }
    rows = [{**base, "position": f"line {i + 2}", **r} for i, r in enumerate(records)]
    return core_from_staged(
        "core.fct_medication",
        "stg_meds__medication",
        StgMedication,
        rows,
        files or {"f1": ("meds/a.csv", RUN_1)},
    )


def ids_doses_quantities(records: list[dict]) -> list[tuple]:
    return (
        build(records)
        .execute(
            "SELECT medication_record_id, dose_value, quantity FROM core.fct_medication ORDER BY ALL"
        )
        .fetchall()
    )


def test_a_value_in_another_field_is_another_record():
    # the same number as dose (30, no quantity) or as quantity (30, no dose): two records
    # with two ids (a NULL-skipping concatenation gave both the same id)
    start = dt.date(2020, 1, 1)
    rows = ids_doses_quantities(
        [
            {"rxnorm_code": "199224", "start_date": start, "dose_value": 30.0},
            {"rxnorm_code": "199224", "start_date": start, "quantity": 30.0},
            {"rxnorm_code": "199224", "start_date": start, "quantity": 30.0},  # same record again
        ]
    )
    assert len(rows) == 2
    assert len({r[0] for r in rows}) == 2
    assert {(r[1], r[2]) for r in rows} == {(None, 30.0), (30.0, None)}


def test_the_dose_unit_and_days_supply_tell_records_apart():
    # 0.5 mL of a 200 mg/mL injection and 0.5 mg are two doses; a record re-sent with another
    # days supply is another record. The same record twice is one.
    start = dt.date(2022, 3, 1)
    same = {"rxnorm_code": "835840", "start_date": start, "dose_value": 0.5, "quantity": 5.0}
    con = build(
        [
            {**same, "dose_unit": "mL", "days_supply": 70},
            {**same, "dose_unit": "mg", "days_supply": 70},
            {**same, "dose_unit": "mg", "days_supply": 35},
            {**same, "dose_unit": "mg", "days_supply": 35},
        ]
    )
    got = con.execute(
        "SELECT dose_unit, days_supply, position FROM core.fct_medication ORDER BY ALL"
    ).fetchall()
    assert got == [("mL", 70, "line 2"), ("mg", 35, "line 4"), ("mg", 70, "line 3")]


def test_the_first_copy_received_is_kept_in_line_file_and_run_order():
    # one record at lines 9 and 10 of one file: line 9 (text order would pick 'line 10');
    # a copy in an earlier run wins over both; within a run the first landing name wins
    rec = {"rxnorm_code": "199224", "start_date": dt.date(2021, 5, 1), "drug_name": "x"}
    rows = [{**rec, "position": "line 10"}, {**rec, "position": "line 9"}]
    con = build(rows)
    assert con.execute("SELECT position FROM core.fct_medication").fetchall() == [("line 9",)]

    named = [
        {**rec, "file_sha256": "aa", "position": "line 2", "drug_name": "from b"},
        {**rec, "file_sha256": "ff", "position": "line 2", "drug_name": "from a"},
    ]
    files = {"aa": ("meds/b.csv", RUN_1), "ff": ("meds/a.csv", RUN_1)}
    con = build(named, files)
    assert con.execute("SELECT drug_name FROM core.fct_medication").fetchall() == [("from a",)]
    files = {"aa": ("meds/b.csv", RUN_1), "ff": ("meds/a.csv", RUN_2)}
    con = build(named, files)
    assert con.execute("SELECT drug_name FROM core.fct_medication").fetchall() == [("from b",)]


HEADER = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity"
)


def parsed(files: dict[str, list[str]]) -> duckdb.DuckDBPyConnection:
    """core.fct_medication of CSV files (sha → rows) parsed as the pipeline parses them,
    received in the order given (one run apart)."""
    rows, received = [], {}
    for i, (sha, lines) in enumerate(files.items()):
        data = "\n".join([HEADER, *lines]).encode()
        result = parse_meds_csv(data, file_sha256=sha, pseudonymize=lambda ns, pid: f"{ns}|{pid}")
        assert result.rejects == []
        rows += result.rows.to_dicts()
        received[sha] = (f"meds/{sha}.csv", RUN_1 + dt.timedelta(days=i))
    return core_from_staged(
        "core.fct_medication", "stg_meds__medication", StgMedication, rows, received
    )


def test_a_re_extraction_with_cosmetic_differences_is_the_same_record():
    # finding: 199224 / 199224.0, 1 mg / 1 MG / 1 tablet (of a 1 mg tablet), daily / QD / once
    # daily: one dispense, one row (the first copy received), not two that doubled the dose
    con = parsed(
        {
            "a": ["P1,NORTH,dispense,199224,anastrozole 1 MG Oral Tablet,1,mg,daily,2022-01-01,,30,30"],
            "b": ["P1,NORTH,dispense,199224.0,ANASTROZOLE 1MG TAB,1,MG,QD,2022-01-01,,30,30"],
            "c": ["P1,NORTH,dispense,199224,anastrozole,1,tablet,Once Daily,2022-01-01,2022-01-30,,30"],
            "d": ["P1,NORTH,dispense,199224,anastrozole,1000,mcg,1 tab by mouth daily,2022-01-01,,30,30.0"],
        }
    )  # fmt: skip
    assert con.execute(
        "SELECT file_sha256, dose_unit, frequency FROM core.fct_medication"
    ).fetchall() == [("a", "mg", "daily")]


def test_records_whose_normalised_content_differs_stay_apart():
    # 0.5 mL of a 200 mg/mL injection is 100 mg, 0.5 mg is 0.5 mg: two doses. Another
    # frequency (2/7 vs 1/7), another quantity, an unread frequency other than another: apart.
    # Unread texts that differ only in case and spacing are one.
    con = parsed(
        {
            "a": [
                "P1,NORTH,order,835840,testosterone,0.5,mL,weekly,2022-03-01,,70,5",
                "P1,NORTH,order,835840,testosterone,0.5,mg,weekly,2022-03-01,,70,5",
                "P1,NORTH,order,835840,testosterone,0.5,mL,twice weekly,2022-03-01,,70,5",
                "P1,NORTH,order,835840,testosterone,0.5,mL,weekly,2022-03-01,,70,10",
                "P1,NORTH,order,835840,testosterone,0.5,mL,as directed,2022-03-01,,70,5",
                "P1,NORTH,order,835840,testosterone,0.5,mL,per clinic,2022-03-01,,70,5",
            ],
            "b": ["P1,NORTH,order,835840,testosterone,0.5,ML,As  Directed,2022-03-01,,70,5"],
        }
    )
    got = con.execute("SELECT position FROM core.fct_medication ORDER BY ALL").fetchall()
    assert got == [(f"line {n}",) for n in range(2, 8)]
