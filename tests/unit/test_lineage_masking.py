"""The publish's SQL pre-filter of sender-chosen ids and the Python masker apply one rule:
an id of a record is masked where it holds, in any case, one of that record's own patient's
identifiers (4 characters or more); the result ids of masked order numbers are re-keyed."""

from __future__ import annotations

import duckdb
import polars as pl

from transforms.reporting.masking import identifier_spelling, mask_identifiers_in
from warehouse.publish import mask_lineage_ids

PATIENTS = {"pk1": ["LGZKXXR5", "42"], "pk2": ["12345", "Ärzte7788"]}
IDS = [  # (patient, id as sent, as shown)
    ("pk1", "LGZKXXR5", "▒▒▒"),
    ("pk1", "LGZKXXR5_20200323151748", "▒▒▒_20200323151748"),
    ("pk1", "LGZKXXR520200323", "▒▒▒20200323"),  # glued to the time
    ("pk1", "ordlgzkxxr5", "ord▒▒▒"),  # any case
    ("pk1", "ACC12345", "ACC12345"),  # the other patient's MRN: no identifier of pk1
    ("pk1", "X42Y", "X42Y"),  # identifiers under 4 characters are not looked for
    ("pk2", "X-12345-Y", "X-▒▒▒-Y"),
    ("pk2", "ÄRZTE7788-1", "▒▒▒-1"),
    ("pk2", "MSG0007", "MSG0007"),
]


def _identifiers() -> pl.DataFrame:
    rows = [(k, s) for k, ids in PATIENTS.items() for i in ids if (s := identifier_spelling(i))]
    return pl.DataFrame(
        rows, schema={"patient_key": pl.String, "identifier": pl.String}, orient="row"
    )


def test_python_rule():
    spelled = {k: [s for i in ids if (s := identifier_spelling(i))] for k, ids in PATIENTS.items()}
    assert {(k, i): mask_identifiers_in(i, spelled[k]) for k, i, _ in IDS} == {
        (k, i): shown for k, i, shown in IDS
    }


def test_sql_pre_filter_lists_exactly_what_the_rule_masks():
    con = duckdb.connect()
    for schema in ("core", "quality"):
        con.execute("CREATE SCHEMA " + schema)
    con.execute(
        "CREATE TABLE core.fct_lab_result_history AS SELECT unnest($k) AS patient_key, "
        "unnest($ids) AS filler_order_number, NULL::VARCHAR AS message_control_id, "
        "'rid' || unnest($ids) AS result_id",
        {"k": [k for k, _, _ in IDS], "ids": [i for _, i, _ in IDS]},
    )
    con.execute("CREATE TABLE quality.quarantine (message_control_id VARCHAR)")
    con.execute("CREATE TABLE core.fct_dexa_scan (patient_key VARCHAR, scan_id VARCHAR)")
    masked = mask_lineage_ids(con, _identifiers(), b"key")
    assert masked == sum(1 for _, i, shown in IDS if i != shown)
    got = dict(
        con.execute(
            "SELECT result_id, filler_order_number FROM core.fct_lab_result_history"
        ).fetchall()
    )
    assert sorted(got.values()) == sorted(shown for _, _, shown in IDS)
    # re-keyed ids only where the number was masked
    kept = sorted(rid for rid in got if rid.startswith("rid"))
    assert kept == sorted("rid" + i for _, i, shown in IDS if i == shown)
