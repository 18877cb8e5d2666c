"""One generated cohort run through the whole Dagster graph (twice) per test session."""

from __future__ import annotations

import hashlib

import duckdb
import pytest

from transforms.pseudonym import make_pseudonymizer

KEY = "integration-test-key"
PATIENTS = 60
SEED = 11

# columns that legitimately differ between two runs on the same input
VOLATILE = {
    "run_id",
    "received_at",
    "quarantined_at",
    "started_at",
    "finished_at",
    "built_at",
    "release_run_id",
    "released_at",
    "valid_from",
    "valid_to",
}
RUN_BOOKKEEPING = {
    "raw.runs",
    "raw.touched_patients",
    "raw.feature_state",
    "quality.run_feed_stats",
    "quality.gx_results",  # one row per expectation per run, by design
}


def checksums(db_path) -> dict[str, str]:
    """Order-independent checksum of every warehouse table (run bookkeeping aside)."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute(
                "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
                "WHERE schema_name IN ('staging', 'core', 'marts', 'quality', 'raw') ORDER BY 1"
            ).fetchall()
        ]
        out = {}
        for t in tables:
            if t in RUN_BOOKKEEPING:
                continue
            rows = con.execute("SELECT * FROM " + t).fetchall()  # noqa: S608 - catalog names
            names = [d[0] for d in con.description]
            keep = [i for i, c in enumerate(names) if c not in VOLATILE]
            lines = sorted(repr(tuple(r[i] for i in keep)) for r in rows)
            out[t] = hashlib.sha256("\n".join(lines).encode()).hexdigest()
        return out
    finally:
        con.close()


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    from pipelines.cli import run_pipeline
    from transforms.generate import generate
    from warehouse.home import Home

    base = tmp_path_factory.mktemp("e2e")
    mp = pytest.MonkeyPatch()
    mp.setenv("LABWH_HMAC_KEY", KEY)
    mp.setenv("LABWH_HOME", str(base / "home"))
    gen = base / "gen"
    generate(PATIENTS, SEED, gen)
    home = Home.from_env(base / "home")
    first = run_pipeline(home, gen / "landing", quiet=True)
    sums_first = checksums(home.warehouse)
    second = run_pipeline(home, gen / "landing", quiet=True)
    sums_second = checksums(home.warehouse)
    yield {
        "home": home,
        "gen": gen,
        "truth": gen / "truth",
        "run_id": first.run_id,
        "second_run_id": second.run_id,
        "sums": (sums_first, sums_second),
        "pk": make_pseudonymizer(KEY.encode()),
    }
    mp.undo()


@pytest.fixture(scope="session")
def published_warehouse(pipeline):
    return pipeline["home"].published
