"""A file its parser cannot read is quarantined whole; the next file still loads."""

import datetime as dt

import duckdb

from transforms import parsers
from transforms.landing import discover
from transforms.pseudonym import make_pseudonymizer
from warehouse import ingest
from warehouse.identity import IdentityStore

HEADER = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity\n"
)
ROW = "MRN0000001,NORTH_CLINIC,dispense,199224,anastrozole 1 MG,1,mg,daily,2020-01-01,,30,30\n"


def test_poison_file_quarantined_and_feed_keeps_flowing(home, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    (landing / "meds").mkdir(parents=True)
    (landing / "meds" / "a_poison.csv").write_text(HEADER + "SECRET-MRN,boom\n")
    (landing / "meds" / "b_good.csv").write_text(HEADER + ROW)
    real = parsers.iter_parse_file

    def flaky(feed, source, name, path, **kw):
        if name.endswith("a_poison.csv"):
            raise UnicodeDecodeError("utf-8", b"SECRET-MRN", 0, 1, "bad byte")
        yield from real(feed, source, name, path, **kw)

    monkeypatch.setattr(ingest, "iter_parse_file", flaky)
    con = duckdb.connect(str(home.warehouse))
    ingest.ensure_schema(con)
    now = dt.datetime(2024, 1, 1)
    ingest.register_deliveries(con, home, discover(landing), run_id="r", now=now)
    results = {}
    with IdentityStore(home.identity_db) as ids:
        for sha, source, name in ingest.files_to_stage(con, "meds"):
            results[name] = ingest.stage_file(
                con,
                home,
                ids,
                feed="meds",
                source=source,
                name=name,
                file_sha256=sha,
                pseudonymize=make_pseudonymizer(b"k"),
                run_id="r",
                as_of=now,
            )
    poison, good = results["meds/a_poison.csv"], results["meds/b_good.csv"]
    assert (poison.received, poison.quarantined, poison.by_check) == (1, 1, {"unreadable_file": 1})
    assert (good.received, good.accepted) == (1, 1)
    reason = con.execute("SELECT reason FROM quality.quarantine").fetchone()[0]
    assert "UnicodeDecodeError" in reason and "SECRET" not in reason
    assert con.execute("SELECT count(*) FROM staging.stg_meds__medication").fetchone()[0] == 1
    statuses = dict(con.execute("SELECT name, status FROM raw.files").fetchall())
    assert statuses == {"meds/a_poison.csv": "failed", "meds/b_good.csv": "parsed"}
