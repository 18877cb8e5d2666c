"""Raw layer: deliveries recorded once by content, duplicates quarantined, re-runs inert."""

import datetime as dt
import time
from zoneinfo import ZoneInfo

import duckdb

from transforms.landing import discover, unsupported_reason
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


def test_every_file_in_a_feed_folder_is_received_and_unreadable_ones_get_a_reason(tmp_path):
    landing = tmp_path / "landing"
    _write(landing / "hl7" / "m.hl7", "MSH|")
    _write(landing / "hl7" / "notes.pdf", "x")
    _write(landing / "hl7" / "batch.hl7.gz", "x")
    _write(landing / "lab_csv" / "loose.csv", "x")  # no source folder
    _write(landing / "lab_csv" / "northlab" / "a.csv", "x")
    _write(landing / "lab_csv" / "nolab" / "a.csv", "x")
    _write(landing / "dexa" / "acme" / "a.csv", "x")
    _write(landing / "hl7" / ".partial", "x")  # hidden: still being written
    _write(landing / "other" / "z.csv", "x")  # not a feed
    found = {f.name: (f.feed, f.source) for f in discover(landing)}
    assert found == {
        "hl7/m.hl7": ("hl7", None),
        "hl7/notes.pdf": ("hl7", None),
        "hl7/batch.hl7.gz": ("hl7", None),
        "lab_csv/loose.csv": ("lab_csv", None),
        "lab_csv/northlab/a.csv": ("lab_csv", "northlab"),
        "lab_csv/nolab/a.csv": ("lab_csv", "nolab"),
        "dexa/acme/a.csv": ("dexa", "acme"),
    }
    reasons = {n: unsupported_reason(feed, src, n) for n, (feed, src) in found.items()}
    assert reasons["hl7/m.hl7"] is None and reasons["lab_csv/northlab/a.csv"] is None
    assert "compressed" in reasons["hl7/batch.hl7.gz"]
    assert "not .pdf" in reasons["hl7/notes.pdf"]
    assert "source folder" in reasons["lab_csv/loose.csv"]
    assert "no mapping" in reasons["lab_csv/nolab/a.csv"]
    assert "vendor folder" in reasons["dexa/acme/a.csv"]


NORTH_CSV = (
    "MRN,PatientName,DOB,CollectionDateTime,TestCode,TestName,Result,Units,RefRange,Flag,"
    "AccessionNo,Status\n"
    "MRN0000042,DOE^JOHN,1958-03-12,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,"
    "10-40,N,A1,F\n"
)


def _staged_state(home):
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return (
            con.execute("SELECT feed, source, name, status FROM raw.files").fetchall(),
            con.execute(
                "SELECT check_name, released_at IS NOT NULL FROM quality.quarantine "
                "ORDER BY quarantine_id"
            ).fetchall(),
            con.execute("SELECT count(*) FROM staging.stg_lab_csv__lab_result").fetchone()[0],
        )
    finally:
        con.close()


def _land_and_stage(home, landing, run_id):
    from warehouse import steps

    steps.start_run(home, run_id, landing)
    steps.land(home, landing, run_id)
    steps.stage(home, "lab_csv", run_id)


def test_bytes_first_sent_to_a_wrong_folder_count_when_sent_to_the_right_one(home, tmp_path):
    steps = [
        # first: the export sits in a folder no mapping covers → put aside whole
        ("north-typo", "failed", [("unsupported_file", False)], 0),
        # the same bytes in the right folder: the delivery that counts, not a duplicate
        ("northlab", "parsed", [("unsupported_file", True)], 1),
    ]
    for i, (folder, status, quarantine, staged) in enumerate(steps):
        landing = tmp_path / f"delivery-{i}"
        _write(landing / "lab_csv" / folder / "jan.csv", NORTH_CSV)
        _land_and_stage(home, landing, f"r{i}")
        name = f"lab_csv/{folder}/jan.csv"
        assert _staged_state(home) == ([("lab_csv", folder, name, status)], quarantine, staged)


def test_misplaced_and_right_copies_in_one_delivery_stage_the_right_one(home, tmp_path):
    landing = tmp_path / "landing"
    _write(landing / "lab_csv" / "aaa-unmapped" / "jan.csv", NORTH_CSV)  # listed first
    _write(landing / "lab_csv" / "northlab" / "jan.csv", NORTH_CSV)
    right = [("lab_csv", "northlab", "lab_csv/northlab/jan.csv", "parsed")]
    _land_and_stage(home, landing, "r1")
    assert _staged_state(home) == (right, [], 1)
    # a further copy in a wrong folder is a duplicate of the staged file, nothing more
    _write(landing / "lab_csv" / "zzz-unmapped" / "jan.csv", NORTH_CSV)
    _land_and_stage(home, landing, "r2")
    assert _staged_state(home) == (right, [("duplicate_file", False)], 1)


MEDS_CSV = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity\n"
    "P1,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30\n"
)


def test_bytes_staged_under_a_wrong_feed_with_nothing_accepted_count_in_the_right_one(
    home, tmp_path
):
    from warehouse import steps

    def deliver(folder: str, run_id: str):
        landing = tmp_path / run_id
        _write(landing / folder / "meds.csv", MEDS_CSV)
        steps.start_run(home, run_id, landing)
        steps.land(home, landing, run_id)
        for feed in ("lab_csv", "meds"):
            steps.stage(home, feed, run_id)
        con = duckdb.connect(str(home.warehouse), read_only=True)
        try:
            return con.execute(
                "SELECT feed, status, n_accepted FROM raw.files"
            ).fetchall(), con.execute(
                "SELECT count(*) FILTER (released_at IS NULL), count(*) FROM quality.quarantine"
            ).fetchone()
        finally:
            con.close()

    # a medication export in a lab folder: read as lab CSV, nothing accepted
    files, (open_rows, _) = deliver("lab_csv/northlab", "r1")
    assert files == [("lab_csv", "parsed", 0)] and open_rows >= 1
    # the same bytes in the medication feed: re-pointed and staged there, lab rejects released
    files, (open_rows, rows) = deliver("meds", "r2")
    assert files == [("meds", "parsed", 1)] and open_rows == 0 and rows >= 1
    # the first delivery's path again: already seen, nothing moves back
    files, (open_rows, _) = deliver("lab_csv/northlab", "r3")
    assert files == [("meds", "parsed", 1)] and open_rows == 0


def test_a_draw_an_hour_ago_is_not_in_the_future_on_a_server_west_of_the_facility(
    home, tmp_path, monkeypatch
):
    # northlab's times are New York's (config/sources/lab_csv/northlab.yaml); this server's
    # clock is Los Angeles', 3 hours behind: a draw of an hour ago reads 2 hours ahead of it.
    # A draw dated 2 days ahead stays in the future.
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        new_york = dt.datetime.now(ZoneInfo("America/New_York")).replace(tzinfo=None)
        header, row = NORTH_CSV.splitlines()
        rows = [
            row.replace("2023-01-05 08:30", f"{at:%Y-%m-%d %H:%M}").replace(",A1,", f",A{i},")
            for i, at in enumerate(
                (new_york - dt.timedelta(hours=1), new_york + dt.timedelta(days=2))
            )
        ]
        _write(
            tmp_path / "landing" / "lab_csv" / "northlab" / "now.csv",
            "\n".join([header, *rows]) + "\n",
        )
        _land_and_stage(home, tmp_path / "landing", "r1")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    _files, quarantine, _staged = _staged_state(home)
    assert quarantine == [("future_date", False)]  # the draw of 2 days ahead only
