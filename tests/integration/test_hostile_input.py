"""Hostile and broken input through the real loader (landing → raw → staged + quarantine).

Every test lands files with ``warehouse.steps.land`` and stages them with ``steps.stage``, as
a pipeline run does, then checks what the warehouse recorded: each file once in ``raw.files``,
``received = accepted + quarantined`` per file, junk put aside with a reason, bytes archived
by hash, nothing written outside ``$LABWH_HOME``.

Tests marked ``xfail(strict=True)`` pin reported bugs: they fail today for the stated reason
and will XPASS (and so fail the suite) once fixed, at which point the marker is removed.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from transforms.landing import FEEDS

ROOT = Path(__file__).resolve().parents[2]
HL7_MSG = (
    "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|20230105093000-0500||ORU^R01^ORU_R01|"
    "MSG{n}|P|2.5.1\r"
    "PID|1||MRN00000{n}^^^NORTH_CLINIC^MR||DOE^JOHN||19580312|M\r"
    "OBR|1||FIL{n}^LABWH_LIS|HORM^Hormone panel^L|||20230105083000-0500|||||||||||||||||F\r"
    "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||18.4|pg/mL|10-40|N|||F\r"
    "OBX|2|NM|TT^Testosterone total^L^2986-8^Testosterone^LN||512|ng/dL|264-916|N|||F\r"
)
MEDS_HEADER = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity\n"
)
MEDS_ROW = "MRN0000001,NORTH_CLINIC,dispense,199224,anastrozole 1 MG,1,mg,daily,2020-01-01,,30,30\n"
NORTH_HEADER = (
    "MRN,PatientName,DOB,CollectionDateTime,TestCode,TestName,Result,Units,RefRange,Flag,"
    "AccessionNo,Status\n"
)
NORTH_ROW = '{mrn},"{name}",1958-03-12,2023-01-05 08:30,E2SENS,{test},18.4,pg/mL,10-40,N,A{mrn},F\n'


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def load(home, landing: Path, run_id: str = "hostile") -> dict[str, dict]:
    """land + stage every feed; per landing name: status and counts from raw.files."""
    from warehouse import steps

    steps.start_run(home, run_id, landing)
    steps.land(home, landing, run_id)
    for feed in FEEDS:
        steps.stage(home, feed, run_id)
    with duckdb.connect(str(home.warehouse), read_only=True) as con:
        files = con.sql(
            "SELECT name, file_sha256, status, n_received, n_accepted, n_quarantined FROM raw.files"
        ).fetchall()
        checks = con.sql(
            "SELECT f.name, q.check_name, q.reason FROM quality.quarantine q "
            "JOIN raw.files f USING (file_sha256) WHERE q.check_name <> 'duplicate_file'"
        ).fetchall()
    out = {
        name: {
            "sha": sha,
            "status": st,
            "received": r,
            "accepted": a,
            "quarantined": q,
            "checks": [],
        }
        for name, sha, st, r, a, q in files
    }
    for name, check, reason in checks:
        out[name]["checks"].append((check, reason))
    for name, f in out.items():  # the warehouse's own bookkeeping holds for every file
        assert f["status"] in ("parsed", "failed"), (name, f)
        assert f["received"] == f["accepted"] + f["quarantined"], (name, f)
        assert all(reason for _, reason in f["checks"])
    return out


def good_files(landing: Path) -> set[str]:
    """One well-formed file per feed, landed beside the hostile ones: they must still load."""
    write(landing / "hl7" / "good.hl7", HL7_MSG.format(n=1))
    write(landing / "meds" / "good.csv", MEDS_HEADER + MEDS_ROW)
    write(
        landing / "lab_csv" / "northlab" / "good.csv",
        NORTH_HEADER + NORTH_ROW.format(mrn="MRN1", name="DOE, JOHN", test="Estradiol"),
    )
    return {"hl7/good.hl7", "meds/good.csv", "lab_csv/northlab/good.csv"}


def assert_good_loaded(files: dict, names: set[str]) -> None:
    for name in names:
        assert files[name]["status"] == "parsed" and files[name]["accepted"] >= 1, files[name]


# --------------------------------------------------------------------------- junk
def test_binary_junk_in_every_feed_is_quarantined_and_the_rest_flows(home, tmp_path):
    landing = tmp_path / "landing"
    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(64 << 10))
    names = {
        "hl7/junk.hl7",
        "lab_csv/northlab/junk.csv",
        "dexa/hologic/junk.csv",
        "dexa/lunar/junk_AP_Spine.txt",
        "meds/junk.csv",
    }
    for i, name in enumerate(sorted(names)):
        write(landing / name, junk[i:] + junk[:i])  # distinct bytes: no duplicate deliveries
    good = good_files(landing)
    files = load(home, landing)
    assert set(files) == names | good
    for name in names:
        f = files[name]
        assert f["accepted"] == 0 and f["quarantined"] >= 1, (name, f)
    assert_good_loaded(files, good)


def test_junk_file_without_any_record_is_still_put_aside(home, tmp_path):
    """Was a bug (0 received, no quarantine row: invisible to quality); fixed in 4c0554d."""
    landing = tmp_path / "landing"
    rng = random.Random(3)
    write(
        landing / "dexa" / "lunar" / "junk_AP_Spine.txt",
        bytes(rng.randrange(256) for _ in range(4096)),
    )
    write(landing / "meds" / "header_only_junk.csv", b"\x89PNG\x00\x01binary;no;header")
    files = load(home, landing)
    for name, f in files.items():
        assert f["quarantined"] >= 1 and f["checks"][0][0] == "no_records", (name, f)


# --------------------------------------------------------------------------- long lines
def test_twenty_megabyte_single_line_files(home, tmp_path):
    """HL7: one 20 MB line outside any message is one malformed record. CSV: a 20 MB cell is
    over the csv module's field limit: that row is put aside, the good row before it loads."""
    landing = tmp_path / "landing"
    write(landing / "hl7" / "long.hl7", b"X" * (20 << 20))
    write(landing / "meds" / "long.csv", MEDS_HEADER + MEDS_ROW + "Y" * (20 << 20) + "\n")
    good = good_files(landing)
    files = load(home, landing)
    hl7 = files["hl7/long.hl7"]
    assert (hl7["received"], hl7["quarantined"], hl7["checks"][0][0]) == (1, 1, "malformed_message")
    meds = files["meds/long.csv"]
    assert (meds["status"], meds["received"], meds["accepted"]) == ("parsed", 2, 1)
    assert meds["checks"][0][0] == "unparseable_value" and "longer than" in meds["checks"][0][1]
    assert_good_loaded(files, good)


# --------------------------------------------------------------------------- encodings
def test_wrong_encodings_are_read_or_quarantined_never_lost(home, tmp_path):
    landing = tmp_path / "landing"
    meds = MEDS_HEADER + MEDS_ROW
    write(landing / "meds" / "utf16_bom.csv", meds.encode("utf-16"))  # BOM: read correctly
    write(landing / "meds" / "utf16_nobom.csv", meds.encode("utf-16-le"))  # garbled
    north = NORTH_HEADER + NORTH_ROW.format(mrn="MRN2", name="MÜLLER, JÖRG", test="Östradiol")
    write(landing / "lab_csv" / "northlab" / "latin1.csv", north.encode("latin-1"))
    write(
        landing / "hl7" / "latin1.hl7",
        HL7_MSG.format(n=3).replace("DOE", "MÜLLER").encode("latin-1"),
    )
    write(landing / "hl7" / "utf16.hl7", HL7_MSG.format(n=4).encode("utf-16"))
    files = load(home, landing)
    assert files["meds/utf16_bom.csv"]["accepted"] == 1
    nobom = files["meds/utf16_nobom.csv"]
    assert nobom["accepted"] == 0 and nobom["quarantined"] >= 1
    assert files["lab_csv/northlab/latin1.csv"]["accepted"] == 1  # U+FFFD only in the name
    assert files["hl7/latin1.hl7"]["accepted"] == 2  # per-line latin-1 fallback
    utf16 = files["hl7/utf16.hl7"]
    assert utf16["accepted"] == 0 and utf16["quarantined"] >= 1
    assert {c for c, _ in utf16["checks"]} == {"malformed_message"}


# --------------------------------------------------------------------------- file names
ODD_NAMES = [
    "hl7/new\nline.hl7",
    "hl7/ünïcødé ✓ 患者.hl7",
    "hl7/'; DROP TABLE raw.files; --.hl7",
    "hl7/$(touch PWNED).hl7",
    "hl7/-rf .hl7",
    "hl7/..%2F..%2Fescape.hl7",
    "hl7/" + "n" * 240 + ".hl7",
    "hl7/sub dir/../x/deep.hl7",  # a folder literally named "sub dir", then x/
    "lab_csv/north lab ✓/odd.csv",  # unknown source: quarantined, not guessed
]


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_odd_file_names_are_recorded_verbatim_and_nothing_is_written_outside_home(
    home, tmp_path, monkeypatch
):
    landing = tmp_path / "landing"
    outside = tmp_path / "outside"
    write(outside / "secret.hl7", HL7_MSG.format(n=9))
    for i, name in enumerate(ODD_NAMES):
        parts = name.split("/")
        path = landing.joinpath(*[p for p in parts if p != ".."])
        write(path, HL7_MSG.format(n=10 + i) if name.startswith("hl7") else NORTH_HEADER + "x\n")
    (landing / "hl7" / "link.hl7").symlink_to(outside / "secret.hl7")
    (landing / "hl7" / "linkdir").symlink_to(outside, target_is_directory=True)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = _all_files(tmp_path) - _all_files(home.root)
    files = load(home, landing)
    after = _all_files(tmp_path) - _all_files(home.root)
    assert after == before, "files appeared outside $LABWH_HOME"
    expected = {
        p.relative_to(landing).as_posix()
        for p in _all_files(landing)
        if not p.is_symlink()  # symlinks are never followed
        and not p.name.startswith(".")  # dot-files (uploads in progress) are not picked up
    }
    assert set(files) == expected
    assert "hl7/new\nline.hl7" in files
    unknown = files["lab_csv/north lab ✓/odd.csv"]
    assert unknown["status"] == "failed" and unknown["checks"][0][0] == "unsupported_file"
    # the archive holds bytes by content hash only: archive/<sha[:2]>/<sha>
    archived = {p.relative_to(home.archive).as_posix() for p in _all_files(home.archive)}
    assert archived == {f"{f['sha'][:2]}/{f['sha']}" for f in files.values()}
    assert not list(tmp_path.rglob("PWNED"))


# --------------------------------------------------------------------------- compressed input
def test_compressed_files_never_load_as_records(home, tmp_path):
    """No compressed byte becomes data, whichever feed folder it lands in."""
    landing = tmp_path / "landing"
    write(landing / "hl7" / "batch.hl7.gz", gzip.compress(HL7_MSG.format(n=5).encode(), mtime=0))
    write(
        landing / "meds" / "meds.csv.gz", gzip.compress((MEDS_HEADER + MEDS_ROW).encode(), mtime=0)
    )
    north = NORTH_HEADER + NORTH_ROW.format(mrn="MRN3", name="DOE, J", test="E2") * 50
    write(landing / "lab_csv" / "northlab" / "r.csv.gz", gzip.compress(north.encode(), mtime=0))
    files = load(home, landing)
    assert all(f["accepted"] == 0 for f in files.values())


def test_compressed_files_are_quarantined_with_a_reason(home, tmp_path):
    """Decision (docs/reliability.md): compressed landing files are rejected with a reason,
    not decompressed (a decompression bomb would bypass the 256 MiB size cap). Was a bug
    (.gz under hl7/ and meds/ ignored silently); fixed in 4c0554d."""
    landing = tmp_path / "landing"
    write(landing / "hl7" / "batch.hl7.gz", gzip.compress(HL7_MSG.format(n=5).encode(), mtime=0))
    write(
        landing / "meds" / "meds.csv.gz", gzip.compress((MEDS_HEADER + MEDS_ROW).encode(), mtime=0)
    )
    files = load(home, landing)
    for name in ("hl7/batch.hl7.gz", "meds/meds.csv.gz"):
        assert name in files, f"{name} dropped silently"
        assert files[name]["quarantined"] == 1
        assert "compress" in files[name]["checks"][0][1].lower()


# --------------------------------------------------------------------------- formula injection
FORMULAS = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", '=HYPERLINK("http://evil")', "\t=1"]


def test_sql_csv_output_neutralizes_spreadsheet_formulas():
    from pipelines.cli import _print_table

    con = duckdb.connect()
    con.execute("CREATE TABLE t (v VARCHAR, n DOUBLE)")
    con.executemany("INSERT INTO t VALUES ($1, -1.5)", [[f] for f in FORMULAS])
    buf = io.StringIO()
    _print_table(con.execute("SELECT v, n FROM t"), True, out=buf)
    lines = buf.getvalue().splitlines()[1:]
    assert len(lines) == len(FORMULAS)
    for line in lines:
        cell = line.split(",")[0].strip('"')
        assert cell[:1] not in ("=", "+", "-", "@", "\t"), line
        assert line.endswith(",-1.5")  # numbers stay numbers


# every module that writes CSV, and why it is safe (a new writer fails the test until reviewed)
CSV_WRITERS = {
    "pipelines/cli.py": "labwh sql --csv: user-facing, cells pass through transforms.csvsafe",
    "transforms/csvsafe.py": "the neutralizer itself",
    "transforms/generate/common.py": "synthetic landing files written by the generator",
    "transforms/generate/truth.py": "synthetic ground truth; checked below",
}


def test_every_csv_writer_in_the_repo_is_reviewed():
    found = set()
    for folder in ("pipelines", "transforms", "warehouse", "schemas", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if any(k in text for k in ("csv.writer", "DictWriter", "write_csv(", ".to_csv(")):
                found.add(path.relative_to(ROOT).as_posix())
            if "COPY" in text and "FORMAT CSV" in text.upper():
                found.add(path.relative_to(ROOT).as_posix())
    assert found <= set(CSV_WRITERS), (
        f"review these CSV writers: {sorted(found - set(CSV_WRITERS))}"
    )


def test_generator_truth_csv_is_not_fed_by_untrusted_text(tmp_path):
    """The other CSV writer, ``transforms/generate/truth.py``, writes the generator's own
    synthetic values (codes, numbers, dates, fixed name lists): no cell starts with a formula
    character except negative numbers."""
    from transforms.generate import generate

    generate(2, 3, tmp_path / "gen")
    import csv

    for path in (tmp_path / "gen" / "truth").glob("*.csv"):
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    if cell[:1] in ("=", "+", "@"):
                        pytest.fail(f"{path.name}: {cell!r}")
                    if cell[:1] == "-":
                        float(cell)  # a negative number, not a formula


# --------------------------------------------------------------------------- DXA multi-site records
HOLOGIC_HEADER = (
    "PAT_ID,PAT_NAME,DOB,SEX,SCAN_ID,SCAN_DATE,SCAN_TYPE,SIDE,INSTRUMENT,SERIAL_NUMBER,"
    "SOFTWARE_VERSION,L1_BMD,L2_BMD,L3_BMD,L4_BMD,L1L4_BMD,L1L4_TSCORE,L1L4_ZSCORE,L2L4_BMD,"
    "L2L4_TSCORE,L2L4_ZSCORE,NECK_BMD,NECK_TSCORE,NECK_ZSCORE,TROCH_BMD,INTER_BMD,WARDS_BMD,"
    "HTOT_BMD,HTOT_TSCORE,HTOT_ZSCORE\n"
)
FUTURE_SPINE = (
    'MRN0000001,"King, Richard",12/07/1969,M,A1,04/16/2099,Spine,,Horizon A,301245,13.6,'
    "0.801,0.844,0.867,0.869,0.848,-1.8,-1.4,0.861,-1.7,-1.3,,,,,,,,,\n"
)


def _stage_dexa(home, tmp_path, run_id="r"):
    landing = tmp_path / f"landing_{run_id}"
    write(landing / "dexa" / "hologic" / "future.csv", HOLOGIC_HEADER + FUTURE_SPINE)
    from warehouse import steps

    steps.start_run(home, run_id, landing)
    steps.land(home, landing, run_id)
    return steps.stage(home, "dexa", run_id)


def test_by_check_counts_records_not_staged_rows(home, tmp_path):
    """Was a bug (future_date: 5 for one 5-region record); fixed in 4c0554d."""
    summary = _stage_dexa(home, tmp_path)
    assert summary.quarantined == 1
    assert summary.by_check == {"future_date": 1}


def test_quarantine_row_is_deterministic_for_multi_site_dexa_record(tmp_path, monkeypatch):
    """Same bytes, same quarantine: the reason/excerpt of a multi-region DXA record must not
    depend on which of its failing rows the database inserted first."""
    from warehouse.home import Home

    monkeypatch.setenv("LABWH_HMAC_KEY", "k")
    seen = set()
    for i in range(6):
        home = Home(tmp_path / f"h{i}").ensure()
        _stage_dexa(home, tmp_path / f"l{i}")
        con = duckdb.connect(str(home.warehouse), read_only=True)
        seen.add(con.execute("SELECT reason, excerpt FROM quality.quarantine").fetchall()[0])
        con.close()
    if len(seen) > 1:
        pytest.xfail(
            "BUG warehouse/ingest.py _insert_rejects: INSERT OR IGNORE keeps an arbitrary one of "
            f"several rejects per (file, position, check): {sorted(seen)}"
        )


# --------------------------------------------------------------------------- memory
# peak RSS (kB) of the probe's own process image: ru_maxrss survives exec (a child of a big
# pytest process would start at its parent's peak), /proc/self/status VmHWM does not
HWM = textwrap.dedent(
    """
    import sys
    from pathlib import Path as _P
    def hwm():
        status = _P("/proc/self/status").read_text().splitlines()
        return int([x for x in status if x.startswith("VmHWM")][0].split()[1])
    """
)
PROBE_LOADER = HWM + textwrap.dedent(
    """
    from pathlib import Path
    import transforms.hl7 as h
    h.iter_parse_hl7_file.__kwdefaults__["chunk_messages"] = int(sys.argv[2])
    from warehouse import steps
    from warehouse.home import Home
    home = Home.from_env()
    base = hwm()
    steps.start_run(home, "m", Path(sys.argv[1]))
    steps.land(home, Path(sys.argv[1]), "m")
    s = steps.stage(home, "hl7", "m")
    peak = hwm()
    print(s.received, s.accepted, base // 1024, peak // 1024)
    """
)
PROBE_PARSER = HWM + textwrap.dedent(
    """
    from transforms.hl7 import framing, iter_parse_hl7_file
    from transforms.pseudonym import make_pseudonymizer
    framing.iter_messages.__defaults__ = (1 << 20,)  # 1 MiB read blocks instead of 8 MiB
    base = hwm()
    n = 0
    path = sys.argv[1] + "/hl7/big.hl7"
    pseudo = make_pseudonymizer(b"k")
    chunk = int(sys.argv[2])
    for part in iter_parse_hl7_file(path, file_sha256="x", pseudonymize=pseudo, chunk_messages=chunk):
        n += part.rows.height
    peak = hwm()
    print(n, n, base // 1024, peak // 1024)
    """
)


def write_hl7_of_size(path: Path, megabytes: int, patients: int) -> int:
    """Messages of ``patients`` rotating patients until the file holds ``megabytes``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "wb") as fh:
        size = 0
        while size < megabytes << 20:
            msgs = [
                HL7_MSG.format(n=n + k).replace(
                    f"MRN00000{n + k}^", f"MRN{(n + k) % patients:07d}^"
                )
                for k in range(500)
            ]
            block = "".join(msgs).encode()
            fh.write(block)
            size += len(block)
            n += 500
    return n


def growth_mb(tmp_path: Path, probe: str, megabytes: int, chunk: int, patients: int) -> int:
    """Peak RSS above the post-import baseline of a subprocess parsing / loading the file."""
    landing = tmp_path / f"land{megabytes}"
    n = write_hl7_of_size(landing / "hl7" / "big.hl7", megabytes, patients)
    env = {
        **os.environ,
        "LABWH_HOME": str(tmp_path / f"home{megabytes}"),
        "LABWH_HMAC_KEY": "k",
        "PYTHONPATH": str(ROOT),
    }
    args = [sys.executable, "-c", probe, str(landing), str(chunk)]
    out = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=7200)
    assert out.returncode == 0, out.stderr[-2000:]
    # the last line: DuckDB may draw a progress bar on stdout before it
    received, accepted, base, peak = map(int, out.stdout.strip().splitlines()[-1].split())
    assert received == accepted == 2 * n  # two OBX per message, every one loaded
    (landing / "hl7" / "big.hl7").unlink()
    return peak - base


def test_hl7_parser_memory_is_flat_in_file_size(tmp_path):
    """The parser streams: 4 MB and 16 MB (1,000 patients, 2,000-message chunks, 1 MiB read
    blocks so that both files span several blocks) peak at about the same RSS."""
    small = growth_mb(tmp_path, PROBE_PARSER, 4, 2000, 1000)
    large = growth_mb(tmp_path, PROBE_PARSER, 16, 2000, 1000)
    print(f"parser peak RSS above baseline: 4 MB → {small} MB, 16 MB → {large} MB")
    assert large < small + 40


MEM_SIZES = [int(x) for x in os.environ.get("LABWH_MEM_SIZES", "64,256").split(",")]


@pytest.mark.slow
def test_hl7_loader_memory_is_flat_in_file_size(tmp_path):
    """The loader (land + stage, each file in one transaction) with 2,000-message chunks:
    measured +196 / +336 / +388 / +416 MB for 16 / 64 / 128 / 256 MB files — flattening; what
    still grows is the per-file set of record positions. The 1 GB run:
    ``LABWH_MEM_SIZES=256,1024 pytest -m slow -s … -k loader_memory``."""
    small_mb, large_mb = MEM_SIZES
    small = growth_mb(tmp_path, PROBE_LOADER, small_mb, 2000, 1000)
    large = growth_mb(tmp_path, PROBE_LOADER, large_mb, 2000, 1000)
    print(f"loader peak RSS above baseline: {small_mb} MB → {small} MB, {large_mb} MB → {large} MB")
    assert large < 1.3 * small + 60
