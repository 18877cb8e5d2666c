"""Benchmark: HL7 ORU^R01 file → staged DuckDB table, this parser vs a python-hl7 loop.

    .venv/bin/python bench/bench_hl7.py --sizes 50000 200000 --baseline-messages 20000

For each size a deterministic file is synthesized (3 OBX per message), then each side runs
in its own subprocess so that peak RSS (VmHWM) is that side's alone:

- ``fast``: ``iter_parse_hl7_file`` streaming the file in chunks (parse, polars frame,
  labnorm normalization), each chunk staged as ``warehouse.ingest.stage_file`` does it
  (``StagedAppender``: whole DuckDB row groups per INSERT) into an on-disk DuckDB database.
- ``baseline``: what a typical engineer writes with the ``hl7`` package: split the file into
  messages, ``hl7.parse`` each, walk OBX, build one dict per OBX with the same staged columns
  (same pseudonymized key, the same shared timestamp conversion, numbers), and every 10,000
  rows make a polars DataFrame, run the same labnorm normalization and insert it with the
  product's ``insert_staged``. It runs on the first ``--baseline-messages`` messages; its rate
  is extrapolated to the file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECRET = b"bench-secret"
OBX_PER_MESSAGE = 3


def synthesize(n_messages: int, path: Path, seed: int = 20230105) -> None:
    """Write ``n_messages`` ORU^R01 messages (CR-terminated segments) to ``path``."""
    rng = random.Random(seed)
    base = dt.datetime(2020, 1, 1, 8, 0)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for i in range(n_messages):
            pat = rng.randrange(20_000)
            at = base + dt.timedelta(minutes=7 * i)
            ts = at.strftime("%Y%m%d%H%M%S")
            off = "-0500"
            e2 = round(rng.uniform(4, 60), 1)
            censored = rng.random() < 0.15
            e2_obx = (
                f"OBX|2|SN|E2^Estradiol^L^2243-4^Estradiol^LN||<^5|pg/mL|10-40|L|||F|||{ts}{off}"
                if censored
                else f"OBX|2|NM|E2^Estradiol^L^2243-4^Estradiol^LN||{e2}|pg/mL|10-40|N|||F|||{ts}{off}"
            )
            fh.write(
                f"MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|{ts}{off}||ORU^R01^ORU_R01|"
                f"MSG{i:08d}|P|2.5.1\r"
                f"PID|1||MRN{pat:07d}^^^NORTH_CLINIC^MR||DOE{pat}^JOHN||19{50 + pat % 40}0312|M\r"
                f"ORC|RE||FIL{i:08d}^LABWH_LIS\r"
                f"OBR|1||FIL{i:08d}^LABWH_LIS|HORM^Hormone panel^L|||{ts}{off}"
                "|||||||||||||||||F\r"
                f"OBX|1|NM|E2M^Estradiol molar^L^14715-7^Estradiol^LN||{round(e2 * 3.671, 1)}"
                f"|pmol/L|||N|||F\r"
                f"{e2_obx}\r"
                f"OBX|3|NM|TT^Testosterone total^L^2986-8^Testosterone^LN||{rng.randrange(200, 900)}"
                f"|ng/dL|264-916|N|||F\r"
            )


def _peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM; ru_maxrss would include the parent's at exec)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its reaped children, all threads."""
    return sum(
        r.ru_utime + r.ru_stime
        for r in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


def _connect(db: Path):
    """The staged-table database, set up the same way for both sides."""
    import duckdb

    from schemas.staging import StgLabResult, empty_frame

    con = duckdb.connect(str(db))
    con.execute("SET memory_limit = '256MB'")  # table pages go to disk, not to RSS
    con.execute("SET preserve_insertion_order = false")  # rows carry their position
    empty = empty_frame(StgLabResult)  # noqa: F841 (read by DuckDB's replacement scan)
    con.execute("CREATE TABLE t AS SELECT * FROM empty")
    return con


def _insert(con, df) -> int:
    """Append a staged frame to table t the way the product stages a parsed chunk."""
    from warehouse.ingest import insert_staged

    insert_staged(con, "t", df)
    return df.height


def run_fast(path: Path, db: Path, workers: int, chunk_messages: int) -> dict:
    from transforms.hl7 import iter_parse_hl7_file
    from transforms.pseudonym import make_pseudonymizer
    from warehouse.ingest import StagedAppender

    con = _connect(db)
    rows = rejects = 0
    # as warehouse.ingest.stage_file does: parse a chunk, append it (whole row groups are
    # inserted, the rest waits for the next chunk), then the next one; flush at the end
    appender = StagedAppender(con, "t")
    for part in iter_parse_hl7_file(
        path,
        file_sha256="x" * 64,  # known from landing when a file is staged, as on the other side
        pseudonymize=make_pseudonymizer(SECRET),
        chunk_messages=chunk_messages,
        workers=workers,
    ):
        appender.add(part.rows)
        rows += part.rows.height
        rejects += len(part.rejects)
        del part
    appender.flush()
    stored = con.execute("SELECT count(*) FROM t").fetchone()[0]
    con.close()
    return {"rows": rows, "stored": stored, "rejects": rejects}


def run_parse_only(path: Path, _db: Path, workers: int, chunk_messages: int) -> dict:
    """The parser alone (no DuckDB): its memory is what must stay flat as files grow."""
    from transforms.hl7 import iter_parse_hl7_file
    from transforms.pseudonym import make_pseudonymizer

    rows = 0
    for part in iter_parse_hl7_file(
        path,
        file_sha256="x" * 64,
        pseudonymize=make_pseudonymizer(SECRET),
        chunk_messages=chunk_messages,
        workers=workers,
    ):
        rows += part.rows.height
        del part
    return {"rows": rows, "stored": rows}


def run_baseline(path: Path, db: Path, limit: int, _unused: int = 0) -> dict:
    """The per-message loop with python-hl7 (timed over the first ``limit`` messages).

    It builds the same staged table: the same columns from the message, the same shared
    timestamp conversion and normalization (labnorm, per batch of 10,000 rows).
    """
    import hl7
    import polars as pl

    from schemas.staging import StgLabResult, columns_of
    from transforms.catalog import load_catalog
    from transforms.hl7.timestamps import parse_dtm
    from transforms.labnorm import normalize_lab_results
    from transforms.pseudonym import make_pseudonymizer

    schema = columns_of(StgLabResult)
    catalog = load_catalog()
    pseudonymize = make_pseudonymizer(SECRET)
    tz = "America/New_York"

    def get(seg, field: int, component: int = 1) -> str:
        try:
            value = seg(field)(1)
        except IndexError:
            return ""
        if isinstance(value, str):
            return value if component == 1 else ""
        try:
            return str(value(component))
        except IndexError:
            return ""

    text = path.read_text(encoding="utf-8").replace("\r\n", "\r").replace("\n", "\r")
    raw_messages = ["MSH" + m for m in text.split("\rMSH") if m]
    raw_messages[0] = raw_messages[0][3:]
    con = _connect(db)
    batch: list[dict] = []
    stored = 0

    def flush() -> None:
        nonlocal stored
        frame = pl.DataFrame(batch, schema=schema)
        df, _rejects = normalize_lab_results(frame, local_codes={}, catalog=catalog)
        stored += _insert(con, df)
        batch.clear()

    n = 0
    for i, raw in enumerate(raw_messages[:limit]):
        msg = hl7.parse(raw)
        msh = msg.segment("MSH")
        pid = msg.segment("PID")
        key = pseudonymize(get(pid, 3, 4) or get(msh, 4), get(pid, 3, 1))
        header = {
            "file_sha256": "x" * 64,
            "source_system": get(msh, 3),
            "sending_application": get(msh, 3),
            "sending_facility": get(msh, 4),
            "message_control_id": get(msh, 10),
            "hl7_version": get(msh, 12),
            "message_at": parse_dtm(get(msh, 7), tz),
            "message_index": i,
            "patient_key": key,
            "birth_year": int(get(pid, 7)[:4]),
            "sex": get(pid, 8),
        }
        obr = None
        for j, seg in enumerate(msg):
            sid = str(seg(0))
            if sid == "OBR":
                obr = seg
            elif sid == "OBX":
                vtype = get(seg, 2)
                value = str(seg(5))
                comparator = None
                num = None
                if vtype == "SN":
                    comparator = get(seg, 5, 1) or None
                    num = float(get(seg, 5, 2))
                elif vtype == "NM" and value:
                    num = float(value)
                observed = parse_dtm(get(seg, 14), tz)
                batch.append(
                    {
                        **header,
                        "position": f"m{i}/s{j}",
                        "segment_index": j,
                        "filler_order_number": get(obr, 3) if obr else None,
                        "placer_order_number": get(obr, 2) if obr else None,
                        "order_status": get(obr, 25) if obr else None,
                        "collected_at": (parse_dtm(get(obr, 7), tz) if obr else None) or observed,
                        "observed_at": observed,
                        "source_code": get(seg, 3, 1),
                        "source_text": get(seg, 3, 2),
                        "source_code_system": get(seg, 3, 3),
                        "alt_code": get(seg, 3, 4),
                        "alt_text": get(seg, 3, 5),
                        "alt_code_system": get(seg, 3, 6),
                        "sub_id": get(seg, 4),
                        "value_type": vtype,
                        "original_value": value,
                        "original_unit": get(seg, 6),
                        "value_num_original": num,
                        "comparator": comparator,
                        "value_text": None if num is not None else value,
                        "reference_range": get(seg, 7),
                        "abnormal_flags": get(seg, 8),
                        "result_status": get(seg, 11),
                        "method": get(seg, 17) or None,
                        "is_mapped": False,
                    }
                )
                if len(batch) >= 10_000:
                    flush()
        n += 1
    if batch:
        flush()
    con.close()
    return {"messages": n, "stored": stored}


def _worker(argv: list[str]) -> None:
    kind, path, db, arg, arg2 = argv
    fn = {"fast": run_fast, "parse": run_parse_only, "baseline": run_baseline}[kind]
    import duckdb  # noqa: F401  (imports are not part of the timed ingest)
    import hl7  # noqa: F401
    import polars  # noqa: F401

    import transforms.hl7  # noqa: F401

    rss_imports = _peak_rss_mb()
    t0, c0 = time.perf_counter(), _cpu_seconds()
    out = fn(Path(path), Path(db), int(arg), int(arg2))
    out["seconds"] = time.perf_counter() - t0
    out["cpu_seconds"] = _cpu_seconds() - c0
    out["rss_at_start_mb"] = rss_imports
    out["peak_rss_mb"] = _peak_rss_mb()
    # workers: ru_maxrss of reaped children, an upper bound (a spawned worker's count starts
    # from this process's peak when it was started)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    out["worker_peak_rss_mb"] = children
    print(json.dumps(out))


def _spawn(kind: str, path: Path, db: Path, arg: int, arg2: int = 0) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "_worker", kind, str(path), str(db), str(arg), str(arg2)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        _worker(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    ap.add_argument("--baseline-messages", type=int, default=20_000)
    ap.add_argument("--chunk-messages", type=int, default=50_000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}; load average at start "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print()
    print(
        "| messages | OBX | side | messages timed | wall s | CPU s | messages/s (wall) "
        "| messages/s (CPU) | peak RSS MB (worker) | ratio wall | ratio CPU |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"oru_{size}.hl7"
            synthesize(size, path)
            limit = min(size, args.baseline_messages)
            base = _spawn("baseline", path, Path(tmp) / f"base_{size}.duckdb", limit)
            assert base["stored"] == limit * OBX_PER_MESSAGE, base
            sides = [("python-hl7 loop", base, limit, " (extrapolated)")]
            for w in args.workers:
                db = Path(tmp) / f"fast_{size}_{w}.duckdb"
                fast = _spawn("fast", path, db, w, args.chunk_messages)
                assert fast["stored"] == size * OBX_PER_MESSAGE, fast
                name = "this parser, 1 process" if w == 1 else f"this parser, {w} workers"
                sides.insert(-1, (name, fast, size, ""))
            parse = _spawn("parse", path, path, 1, args.chunk_messages)
            sides.insert(-1, ("parser alone (no DuckDB), 1 process", parse, size, ""))
            obx = size * OBX_PER_MESSAGE
            base_wall = base["messages"] / base["seconds"]
            base_cpu = base["messages"] / base["cpu_seconds"]
            for name, side, n, note in sides:
                wall, cpu = n / side["seconds"], n / side["cpu_seconds"]
                rss = f"{side['peak_rss_mb']:.0f}"
                if side.get("worker_peak_rss_mb"):
                    rss += f" ({side['worker_peak_rss_mb']:.0f})"
                print(
                    f"| {size:,} | {obx:,} | {name} | {n:,}{note} | {side['seconds']:.2f} | "
                    f"{side['cpu_seconds']:.2f} | {wall:,.0f} | {cpu:,.0f} | {rss} | "
                    f"{wall / base_wall:.1f}× | {cpu / base_cpu:.1f}× |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
