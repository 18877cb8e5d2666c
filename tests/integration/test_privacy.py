"""Privacy: patient identifiers stay in the restricted identity store and nowhere else.

A generated cohort goes through the whole Dagster pipeline in a subprocess whose every
Python logger is at DEBUG (Dagster's console logger too), and whose stdout/stderr are kept;
then the run's Dagster event log, everything under ``$LABWH_HOME/dagster``, the CLI outputs
(`labwh quarantine list`, `labwh sql --csv` on the quarantine), every table and view of the
writer's warehouse and of the published snapshot, and every report file are searched for the
cohort's MRNs (and other PID-3 identifiers), family and given names and birth dates (ISO,
HL7, US and German spellings). The identifiers searched for are read back from the identity
store itself, so every identifier the feeds carried is covered.
"""

from __future__ import annotations

import html
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "privacy-test-key"

RUN = textwrap.dedent(
    """
    import logging, sys
    from pathlib import Path
    fmt = "%(name)s %(levelname)s %(message)s"
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, force=True, format=fmt)
    from pipelines.cli import _print_run_summary, run_pipeline
    from warehouse.home import Home
    handler = logging.StreamHandler(sys.stderr)
    for name in list(logging.root.manager.loggerDict):
        lg = logging.getLogger(name)
        lg.setLevel(logging.DEBUG)
        if not lg.propagate:
            lg.addHandler(handler)
    home = Home.from_env()
    debug = {"loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
    result = run_pipeline(home, Path(sys.argv[1]), run_config=debug)
    _print_run_summary(home, result.run_id)
    import dagster as dg
    instance = dg.DagsterInstance.get()
    for entry in instance.all_logs(result.run_id):
        print("EVENT", repr(entry))
    # the user-facing CLI outputs, in the same process (same DEBUG logging): no restart cost
    from pipelines.cli import main
    for argv in (["quarantine", "list", "--all"], ["status"],
                 ["sql", "--csv", "-c", "SELECT * FROM quality.quarantine"], ["report"]):
        print("CLI", " ".join(argv), flush=True)
        assert main(argv) == 0
    """
)


def _python(env, *args):
    out = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    from transforms.generate import generate

    base = tmp_path_factory.mktemp("privacy")
    generate(6, 21, base / "gen")
    home = base / "home"
    env = {
        **os.environ,
        "LABWH_HOME": str(home),
        "LABWH_HMAC_KEY": KEY,
        "DAGSTER_HOME": str(home / "dagster"),
        "PYTHONPATH": str(ROOT),
    }
    run = _python(env, "-c", RUN, str(base / "gen" / "landing"))
    outputs = {"run stdout": run.stdout, "run stderr (DEBUG logs)": run.stderr}
    return {"home": home, "gen": base / "gen", "outputs": outputs}


def identifiers(identity_db: Path) -> dict[str, set[str]]:
    """Every identifier of the cohort, in the spellings feeds and tools use."""
    con = duckdb.connect(str(identity_db), read_only=True)
    try:
        rows = con.execute(
            "SELECT identifier, family_name, given_name, birth_date FROM patient_identifier"
        ).fetchall()
    finally:
        con.close()
    out: dict[str, set[str]] = {"identifier": set(), "name": set(), "birth_date": set()}
    for ident, family, given, birth in rows:
        out["identifier"].add(ident)
        for name in (family, given):
            if name and len(name) >= 3:
                out["name"].update({name, name.upper()})
        if birth:
            y, m, d = birth.split("-")
            out["birth_date"].update({birth, f"{y}{m}{d}", f"{m}/{d}/{y}", f"{d}.{m}.{y}"})
    return out


def find_identifiers(text: str, ids: dict[str, set[str]]) -> list[str]:
    text = html.unescape(text)
    hits = []
    for kind, values in ids.items():
        for v in values:
            if re.search(r"(?<![\w])" + re.escape(v) + r"(?![\w])", text):
                hits.append(f"{kind} {v[:3]}…")
    return hits


def database_text(path: Path) -> dict[str, str]:
    """Every table and view of a DuckDB file as text (all columns cast to VARCHAR)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
            "UNION ALL SELECT schema_name || '.' || view_name FROM duckdb_views() "
            "WHERE NOT internal"
        ).fetchall()
        out = {}
        for (name,) in names:
            rows = con.execute("SELECT * FROM " + name).fetchall()  # noqa: S608
            out[name] = "\n".join("|".join(map(str, r)) for r in rows)
        return out
    finally:
        con.close()


def test_the_cohort_has_identifiers_to_look_for(full_run):
    ids = identifiers(full_run["home"] / "restricted" / "identity.duckdb")
    assert len(ids["identifier"]) >= 6 and ids["name"] and ids["birth_date"]
    # the search really finds them where they are: in the landing files
    landing = "".join(
        p.read_bytes().decode("utf-8", "replace")
        for p in (full_run["gen"] / "landing").rglob("*")
        if p.is_file() and "lunar" not in p.parts
    )
    found = find_identifiers(landing, ids)
    assert any(h.startswith("identifier") for h in found)
    assert any(h.startswith("birth_date") for h in found)
    assert any(h.startswith("name") for h in found)


def test_no_identifier_in_logs_console_or_cli_output(full_run):
    ids = identifiers(full_run["home"] / "restricted" / "identity.duckdb")
    outputs = full_run["outputs"]
    assert "DEBUG" in outputs["run stderr (DEBUG logs)"]  # the capture really is at DEBUG
    assert "EVENT" in outputs["run stdout"]
    # quarantine list, status, sql --csv and report ran
    assert "CLI report" in outputs["run stdout"] and "CLI status" in outputs["run stdout"]
    leaks = {name: find_identifiers(text, ids) for name, text in outputs.items()}
    assert not any(leaks.values()), leaks


def test_no_identifier_in_dagster_storage_or_compute_logs(full_run):
    ids = identifiers(full_run["home"] / "restricted" / "identity.duckdb")
    leaks = {}
    for path in (full_run["home"] / "dagster").rglob("*"):
        if path.is_file():
            hits = find_identifiers(path.read_bytes().decode("utf-8", "replace"), ids)
            if hits:
                leaks[str(path.relative_to(full_run["home"]))] = hits
    assert not leaks


@pytest.mark.parametrize("db", ["published/analytics.duckdb", "warehouse.duckdb"])
def test_no_identifier_in_any_table_of_the_warehouse_or_the_snapshot(full_run, db):
    ids = identifiers(full_run["home"] / "restricted" / "identity.duckdb")
    tables = database_text(full_run["home"] / db)
    assert any(t.startswith("core.") for t in tables)
    leaks = {t: hits for t, text in tables.items() if (hits := find_identifiers(text, ids))}
    assert not leaks


def test_no_identifier_in_reports(full_run):
    ids = identifiers(full_run["home"] / "restricted" / "identity.duckdb")
    reports = [p for p in (full_run["home"] / "reports").rglob("*") if p.is_file()]
    if not reports:
        pytest.skip("no report built (pipelines.reports not available)")
    leaks = {
        p.name: hits
        for p in reports
        if (hits := find_identifiers(p.read_bytes().decode("utf-8", "replace"), ids))
    }
    assert not leaks


def test_identity_store_is_owner_only(full_run):
    restricted = full_run["home"] / "restricted"
    assert stat.S_IMODE(restricted.stat().st_mode) == 0o700
    assert stat.S_IMODE((restricted / "identity.duckdb").stat().st_mode) == 0o600


def test_generated_hmac_key_file_is_owner_only(tmp_path, monkeypatch):
    from warehouse.home import Home

    monkeypatch.delenv("LABWH_HMAC_KEY", raising=False)
    old = os.umask(0)  # even with a permissive umask
    try:
        home = Home(tmp_path / "home")
        key = home.hmac_key()
    finally:
        os.umask(old)
    assert len(key) >= 32 and key == home.hmac_key()  # stable once written
    assert stat.S_IMODE(home.key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.identity_dir.stat().st_mode) == 0o700


def test_archive_of_received_bytes_is_owner_only(full_run):
    """Was a bug (umask 0755 / 0644: identifiers readable by any local user); fixed in 4c0554d."""
    archive = full_run["home"] / "archive"
    modes = {stat.S_IMODE(p.stat().st_mode) for p in [archive, *archive.rglob("*")]}
    assert all(m & 0o077 == 0 for m in modes), sorted(oct(m) for m in modes)


NORTH = (
    "MRN,PatientName,DOB,CollectionDateTime,TestCode,TestName,Result,Units,RefRange,Flag,"
    "AccessionNo,Status\n"
    "MRN0000042,DOE, JOHN, JR,1958-03-12,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,"
    "10-40,N,A1,F\n"
)


def test_quarantine_excerpt_of_a_misaligned_row_holds_no_birth_date(home, tmp_path):
    """A row widened by an unquoted "Family, Given, Suffix" name: its excerpt used to be cut
    from shifted cells and quoted the birth date (found by the fuzz tests, fixed in fc3396d)."""
    from warehouse import steps

    landing = tmp_path / "landing"
    (landing / "lab_csv" / "northlab").mkdir(parents=True)
    (landing / "lab_csv" / "northlab" / "r.csv").write_text(NORTH)
    steps.start_run(home, "r", landing)
    steps.land(home, landing, "r")
    steps.stage(home, "lab_csv", "r")
    con = duckdb.connect(str(home.warehouse), read_only=True)
    text = " ".join(
        f"{reason} {excerpt}"
        for reason, excerpt in con.execute(
            "SELECT reason, excerpt FROM quality.quarantine"
        ).fetchall()
    )
    con.close()
    assert text.strip(), "the widened row was quarantined"
    for secret in ("MRN0000042", "1958-03-12", "DOE", "JOHN"):
        assert secret not in text, text


WRONG_CELL = {
    # a name typed into a numeric result (OBX-2 NM): the excerpt shows OBX-5 of NM values
    "hl7": (
        "hl7/r.hl7",
        "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|L|L|20230105093000||ORU^R01|M1|P|2.5.1\r"
        "PID|1||MRN0000042^^^NORTH_CLINIC^MR||DOE^JOHN||19580312|M\r"
        "OBR|1||F1|H|||20230105083000\r"
        "OBX|1|NM|E2^Estradiol^L^2243-4^E^LN||DOE JOHN|pg/mL|||||F\r",
    ),
    # a name typed into the collection-time cell (same cell count: nothing looks shifted)
    "northlab": (
        "lab_csv/northlab/r.csv",
        "MRN,PatientName,DOB,CollectionDateTime,TestCode,TestName,Result,Units,RefRange,Flag,"
        "AccessionNo,Status\n"
        'MRN0000042,"DOE, JOHN",1958-03-12,"DOE, JOHN",E2SENS,Estradiol,18.4,pg/mL,10-40,N,A1,F\n',
    ),
    # a name typed into the scan-date cell
    "hologic": (
        "dexa/hologic/r.csv",
        "PAT_ID,PAT_NAME,DOB,SEX,SCAN_ID,SCAN_DATE,SCAN_TYPE,SIDE,INSTRUMENT,SERIAL_NUMBER,"
        "SOFTWARE_VERSION,L1_BMD\n"
        'MRN0000042,"DOE, JOHN",12/07/1969,M,A1,"DOE, JOHN",Spine,,Horizon A,301245,13.6,0.8\n',
    ),
}


@pytest.mark.parametrize(
    "feed",
    [
        "hl7",  # the excerpt showed OBX-5 of a rejected NM result: fixed in 2702a42
        "hologic",  # reasons quoted the scan-date cell: fixed in b7dbbc2
        "northlab",  # reasons quoted the collection-time cell: fixed in b7dbbc2
    ],
)
def test_reason_does_not_quote_a_name_typed_into_a_date_or_number_cell(home, tmp_path, feed):
    from warehouse import steps

    name, text = WRONG_CELL[feed]
    landing = tmp_path / "landing"
    (landing / name).parent.mkdir(parents=True)
    (landing / name).write_text(text)
    steps.start_run(home, "r", landing)
    steps.land(home, landing, "r")
    steps.stage(home, name.split("/")[0], "r")
    con = duckdb.connect(str(home.warehouse), read_only=True)
    rows = con.execute("SELECT reason, excerpt FROM quality.quarantine").fetchall()
    con.close()
    assert rows, "the row was quarantined"
    text = " ".join(f"{reason} {excerpt}" for reason, excerpt in rows)
    for secret in ("MRN0000042", "DOE", "JOHN"):
        assert secret not in text, text


def test_snapshot_masks_file_names_that_carry_identifiers(home, tmp_path):
    """A source that names files by patient: the snapshot's raw.files.name and a duplicate
    delivery's quarantine position show the names masked; the writer's warehouse keeps them
    (operations find files by them) and the file's sha256 still links every row."""
    from warehouse import params, steps
    from warehouse.publish import publish

    name, text = WRONG_CELL["hl7"]
    landing = tmp_path / "landing"
    (landing / "hl7").mkdir(parents=True)
    (landing / "hl7" / "MRN0000042_DOE.hl7").write_text(text)
    (landing / "hl7" / "resent_19580312.hl7").write_text(text)  # same bytes: a duplicate
    steps.start_run(home, "r", landing)
    steps.land(home, landing, "r")
    steps.stage(home, "hl7", "r")
    steps.build_core(home, params.core_params())
    steps.build_features(home, params.feature_params({}), "r")
    steps.build_omop(home)
    snapshot = publish(home)

    def names(db: Path) -> tuple[list[str], list[str]]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            files = [r[0] for r in con.execute("SELECT name FROM raw.files").fetchall()]
            positions = con.execute(
                "SELECT position FROM quality.quarantine WHERE check_name = 'duplicate_file'"
            ).fetchall()
            return files, [r[0] for r in positions]
        finally:
            con.close()

    files, positions = names(snapshot)
    assert len(files) == 1 and len(positions) == 1, (files, positions)
    published = " ".join(files + positions)
    for secret in ("MRN0000042", "19580312", "DOE"):  # DOE: the patient's name, as the store knows
        assert secret not in published, published
    assert files == ["hl7/▒▒▒_▒▒▒.hl7"]  # masked, not dropped: folder and extension stay
    writer_files, writer_positions = names(home.warehouse)
    assert "MRN0000042" in " ".join(writer_files + writer_positions)
    assert "19580312" in " ".join(writer_files + writer_positions)


FREE_TEXT_HL7 = (
    "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|20230105120000||ORU^R01|FT1|P|2.5.1\r"
    "PID|1||MRN0000120^^^NORTH_CLINIC^MR||SCHAEFER^JUERGEN||19670218|M\r"
    "OBR|1||FIL9^LABWH_LIS|HORM^Hormones^L|||20230105083000\r"
    "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||18.0|pg/mL|10-40|N|||F\r"
    "OBX|2|ST|NOTE^Lab note^L||Called Schaefer, Juergen (MRN0000120, born 02/18/1967)||||||F\r"
    "OBX|3|NM|XQ9^Juergen Schaefer MRN0000120^L||4.5|Schaefer|||||F\r"
    "OBX|4|ST|NOTE2^Lab note^L||hemolysed, repeat||||||F\r"
)
FREE_TEXT_MEDS = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity\n"
    "MRN0000120,NORTH_CLINIC,dispense,199224,Schaefer Juergen,1,tablet,daily,2023-01-01,,30,30\n"
)


def _publish_landing(home, tmp_path, files: dict[str, str]) -> Path:
    """Land ``files``, stage their feeds, build core, features and OMOP, publish."""
    from warehouse import params, steps
    from warehouse.publish import publish

    landing = tmp_path / "landing"
    for rel, text in files.items():
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_text(text)
    steps.start_run(home, "r", landing)
    steps.land(home, landing, "r")
    for feed in sorted({rel.split("/")[0] for rel in files}):
        steps.stage(home, feed, "r")
    steps.build_core(home, params.core_params())
    steps.build_features(home, params.feature_params({}), "r")
    steps.build_omop(home)
    return publish(home)


def every_text(db: Path) -> str:
    """Every text cell of the analyst schemas of a DuckDB file, one per line."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        cells = []
        for schema, table in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('core', 'marts', 'quality', 'omop')"
        ).fetchall():
            rows = con.execute("SELECT * FROM " + schema + "." + table).fetchall()  # noqa: S608
            cells += [str(v) for row in rows for v in row if isinstance(v, str)]
        return "\n".join(cells)
    finally:
        con.close()


def test_snapshot_masks_free_text_that_carries_identifiers(home, tmp_path):
    """A text result, an unmapped analyte's name and unit, and a drug name that quote the
    patient: the snapshot shows them masked (every table, the OMOP views too); clean text and
    numbers are as sent, and the writer's warehouse keeps the originals."""
    snapshot = _publish_landing(
        home, tmp_path, {"hl7/ft.hl7": FREE_TEXT_HL7, "meds/m.csv": FREE_TEXT_MEDS}
    )
    published = every_text(snapshot)
    for secret in ("MRN0000120", "Schaefer", "SCHAEFER", "Juergen", "02/18/1967"):
        assert secret not in published, secret
    assert "hemolysed, repeat" in published  # no identifier: as sent
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        values = con.execute(
            "SELECT analyte, value, value_text FROM core.fct_lab_result ORDER BY source_code"
        ).fetchall()
        history = con.execute(
            "SELECT count(*) FROM core.fct_lab_result_history WHERE value_text LIKE 'Called ▒%'"
        ).fetchone()[0]
    finally:
        con.close()
    assert ("estradiol", 18.0, None) in values and history == 1
    assert ("▒▒▒ ▒▒▒ ▒▒▒", 4.5, None) in values  # unmapped: its name masked, its value kept
    writer = every_text(home.warehouse)
    assert "Schaefer" in writer and "MRN0000120" in writer  # operations keep the originals


SENDER_IDS_HL7 = (
    # a sender whose order numbers and message ids are built from the MRN (seen in public
    # ELR samples): OBR-3 = PID-3, MSH-10 = PID-3 + time, also glued (ORDLGZKXXR501); the
    # second patient's MSH-10 holds his MRN (MSG12345-7); his accession ABC55555 holds none,
    # and patient 1's ACC12345 merely holds patient 2's MRN: no identifier of patient 1
    "MSH|^~\\&|LIS|SPHL|LABWH|LABWH|20200323151748||ORU^R01|LGZKXXR5_20200323151748|P|2.5.1\r"
    "PID|1||LGZKXXR5^^^SPHL^MR||ROE^ANN||19600101|M\r"
    "OBR|1||LGZKXXR5^LIS|HORM^Hormones^L|||20200323080000\r"
    "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||18.0|pg/mL|||||F\r"
    "OBR|2||ORDLGZKXXR501^LIS|HORM^Hormones^L|||20200323080000\r"
    "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||21.0|pg/mL|||||F\r"
    "OBX|2|NM|E2^Estradiol^L^2243-4^Estradiol^LN||21.0|furlong|||||F\r"  # quarantined
    "OBR|3||ACC12345^LIS|HORM^Hormones^L|||20200323080000\r"
    "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||22.0|pg/mL|||||F\r"
    "MSH|^~\\&|LIS|SPHL|LABWH|LABWH|20200323151749||ORU^R01|MSG12345-7|P|2.5.1\r"
    "PID|1||12345^^^SPHL^MR||POE^BEN||19610101|M\r"
    "OBR|1||ABC55555^LIS|HORM^Hormones^L|||20200323080000\r"
    "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||25.0|pg/mL|||||F\r"
)
SENDER_IDS_DXA = (
    "PAT_ID,SCAN_ID,SCAN_DATE,SCAN_TYPE,SIDE,INSTRUMENT,L1L4_BMD\n"
    "LGZKXXR5,LGZKXXR5-S1,03/01/2020,Spine,,Horizon A,0.950\n"
)


def test_snapshot_masks_patient_identifiers_inside_sender_chosen_ids(home, tmp_path):
    """Order numbers, message control ids and DXA scan ids built from the record's patient's
    MRN reach analysts with that MRN masked (also glued, ORDLGZKXXR501); an id without one is
    as sent; no two results merge; the writer's warehouse keeps the originals."""
    files = {"hl7/ids.hl7": SENDER_IDS_HL7, "dexa/hologic/ids.csv": SENDER_IDS_DXA}
    snapshot = _publish_landing(home, tmp_path, files)
    published = every_text(snapshot)
    assert "LGZKXXR5" not in published and "MSG12345" not in published
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        results = con.execute(
            "SELECT filler_order_number, message_control_id, value FROM core.fct_lab_result "
            "ORDER BY value"
        ).fetchall()
        scans = con.execute("SELECT scan_id FROM core.fct_dexa_scan").fetchall()
    finally:
        con.close()
    assert results == [
        ("▒▒▒", "▒▒▒_20200323151748", 18.0),
        ("ORD▒▒▒01", "▒▒▒_20200323151748", 21.0),
        ("ACC12345", "▒▒▒_20200323151748", 22.0),  # another patient's MRN: as sent
        ("ABC55555", "MSG▒▒▒-7", 25.0),
    ]
    assert scans == [("▒▒▒-S1",)]
    assert "▒▒▒_20200323151748" in published  # the quarantined OBX's message id
    # a masked number's result id is re-keyed (md5 of the key would let a reader test guesses
    # of the number: every other part of the key is in the row); an unmasked one's is as in
    # the writer's warehouse, and the OMOP measurement ids follow the snapshot's ids
    ids = {}
    for db in (snapshot, home.warehouse):
        con = duckdb.connect(str(db), read_only=True)
        try:
            ids[db] = dict(
                con.execute("SELECT value, result_id FROM core.fct_lab_result").fetchall()
            )
            omop = con.execute(
                "SELECT count(*) FROM core.fct_lab_result AS r JOIN omop.measurement AS m "
                "ON m.measurement_id = CAST(('0x' || left(md5(r.result_id), 15)) AS BIGINT)"
            ).fetchone()[0]
        finally:
            con.close()
        assert omop == 4
    snap, writer_ids = ids[snapshot], ids[home.warehouse]
    assert snap[25.0] == writer_ids[25.0] and snap[22.0] == writer_ids[22.0]
    assert snap[18.0] != writer_ids[18.0] and snap[21.0] != writer_ids[21.0]  # both masked
    # the quality team's view of the writer's quarantine masks it too
    from warehouse.quarantine import list_quarantine

    listed = list_quarantine(home)
    assert listed["message_control_id"].to_list() == ["▒▒▒_20200323151748"]
    writer = every_text(home.warehouse)
    assert "LGZKXXR5_20200323151748" in writer and "ORDLGZKXXR501" in writer


# --------------------------------------------------------------------------- key rotation
def test_rekey_leaves_no_value_derived_from_the_old_key(tmp_path, monkeypatch):
    """After ``warehouse.rekey``, the warehouse equals one built from scratch with the new key,
    and no old patient key (nor a derived DXA scan id) is left in the warehouse, the snapshot
    or the identity store; the old identity store is set aside owner-only."""
    from test_crash_safety import diff, run_steps, snapshot

    from transforms.generate import generate
    from warehouse.home import Home
    from warehouse.rekey import rekey

    generate(3, 8, tmp_path / "gen")
    landing = tmp_path / "gen" / "landing"
    monkeypatch.setenv("LABWH_HMAC_KEY", "old-key-" + "0" * 40)
    home = Home(tmp_path / "home")
    run_steps(home, landing)
    old = database_text(home.warehouse)
    old_keys = set(re.findall(r"pk_[0-9a-f]{20}", "\n".join(old.values())))
    old_scan_ids = set(
        re.findall(
            r"hologic-\d{8}-\w+-[0-9a-f]{12}|lunar-\d{8}-\S+-[0-9a-f]{12}",
            old["core.fct_dexa_scan"],
        )
    )
    assert old_keys

    monkeypatch.setenv("LABWH_HMAC_KEY", "new-key-" + "1" * 40)
    result = rekey(home)
    fresh = Home(tmp_path / "fresh")
    run_steps(fresh, landing)
    schemas = ("staging", "core", "marts")
    assert not diff(snapshot(fresh.warehouse, schemas), snapshot(home.warehouse, schemas))
    for db in (home.warehouse, home.published, home.identity_db):
        text = "\n".join(database_text(db).values())
        assert not [k for k in old_keys | old_scan_ids if k in text], db.name
    aside = Path(result["old_identity_store"])
    assert stat.S_IMODE(aside.stat().st_mode) == 0o600 and aside.parent == home.identity_dir


def test_rekey_writes_a_new_owner_only_key_file(tmp_path, monkeypatch):
    from warehouse.home import Home
    from warehouse.rekey import write_key_file

    monkeypatch.delenv("LABWH_HMAC_KEY", raising=False)
    home = Home(tmp_path / "home")
    first = home.hmac_key()
    write_key_file(home, b"f" * 64)
    assert home.hmac_key() == b"f" * 64 != first
    assert stat.S_IMODE(home.key_file.stat().st_mode) == 0o600
    assert [p.name for p in home.identity_dir.iterdir()] == ["hmac.key"]  # no temp file left
    monkeypatch.setenv("LABWH_HMAC_KEY", "x" * 40)
    with pytest.raises(RuntimeError):
        write_key_file(home, b"g" * 64)


NAMED_HL7 = (
    "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|L|L|20230105093000||ORU^R01|M1|P|2.5.1\r"
    "PID|1||Q7731^^^NORTH_CLINIC^MR||Müller-García^Ebenezer||19580312|M\r"
    "OBR|1||F1|HORM^Hormone panel^L|||20230105083000|||||||||||||||||F\r"
    "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN|1|18.4|pg/mL|10-40|N|||F\r"
    "OBX|2|NM|E2^Estradiol^L^2243-4^Estradiol^LN|2|7|furlong|||N|||F\r"
)


def test_a_patient_named_in_a_landing_file_name_is_masked_everywhere_shown(home, tmp_path, capsys):
    """Sources name files and folders by patient (``Mueller_Garcia_Ebenezer_Q7731.hl7``): no
    pattern tells such a name from a word, but the identity store knows it (Müller-García),
    so the snapshot, the quality report and `labwh quarantine list` mask it in any spelling:
    case, accents, transliteration, decomposed Unicode, joined words (the writer's
    warehouse keeps the names)."""
    import unicodedata

    from pipelines.cli import main
    from warehouse import params, steps
    from warehouse.publish import publish
    from warehouse.quality_report import build_quality_report

    landing = tmp_path / "landing"
    (landing / "hl7").mkdir(parents=True)
    (landing / "hl7" / "Mueller_Garcia_Ebenezer_Q7731.hl7").write_text(NAMED_HL7)
    dup = unicodedata.normalize("NFD", "copy of EBENEZER MüllerGarcía.hl7")  # as macOS writes
    (landing / "hl7" / dup).write_text(NAMED_HL7)  # the same bytes: a duplicate delivery
    folder = landing / "lab_csv" / "Ebenezer_Muller"  # a source folder no mapping covers
    folder.mkdir(parents=True)
    (folder / "labs.csv").write_text("MRN,Result\nQ7731,18\n")
    steps.start_run(home, "r1", landing)
    steps.land(home, landing, "r1")
    for feed in ("hl7", "lab_csv"):
        steps.stage(home, feed, "r1")
    steps.build_core(home, params.core_params())
    steps.finish_run(home, "r1")
    publish(home)
    report = build_quality_report(home).read_text(encoding="utf-8")
    assert main(["quarantine", "list", "--all"]) == 0
    cli_out = capsys.readouterr().out

    secrets = ("müller", "muller", "mueller", "garcía", "garcia", "ebenezer", "q7731")
    snapshot = database_text(home.published)
    assert "has no conversion to pg/mL" in snapshot["quality.quarantine"]  # the unit record
    shown = {
        "published raw.files": snapshot["raw.files"],
        "published quarantine": snapshot["quality.quarantine"],
        "quality report": html.unescape(report),
        "quarantine list": cli_out,
    }
    leaks = {
        k: s
        for k, text in shown.items()
        for s in secrets
        if s in unicodedata.normalize("NFC", text).lower()
    }
    assert not leaks, leaks
    assert "hl7/▒▒▒_▒▒▒_▒▒▒_▒▒▒.hl7" in snapshot["raw.files"]  # the rest of the name stays
    assert "lab_csv/▒▒▒_▒▒▒/labs.csv" in snapshot["raw.files"]
    assert "▒▒▒_▒▒▒_▒▒▒_▒▒▒.hl7" in shown["quality report"]
    assert "copy of ▒▒▒ ▒▒▒.hl7" in shown["published quarantine"]
    # the writer's warehouse keeps the names: operations find the delivery by them
    assert "Mueller_Garcia_Ebenezer_Q7731.hl7" in database_text(home.warehouse)["raw.files"]
