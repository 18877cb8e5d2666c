"""The publish's SQL pre-filter of sender-chosen ids and the Python masker apply one rule
(masking.holds_identifier): an id is masked exactly when a word of it holds a known patient
identifier, whichever side decides."""

from __future__ import annotations

import duckdb

from transforms.reporting.masking import identifier_words, mask_identifier_words
from warehouse.publish import mask_lineage_ids

KNOWN = identifier_words(["LGZKXXR5", "12345", "MRN-0042", "Ärzte7788"])
IDS = {
    "LGZKXXR5": "▒▒▒",
    "LGZKXXR5_20200323151748": "▒▒▒_20200323151748",
    "abc12345": "▒▒▒",  # a digit run of the word
    "X-12345-Y": "X-▒▒▒-Y",
    "MRN-0042": "MRN-▒▒▒",  # `MRN` is too short to be an identifier word
    "ärzte7788": "▒▒▒",  # case and accents as the store has them
    "MSG0007": "MSG0007",
    "123456": "123456",  # a digit run is a whole run, not a substring
    "ordLGZKXXR": "ordLGZKXXR",  # letters glued to letters: not found (docs/threat_model.md 9)
}


def test_python_rule():
    assert {i: mask_identifier_words(i, KNOWN) for i in IDS} == IDS
    assert "mrn" not in KNOWN and "0042" in KNOWN


def test_sql_pre_filter_lists_exactly_what_the_rule_masks():
    con = duckdb.connect()
    for schema in ("core", "quality"):
        con.execute("CREATE SCHEMA " + schema)
    con.execute(
        "CREATE TABLE core.fct_lab_result_history AS SELECT unnest($ids) AS filler_order_number, "
        "NULL::VARCHAR AS message_control_id, 'rid' || unnest($ids) AS result_id",
        {"ids": list(IDS)},
    )
    con.execute("CREATE TABLE quality.quarantine (message_control_id VARCHAR)")
    con.execute("CREATE TABLE core.fct_dexa_scan (scan_id VARCHAR)")
    masked = mask_lineage_ids(con, KNOWN, b"key")
    assert masked == sum(1 for i, m in IDS.items() if i != m)
    got = dict(
        con.execute(
            "SELECT result_id, filler_order_number FROM core.fct_lab_result_history"
        ).fetchall()
    )
    assert sorted(got.values()) == sorted(IDS.values())
    # re-keyed ids only where the number was masked
    kept = [rid for rid in got if rid.startswith("rid")]
    assert sorted(kept) == sorted("rid" + i for i, m in IDS.items() if i == m)
