"""core.fct_medication: one row per distinct record, with an id that tells records apart."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from schemas.staging import StgMedication, columns_of
from warehouse.runner import materialize


def build(records: list[dict]) -> list[tuple]:
    con = duckdb.connect()
    base = {
        "file_sha256": "f1",
        "source_system": "meds",
        "patient_key": "pk",
        "record_type": "order",
    }
    frame = pl.DataFrame(
        [{**base, "position": f"line {i + 2}", **r} for i, r in enumerate(records)],
        schema=columns_of(StgMedication),
    )
    con.execute(
        "CREATE SCHEMA staging; CREATE SCHEMA raw; CREATE SCHEMA quality; CREATE SCHEMA core"
    )
    con.register("frame_in", frame.to_arrow())
    con.execute("CREATE TABLE staging.stg_meds__medication AS SELECT * FROM frame_in")
    con.execute(
        "CREATE TABLE raw.files AS SELECT 'f1' AS file_sha256, 'parsed' AS status, "
        "TIMESTAMP '2024-01-01' AS received_at"
    )
    con.execute("CREATE TABLE quality.held_records (file_sha256 VARCHAR, position VARCHAR)")
    materialize(con, "core.fct_medication", {})
    return con.execute(
        "SELECT medication_record_id, dose_value, quantity FROM core.fct_medication ORDER BY ALL"
    ).fetchall()


def test_a_value_in_another_field_is_another_record():
    # the same number as dose (30, no quantity) or as quantity (30, no dose): two records
    # with two ids (a NULL-skipping concatenation gave both the same id)
    start = dt.date(2020, 1, 1)
    rows = build(
        [
            {"rxnorm_code": "199224", "start_date": start, "dose_value": 30.0},
            {"rxnorm_code": "199224", "start_date": start, "quantity": 30.0},
            {"rxnorm_code": "199224", "start_date": start, "quantity": 30.0},  # same record again
        ]
    )
    assert len(rows) == 2
    assert len({r[0] for r in rows}) == 2
    assert {(r[1], r[2]) for r in rows} == {(None, 30.0), (30.0, None)}
