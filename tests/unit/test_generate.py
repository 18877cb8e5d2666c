"""The synthetic cohort generator: byte determinism and truth consistency, checked by
reading the generated files independently of the generator's own code paths."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import hl7
import pytest
import yaml

from transforms.generate import generate
from transforms.records import CHECK_NAMES

ROOT = Path(__file__).resolve().parents[2]
SEGMENT_ID = re.compile(r"^[A-Z0-9]{3}$")
E2_LOINCS = {"2243-4", "14715-7", "72873-3", "83096-8"}
PMOL_PER_PG = 3.671  # DOMAIN.md: E2 pg/mL x 3.671 = pmol/L


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(60, 3, out, bad_per_kind=2)
    return out


def read_csv(path: Path, **kw) -> list[dict]:
    with open(path, newline="", encoding=kw.pop("encoding", "utf-8")) as fh:
        return list(csv.DictReader(fh, **kw))


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(25, 11, a)
    generate(25, 11, b)
    generate(25, 12, c)
    ta, tb, tc = tree(a), tree(b), tree(c)
    assert ta.keys() == tb.keys()
    for name in ta:
        assert ta[name] == tb[name], name
    assert ta != tc


def test_bytes_do_not_depend_on_the_hash_seed(tmp_path):
    code = "import sys; from transforms.generate import generate; generate(8, 5, sys.argv[1])"
    trees = []
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = tmp_path / hash_seed
        subprocess.run([sys.executable, "-c", code, str(out)], cwd=ROOT, env=env, check=True)
        trees.append(tree(out))
    assert trees[0] == trees[1]


def test_regenerating_into_the_same_folder_replaces_the_output(tmp_path):
    generate(5, 1, tmp_path)
    first = tree(tmp_path)
    generate(5, 1, tmp_path)
    assert tree(tmp_path) == first


def duplicates(files: dict[str, bytes]) -> set[str]:
    """Names whose bytes were already seen under an earlier (sorted) name."""
    seen, dup = set(), set()
    for name in sorted(files):
        h = hashlib.sha256(files[name]).hexdigest()
        if h in seen:
            dup.add(name)
        seen.add(h)
    return dup


def hl7_messages(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8").lstrip("\ufeff").replace("\x0b", "").replace("\x1c", "")
    text = text.replace("\r\n", "\r").replace("\n", "\r")
    msgs: list[list[str]] = []
    for seg in (s for s in text.split("\r") if s):
        if seg[:3] in ("FHS", "BHS", "BTS", "FTS"):
            continue
        if seg.startswith("MSH"):
            msgs.append([])
        msgs[-1].append(seg)
    return msgs


def is_malformed(msg: list[str]) -> bool:
    seen_obr = False
    for seg in msg:
        sid = seg.split("|", 1)[0]
        if not SEGMENT_ID.match(sid):
            return True
        seen_obr |= sid == "OBR"
        if sid == "OBX" and not seen_obr:
            return True
    return False


def file_counts(cohort: Path) -> dict[str, dict]:
    return {r["file"]: r for r in read_csv(cohort / "truth" / "file_counts.csv")}


def test_hl7_records_match_truth_and_parse(cohort):
    landing = cohort / "landing"
    files = {
        str(p.relative_to(landing)): p.read_bytes() for p in sorted((landing / "hl7").iterdir())
    }
    dups = duplicates(files)
    truth = file_counts(cohort)
    total = 0
    shapes = set()
    ny = ZoneInfo("America/New_York")
    for name, data in files.items():
        if name in dups:
            assert truth[name]["records_received"] == "1"
            total += 1
            continue
        n = 0
        shapes.add(name.rsplit(".", 1)[1])
        shapes.add("lf" if b"\n" in data and b"\r" not in data else "cr")
        shapes.add("batch" if data.startswith(b"FHS") else "plain")
        for msg in hl7_messages(data):
            if is_malformed(msg):
                n += 1
                continue
            n += sum(1 for s in msg if s.startswith("OBX|"))
            parsed = hl7.parse("\r".join(msg))
            assert str(parsed.segment("MSH")[9]) == "ORU^R01^ORU_R01"
            assert len(parsed.segments("OBX")) == sum(1 for s in msg if s.startswith("OBX|"))
            for seg in msg:  # offsets agree with the zone on that local date
                for stamp in re.findall(r"\|(\d{14})([+-]\d{4})", seg):
                    local = dt.datetime.strptime(stamp[0], "%Y%m%d%H%M%S").replace(tzinfo=ny)
                    assert local.strftime("%z") == stamp[1]
        assert int(truth[name]["records_received"]) == n, name
        total += n
    feed = {r["feed"]: r for r in read_csv(cohort / "truth" / "feed_counts.csv")}["hl7"]
    assert int(feed["records_received"]) == total
    assert int(feed["files"]) == len(files)
    assert {"hl7", "txt", "mllp", "lf", "cr", "batch", "plain"} <= shapes


def test_csv_dexa_meds_rows_match_truth(cohort):
    landing = cohort / "landing"
    truth = file_counts(cohort)
    fmt = {"northlab": (",", "utf-8"), "southlab": (";", "iso-8859-1")}
    for feed in ("lab_csv", "dexa", "meds"):
        paths = sorted(p for p in (landing / feed).rglob("*") if p.is_file())
        files = {str(p.relative_to(landing)): p.read_bytes() for p in paths}
        dups = duplicates(files)
        total = 0
        for name, data in files.items():
            if name in dups:
                n = 1
            elif name.endswith(".txt"):  # Lunar: UTF-16LE with BOM, CRLF
                assert data[:2] == b"\xff\xfe"
                lines = data.decode("utf-16").split("\r\n")
                assert lines[-1] == "" and len(lines[0].split("\t")) > 80
                n = len(lines) - 2
            else:
                delim, enc = fmt.get(name.split("/")[1], (",", "utf-8"))
                n = len(list(csv.reader(io.StringIO(data.decode(enc)), delimiter=delim))) - 1
            assert int(truth[name]["records_received"]) == n, name
            total += n
        feed_row = {r["feed"]: r for r in read_csv(landing.parent / "truth" / "feed_counts.csv")}[
            feed
        ]
        assert int(feed_row["records_received"]) == total
        assert int(feed_row["files"]) == len(files)


def test_counts_add_up_and_use_the_vocabulary(cohort):
    t = cohort / "truth"
    q = read_csv(t / "quarantine_expected.csv")
    assert {r["check_name"] for r in q} <= set(CHECK_NAMES)
    for f in read_csv(t / "feed_counts.csv"):
        rec, acc, qua = (
            int(f[k]) for k in ("records_received", "records_accepted", "records_quarantined")
        )
        assert rec == acc + qua
        assert qua == sum(int(r["count"]) for r in q if r["feed"] == f["feed"])
    bad = read_csv(t / "bad_records.csv")
    assert len(bad) == sum(int(r["count"]) for r in q)
    kinds = {(r["feed"], r["check_name"]): int(r["count"]) for r in q}
    assert kinds[("hl7", "malformed_message")] == 2
    assert kinds[("lab_csv", "unknown_unit")] == 2
    assert kinds[("dexa", "duplicate_file")] == 2
    assert kinds[("meds", "implausible_value")] == 2


def test_bad_csv_rows_are_where_the_truth_says(cohort):
    landing = cohort / "landing"
    for b in read_csv(cohort / "truth" / "bad_records.csv"):
        if b["feed"] != "lab_csv" or b["position"] == "file":
            continue
        enc = "utf-8" if b["source"] == "northlab" else "iso-8859-1"
        lines = (landing / b["file"]).read_bytes().decode(enc).splitlines()
        line = lines[int(b["position"].split()[1]) - 1]
        if b["check_name"] == "unknown_unit":
            assert "ng/dL" in line
        elif b["check_name"] == "future_date":
            assert "2099" in line
        elif b["check_name"] == "missing_patient_id":
            assert line.startswith("," if b["source"] == "northlab" else ";")


def parse_hl7_e2(cohort: Path) -> dict:
    """Current E2 results of the HL7 feed, read with python-hl7 and applying C / D by MSH-7."""
    local = yaml.safe_load((ROOT / "config/sources/hl7/LABWH_LIS.yaml").read_text())["local_codes"]
    latest: dict[tuple, tuple] = {}
    files = {p.name: p.read_bytes() for p in sorted((cohort / "landing" / "hl7").iterdir())}
    for name, data in files.items():
        if name in duplicates(files):
            continue
        for msg in hl7_messages(data):
            if is_malformed(msg):
                continue
            m = hl7.parse("\r".join(msg))
            at = str(m.segment("MSH")[7])[:14]
            mrn, filler, collected = None, None, None
            for seg in m:
                sid = str(seg[0])
                if sid == "PID":
                    reps = [str(r) for r in seg[3]] if str(seg[3]) else []
                    mr = [r for r in reps if r.endswith("^MR")]
                    mrn = mr[0].split("^")[0] if mr else None
                elif sid == "OBR":
                    filler, collected = str(seg[3][0][0]), str(seg[7])[:8]
                elif sid == "OBX":
                    ident = str(seg[3]).split("^")
                    loinc = ident[3] if len(ident) > 5 and ident[5] == "LN" else local.get(ident[0])
                    if loinc not in E2_LOINCS or mrn is None or collected.startswith("2099"):
                        continue
                    unit, raw = str(seg[6]), str(seg[5])
                    comp = "<" if raw.startswith("<^") else ""
                    try:
                        num = float(raw.split("^")[-1])
                    except ValueError:
                        continue  # unparseable
                    if unit == "pmol/L":
                        num /= PMOL_PER_PG
                    elif unit != "pg/mL" or not 0 <= num <= 40000:
                        continue  # unknown unit / implausible
                    key = (filler, ident[0])
                    if key not in latest or at > latest[key][0]:
                        latest[key] = (at, mrn, collected, num, comp, str(seg[11]))
    return {k: v for k, v in latest.items() if v[5] in ("F", "C")}


def test_e2_truth_of_hl7_matches_an_independent_parse(cohort):
    mine = parse_hl7_e2(cohort)
    truth = [r for r in read_csv(cohort / "truth" / "e2_results.csv") if r["feed"] == "hl7"]
    assert len(truth) == len(mine)
    by_key = {(r["order_id"], r["code"]): r for r in truth}
    for key, (_, mrn, collected, num, comp, status) in mine.items():
        r = by_key[key]
        assert r["mrn"] == mrn and r["collected_date"].replace("-", "") == collected
        assert float(r["value_pg_ml"]) == pytest.approx(num, rel=1e-3)
        assert r["comparator"] == comp and r["result_status"] == status


def test_e2_truth_of_csv_matches_an_independent_parse(cohort):
    mine = []
    for source, delim, enc, codes in (("northlab", ",", "utf-8", {"E2SENS", "E2IA"}),
                                      ("southlab", ";", "iso-8859-1", {"E2"})):  # fmt: skip
        cfg = yaml.safe_load((ROOT / f"config/sources/lab_csv/{source}.yaml").read_text())
        cols = cfg["columns"]
        files = {
            p.name: p.read_bytes() for p in sorted((cohort / "landing/lab_csv" / source).iterdir())
        }
        for name, data in files.items():
            if name in duplicates(files):
                continue
            for row in csv.DictReader(io.StringIO(data.decode(enc)), delimiter=delim):
                value = row[cols["value"]].replace(",", ".")
                if (
                    row[cols["code"]] not in codes
                    or not row[cols["patient_id"]]
                    or "2099" in row[cols["collected_at"]]
                ):
                    continue
                parts = value.split()
                unit = parts[1] if len(parts) == 2 else row[cols["unit"]]
                comp = "<" if value.startswith("<") else ""
                try:
                    num = float(parts[0].lstrip("<"))
                    day = dt.datetime.strptime(
                        row[cols["collected_at"]][:10], cfg["datetime_formats"][-1]
                    ).date()
                except ValueError:
                    continue
                if unit == "pmol/L":
                    num /= PMOL_PER_PG
                elif unit.lower() != "pg/ml" or num > 40000:
                    continue
                mine.append((row[cols["patient_id"]], day.isoformat(), round(num, 2), comp))
    truth = [(r["mrn"], r["collected_date"], round(float(r["value_pg_ml"]), 2), r["comparator"])
             for r in read_csv(cohort / "truth" / "e2_results.csv") if r["feed"] == "lab_csv"]  # fmt: skip
    assert sorted(truth) == sorted(mine)


def test_yaml_mappings_cover_what_the_files_hold(cohort):
    for source, delim, enc in (("northlab", ",", "utf-8"), ("southlab", ";", "iso-8859-1")):
        cfg = yaml.safe_load((ROOT / f"config/sources/lab_csv/{source}.yaml").read_text())
        assert cfg["patient_id_system"] == "NORTH_CLINIC"
        headers = [h for h in cfg["columns"].values() if h]
        codes = set()
        for p in (cohort / "landing/lab_csv" / source).iterdir():
            rows = list(csv.reader(io.StringIO(p.read_bytes().decode(enc)), delimiter=delim))
            assert rows[0] == headers
            codes |= {r[headers.index(cfg["columns"]["code"])] for r in rows[1:]}
        assert codes - set(cfg["local_codes"]) == {"PSA"}  # deliberately unmapped
    hl7_cfg = yaml.safe_load((ROOT / "config/sources/hl7/LABWH_LIS.yaml").read_text())
    assert hl7_cfg["timezone"] == "America/New_York"
    assert {"E2", "E2M", "TT", "SHBG", "CTX", "P1NP"} <= set(hl7_cfg["local_codes"])


def test_cohort_has_the_edges_the_pipeline_must_handle(tmp_path):
    generate(120, 7, tmp_path)
    t = tmp_path / "truth"
    e2 = read_csv(t / "e2_results.csv")
    assert any(r["comparator"] == "<" and float(r["value_pg_ml"]) > 20 for r in e2)
    assert any(r["result_status"] == "C" for r in e2)
    assert {"2243-4", "14715-7", "83096-8"} <= {r["loinc_code"] for r in e2}
    feat = [r for r in read_csv(t / "feat_e2_exposure.csv") if r["threshold_pg_ml"] == "20.0"]
    assert any(int(r["indeterminate_days"]) > 0 for r in feat)
    assert any(int(r["gap_days"]) > 0 for r in feat)
    assert any(int(r["anastrozole_days"]) > 0 for r in feat)
    bmd = read_csv(t / "feat_bmd_trend.csv")
    assert any(r["uses_sbmd"] == "true" for r in bmd)
    assert any(r["sbmd_is_approximate"] == "true" for r in bmd)
    assert {r["reason"] for r in bmd} >= {"", "fewer_than_2_scans"}
    # patients whose spine E2 was mostly low lose bone faster (the model's intent)
    pts = {r["mrn"]: r for r in read_csv(t / "patients.csv")}
    spine = [r for r in bmd if r["site"] == "lumbar_spine" and r["slope_pct_per_year"]]
    low = [float(r["slope_pct_per_year"]) for r in spine
           if float(pts[r["mrn"]]["low_e2_years"]) > 0.8 * float(r["span_years"])]  # fmt: skip
    high = [
        float(r["slope_pct_per_year"]) for r in spine if float(pts[r["mrn"]]["low_e2_years"]) == 0
    ]
    assert low and high and sum(low) / len(low) < sum(high) / len(high) - 0.5


def test_hl7_quirks_corrections_later_and_two_patients(cohort):
    files = sorted((cohort / "landing" / "hl7").iterdir())
    first_seen: dict[tuple, tuple[int, str]] = {}  # (filler, code) -> (file index, MSH-7)
    later = two_patients = non_ascii = mllp = 0
    for ix, path in enumerate(files):
        data = path.read_bytes()
        mllp += data.startswith(b"\x0b")
        non_ascii += any(b > 127 for b in data)
        for msg in hl7_messages(data):
            if is_malformed(msg):
                continue
            at = msg[0].split("|")[6][:14]
            two_patients += sum(1 for s in msg if s.startswith("PID|")) == 2
            filler = None
            for seg in msg:
                f = seg.split("|")
                if f[0] == "OBR":
                    filler = f[3]
                elif f[0] == "OBX":
                    key = (filler, f[3].split("^")[0])
                    if f[11] in ("C", "D"):
                        orig_ix, orig_at = first_seen[key]
                        assert orig_ix < ix and orig_at < at
                        later += 1
                    else:
                        first_seen.setdefault(key, (ix, at))
    assert later and two_patients and non_ascii and mllp


def test_lunar_total_body_exports_are_counted_but_not_hips(tmp_path):
    generate(80, 5, tmp_path)
    tb = sorted((tmp_path / "landing" / "dexa" / "lunar").glob("*_Total_Body*.txt"))
    assert tb
    header = tb[0].read_bytes().decode("utf-16").split("\r\n")[0].split("\t")
    assert header[:5] == ["Last Name", "First Name", "Patient ID", "Measure Date", "Head BMD"]
    assert "Total Left BMD" in header and "Neck Left BMD" not in header
    body = tb[0].read_bytes().decode("utf-16")
    assert re.search(r"\t\d,\d{3}\.\d\d\t", body)  # thousands separators in BMC / Area
    scans = read_csv(tmp_path / "truth" / "dexa_scans.csv")
    assert {s["site"] for s in scans} == {"lumbar_spine", "total_hip", "femoral_neck"}
