"""Crash safety: a load killed with SIGKILL at any point loses, doubles and corrupts nothing.

A subprocess runs the pipeline's steps (the same sequence as the Dagster graph: land → stage
per feed → core → features → OMOP → publish) over a landing folder of many small generated
files, and is killed with SIGKILL after a seeded random delay, several times in a row on the
same home. After every kill the warehouse must open and be consistent file by file (a file is
either untouched — status ``received``, no staged or quarantine rows — or complete with
exactly the rows an uninterrupted run gives it). After the last kill a run completes, and the
tables must equal, row for row (order-independent, run ids and timestamps left out), those of
an uninterrupted run on the same landing folder.

The second test stops a run at each step boundary (what a crash, a failed asset or a
cancelled Dagster run leaves behind) and checks that the next run repairs everything,
including the incremental feature marts.

More kills: ``LABWH_CRASH_KILLS=30 pytest tests/integration/test_crash_safety.py`` or
``pytest -m slow tests/integration/test_crash_safety.py``.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KEY = "crash-test-key"
SEED = 20261125
DEFAULT_KILLS = int(os.environ.get("LABWH_CRASH_KILLS", "5"))

# Columns that legitimately differ between an interrupted and an uninterrupted history.
RUN_COLUMNS = frozenset(
    {
        "run_id",
        "received_at",
        "quarantined_at",
        "released_at",
        "release_run_id",
        "quarantine_id",
        "built_at",
        # CSV result versions are dated by receipt (raw.files.received_at): wall clock
        "valid_from",
        "valid_to",
    }
)
# BUG (reported): several staged DXA rows of one record failing the same check give several
# rejects; quality.quarantine keeps one of them arbitrarily (INSERT OR IGNORE on
# (file, position, check)), so reason/excerpt vary between two runs on the same bytes.
# See test_hostile_input.py::test_quarantine_row_is_deterministic_for_multi_site_dexa_record.
UNSTABLE_COLUMNS = {"quality.quarantine": frozenset({"reason", "excerpt"})}
# Run bookkeeping, keyed by run id: not part of the data.
RUN_TABLES = frozenset(
    {"raw.runs", "raw.touched_patients", "raw.feature_state", "quality.run_feed_stats"}
)
DATA_SCHEMAS = ("raw", "staging", "quality", "core", "marts")
STAGED = {
    "hl7": "staging.stg_hl7__lab_result",
    "lab_csv": "staging.stg_lab_csv__lab_result",
    "dexa": "staging.stg_dexa__scan",
    "meds": "staging.stg_meds__medication",
}
STEPS = ("start", "land", "stage:hl7", "stage:lab_csv", "stage:dexa", "stage:meds", "core")
STEPS += ("features", "omop", "publish", "finish")

WORKER = """
import sys
sys.path.insert(0, sys.argv[1])
import transforms.hl7 as h
# one HL7 message per chunk: the loader commits per chunk, so kills also land mid-file
h.iter_parse_hl7_file.__kwdefaults__["chunk_messages"] = 1
from test_crash_safety import run_steps
from warehouse.home import Home
print("ready", flush=True)
run_steps(Home.from_env(), sys.argv[2], progress=lambda s: print(s, flush=True))
print("done", flush=True)
"""


def run_steps(home, landing, *, stop_after: str | None = None, progress=None) -> str:
    """The pipeline's steps in the Dagster graph's order; returns the run id."""
    from transforms.landing import FEEDS
    from warehouse import params, steps
    from warehouse.publish import publish

    run_id = uuid.uuid4().hex
    landing = Path(landing)
    actions = {
        "start": lambda: steps.start_run(home, run_id, landing),
        "land": lambda: steps.land(home, landing, run_id),
        **{f"stage:{f}": (lambda f=f: steps.stage(home, f, run_id, log=progress)) for f in FEEDS},
        "core": lambda: steps.build_core(home, params.core_params()),
        "features": lambda: steps.build_features(home, params.feature_params(), run_id),
        "omop": lambda: steps.build_omop(home),
        "publish": lambda: publish(home),
        "finish": lambda: steps.finish_run(home, run_id),
    }
    assert tuple(actions) == STEPS
    for name, action in actions.items():
        action()
        if progress:
            progress(name)
        if name == stop_after:
            break
    return run_id


# --------------------------------------------------------------------------- inspection
def _norm(value):
    if isinstance(value, float):
        return float(f"{value:.10g}")
    return value


def table_rows(con, table: str) -> list[str]:
    """Sorted row texts of a table without run-specific columns."""
    schema, name = table.split(".")
    cols = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $s AND table_name = $t ORDER BY ordinal_position",
            {"s": schema, "t": name},
        ).fetchall()
        if r[0] not in RUN_COLUMNS and r[0] not in UNSTABLE_COLUMNS.get(table, ())
    ]
    select = ", ".join('"' + c + '"' for c in cols)
    rows = con.execute("SELECT " + select + " FROM " + table).fetchall()  # noqa: S608
    return sorted(repr(tuple(_norm(v) for v in r)) for r in rows)


def data_tables(con, schemas=DATA_SCHEMAS) -> list[str]:
    rows = con.execute(
        "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
        "WHERE list_contains($s, schema_name) ORDER BY 1",
        {"s": list(schemas)},
    ).fetchall()
    return [r[0] for r in rows if r[0] not in RUN_TABLES]


def snapshot(db: Path, schemas=DATA_SCHEMAS) -> dict[str, list[str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: table_rows(con, t) for t in data_tables(con, schemas)}
    finally:
        con.close()


def checksum(rows: list[str]) -> str:
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def diff(expected: dict, got: dict) -> list[str]:
    """Tables whose rows differ, with a sample of missing / extra rows."""
    out = []
    for t in sorted(set(expected) | set(got)):
        e, g = expected.get(t), got.get(t)
        if e is None or g is None:
            out.append(f"{t}: only in {'run' if e is None else 'reference'}")
        elif checksum(e) != checksum(g):
            missing = sorted(set(e) - set(g))[:2]
            extra = sorted(set(g) - set(e))[:2]
            out.append(
                f"{t}: {len(e)} rows expected, {len(g)} found; missing {missing} extra {extra}"
            )
    return out


def per_file_counts(con) -> dict[str, tuple]:
    """file sha → (status, staged rows, open quarantine positions, n_received/accepted/quarantined)."""
    staged: dict[str, int] = {}
    # a kill during the very first schema creation leaves some tables missing: the next
    # writer creates them (CREATE … IF NOT EXISTS); until then they hold nothing
    existing = set(data_tables(con, ("raw", "staging", "quality")))
    if not {"raw.files", "quality.quarantine"} <= existing:
        return {}
    for table in [t for t in STAGED.values() if t in existing]:
        for sha, n in con.execute(
            "SELECT file_sha256, count(*) FROM " + table + " GROUP BY 1"  # noqa: S608
        ).fetchall():
            staged[sha] = staged.get(sha, 0) + n
    quarantined = dict(
        con.execute(
            "SELECT file_sha256, count(DISTINCT position) FROM quality.quarantine "
            "WHERE released_at IS NULL AND check_name <> 'duplicate_file' GROUP BY 1"
        ).fetchall()
    )
    files = con.execute(
        "SELECT file_sha256, status, n_received, n_accepted, n_quarantined FROM raw.files"
    ).fetchall()
    out = {}
    for sha, status, rec, acc, q in files:
        out[sha] = (status, staged.pop(sha, 0), quarantined.pop(sha, 0), rec, acc, q)
    for sha in set(staged) | set(quarantined):  # rows of a file raw.files does not know
        out[sha] = ("<no raw.files row>", staged.get(sha, 0), quarantined.get(sha, 0))
    return out


def _per_file(home) -> dict:
    if not home.warehouse.exists():
        return {}
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return per_file_counts(con)
    finally:
        con.close()


def core_files(con) -> dict[str, str]:
    """file sha → a core table holding rows of it."""
    out = {}
    for (table,) in con.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.columns "
        "WHERE table_schema = 'core' AND column_name = 'file_sha256'"
    ).fetchall():
        for (sha,) in con.execute("SELECT DISTINCT file_sha256 FROM " + table).fetchall():  # noqa: S608
            out[sha] = table
    return out


def consistency_problems(
    home, reference: dict[str, tuple], partial: list[str] | None = None
) -> list[str]:
    """Everything wrong with a warehouse left behind by a killed run (empty list: consistent).

    A file still ``received`` may hold the rows of the chunks committed before the kill
    (HL7 commits per chunk; listed in ``partial``) as long as core does not see them."""
    partial = [] if partial is None else partial
    from transforms.landing import sha256_file
    from warehouse.ingest import archive_path

    problems = []
    if not home.warehouse.exists():  # killed before the first transaction
        return problems
    con = duckdb.connect(str(home.warehouse))  # read-write: replays the WAL like the next run
    try:
        counts = per_file_counts(con)
        in_core = core_files(con)
        dangling = 0
        if "raw.deliveries" in data_tables(con, ("raw",)):
            dangling = con.execute(
                "SELECT count(*) FROM raw.deliveries d ANTI JOIN raw.files f USING (file_sha256)"
            ).fetchone()[0]
    finally:
        con.close()
    if dangling:
        problems.append(f"{dangling} deliveries point at no raw.files row")
    for sha, state in counts.items():
        status = state[0]
        if status == "received":
            if sha in in_core:  # a half-staged (chunk-committed) file must stay invisible
                problems.append(f"{sha[:12]} status received but its rows are in {in_core[sha]}")
            if state[1] or state[2]:
                partial.append(sha)
        elif status in ("parsed", "failed"):
            if state != reference.get(sha):
                problems.append(f"{sha[:12]} {state} != uninterrupted {reference.get(sha)}")
        else:
            problems.append(f"{sha[:12]} bad state {state}")
        path = archive_path(home, sha)
        if not path.is_file() or sha256_file(path) != sha:
            problems.append(f"{sha[:12]} archive copy missing or not the received bytes")
    for db in (home.identity_db, home.published):
        if db.exists():
            duckdb.connect(str(db), read_only=True).close()  # opens
    return problems


# --------------------------------------------------------------------------- fixtures
def _copy_tree(files: list[tuple[Path, Path]], dest: Path) -> Path:
    for src, rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A small generated cohort split into an early delivery (A) and everything (AB)."""
    from transforms.generate import generate

    base = tmp_path_factory.mktemp("crash")
    generate(4, 11, base / "gen")
    landing = base / "gen" / "landing"
    files = sorted((p, p.relative_to(landing)) for p in landing.rglob("*") if p.is_file())
    early = [(p, r) for p, r in files if not re.search(r"202[23]", p.name)]
    return {
        "base": base,
        "A": _copy_tree(early, base / "A"),
        "AB": _copy_tree(files, base / "AB"),
        "n_files": len(files),
    }


@pytest.fixture(scope="module")
def key_env():
    mp = pytest.MonkeyPatch()
    mp.setenv("LABWH_HMAC_KEY", KEY)
    yield
    mp.undo()


@pytest.fixture(scope="module")
def reference_ab(cohort, key_env):
    """An uninterrupted run on AB from an empty home: its tables and per-file counts."""
    from warehouse.home import Home

    home = Home(cohort["base"] / "ref_ab")
    events = []
    run_steps(home, cohort["AB"], progress=events.append)
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        per_file = per_file_counts(con)
    finally:
        con.close()
    return {"tables": snapshot(home.warehouse), "per_file": per_file, "events": len(events)}


# --------------------------------------------------------------------------- tests
def _kill_loop(cohort, reference, tmp_path, kills: int, seed: int) -> dict:
    from warehouse.home import Home

    home = Home(tmp_path / "home")
    env = {**os.environ, "LABWH_HOME": str(home.root), "LABWH_HMAC_KEY": KEY}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    rng = random.Random(seed)
    outcomes = []
    half_staged = 0  # kills that left a file half staged (chunks committed, not 'parsed')
    for i in range(kills):
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(HERE), str(cohort["AB"])],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        first = proc.stdout.readline()  # imports done
        assert first.strip() == "ready", first + proc.stdout.read()
        # the kill point: after a random number of progress events (steps, staged files) of
        # this run, plus a random delay, so kills land inside every step, not only the first
        events = rng.randint(0, 2 * reference["events"] // kills)
        last = "ready"
        for _ in range(events):
            line = proc.stdout.readline()
            if not line:
                break
            last = line.split("]")[0].strip("[ \n") if line.startswith("[") else line.strip()
        delay = rng.uniform(0.0, 0.5)
        try:
            proc.wait(timeout=delay)
            killed = False
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed = True
        partial: list[str] = []
        problems = consistency_problems(home, reference["per_file"], partial)
        half_staged += len(partial)
        done = sum(s[0] != "received" for s in _per_file(home).values())
        state = f"killed {delay:.2f}s after '{last}'" if killed else "completed"
        outcomes.append((i, state, f"{done}/{len(reference['per_file'])} files staged"))
        assert not problems, f"after kill {i} ({outcomes[-1]}): {problems}"
    # the next, uninterrupted run completes every file exactly once
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(HERE), str(cohort["AB"])],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert not consistency_problems(home, reference["per_file"])
    leftovers = [p.name for p in home.published.parent.glob(".analytics-*")]
    return {
        "home": home,
        "outcomes": outcomes,
        "snapshot_leftovers": leftovers,
        "half_staged": half_staged,
    }


def _assert_same_data(reference_tables: dict, home, schemas) -> None:
    got = snapshot(home.warehouse, schemas)
    want = {t: rows for t, rows in reference_tables.items() if t.split(".")[0] in schemas}
    assert not diff(want, got)


def test_sigkill_at_random_points_loses_and_doubles_nothing(cohort, reference_ab, tmp_path):
    result = _kill_loop(cohort, reference_ab, tmp_path, DEFAULT_KILLS, SEED)
    print("kill outcomes:", result["outcomes"])
    print("half-staged files seen after kills:", result["half_staged"])
    print("temp snapshots left in published/:", result["snapshot_leftovers"])
    assert sum("killed" in o[1] for o in result["outcomes"]) >= DEFAULT_KILLS // 2
    # raw, staged, quarantine, core and the (incrementally refreshed) marts equal the
    # uninterrupted run's, row for row
    _assert_same_data(reference_ab["tables"], result["home"], DATA_SCHEMAS)
    published = snapshot(result["home"].published, ("core",))
    assert not diff(
        {t: r for t, r in reference_ab["tables"].items() if t.startswith("core.")}, published
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_many_times(cohort, reference_ab, tmp_path, seed):
    result = _kill_loop(cohort, reference_ab, tmp_path, 25, seed)
    _assert_same_data(reference_ab["tables"], result["home"], DATA_SCHEMAS)


@pytest.fixture(scope="module")
def home_after_a(cohort, key_env):
    """A home that has loaded the early delivery A completely (features built)."""
    from warehouse.home import Home

    home = Home(cohort["base"] / "after_a")
    run_steps(home, cohort["A"])
    return home


def _copy_home(home, dest: Path):
    from warehouse.home import Home

    shutil.copytree(home.root, dest)
    return Home(dest)


@pytest.fixture(scope="module")
def reference_a_then_ab(cohort, home_after_a):
    """Uninterrupted: a run on the early delivery A, then a run on AB (incremental marts)."""
    home = _copy_home(home_after_a, cohort["base"] / "ref_a_ab")
    run_steps(home, cohort["AB"])
    return snapshot(home.warehouse)


@pytest.mark.parametrize(
    "stop_after",
    [
        "land",
        "stage:hl7",
        "stage:meds",  # was a bug (stale marts), fixed in 4c0554d: touched patients pending
        "features",
    ],
)
def test_run_stopped_at_a_step_boundary_is_repaired_by_the_next_run(
    cohort, home_after_a, reference_a_then_ab, tmp_path, stop_after
):
    """A run that dies between two steps (crash, failed or cancelled asset): the next run
    must leave exactly the data of an uninterrupted history, feature marts included."""
    home = _copy_home(home_after_a, tmp_path / "home")
    run_steps(home, cohort["AB"], stop_after=stop_after)
    run_steps(home, cohort["AB"])
    assert not diff(reference_a_then_ab, snapshot(home.warehouse))


def test_publish_removes_temp_snapshots_left_by_a_killed_publish(cohort, home_after_a, tmp_path):
    from warehouse.publish import publish

    home = _copy_home(home_after_a, tmp_path / "home")
    stale = home.published.parent / f".analytics-{uuid.uuid4().hex}.duckdb"
    shutil.copyfile(home.published, stale)
    os.utime(stale, (time.time() - 7200, time.time() - 7200))  # left by a run 2 hours ago
    publish(home)
    assert sorted(p.name for p in home.published.parent.iterdir()) == ["analytics.duckdb"]
