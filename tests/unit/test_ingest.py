"""Raw layer: deliveries recorded once by content, duplicates quarantined, re-runs inert."""

import datetime as dt

import duckdb

from transforms.landing import discover
from warehouse import ingest


def _write(p, text):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def _deliver(con, home, landing, run_id):
    return ingest.register_deliveries(
        con, home, discover(landing), run_id=run_id, now=dt.datetime(2024, 1, 1)
    )


def test_same_file_twice_is_recorded_once_and_duplicate_quarantined(home, tmp_path):
    landing = tmp_path / "landing"
    _write(landing / "meds" / "a.csv", "x\n1\n")
    _write(landing / "meds" / "copy_of_a.csv", "x\n1\n")
    _write(landing / "meds" / "b.csv", "x\n2\n")
    con = duckdb.connect(str(home.warehouse))
    ingest.ensure_schema(con)
    res = _deliver(con, home, landing, "r1")
    assert len(res.new_files) == 2
    assert [d.by_check for d in res.duplicates] == [{"duplicate_file": 1}]
    assert con.execute("SELECT count(*) FROM raw.files").fetchone()[0] == 2
    assert con.execute("SELECT count(*) FROM raw.deliveries").fetchone()[0] == 3
    q = con.execute("SELECT check_name, position FROM quality.quarantine").fetchall()
    assert q == [("duplicate_file", "delivery meds/copy_of_a.csv")]
    # archived bytes are the file's bytes
    sha = res.new_files[0][1]
    assert ingest.archive_path(home, sha).read_bytes() in (b"x\n1\n", b"x\n2\n")

    # the same landing folder again: nothing new, nothing quarantined again
    res2 = _deliver(con, home, landing, "r2")
    assert res2.new_files == [] and res2.duplicates == []
    assert con.execute("SELECT count(*) FROM quality.quarantine").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM raw.deliveries").fetchone()[0] == 3


def test_files_outside_feed_layout_are_ignored(tmp_path):
    landing = tmp_path / "landing"
    _write(landing / "hl7" / "m.hl7", "MSH|")
    _write(landing / "hl7" / "notes.pdf", "x")
    _write(landing / "lab_csv" / "loose.csv", "x")  # no source folder
    _write(landing / "lab_csv" / "northlab" / "a.csv", "x")
    _write(landing / "other" / "z.csv", "x")
    found = [(f.feed, f.source, f.name) for f in discover(landing)]
    assert found == [("hl7", None, "hl7/m.hl7"), ("lab_csv", "northlab", "lab_csv/northlab/a.csv")]
