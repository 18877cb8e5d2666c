"""The pipeline's steps on the warehouse, each callable on its own.

Dagster assets (pipelines/) call these one per asset; tests call them directly. Each step
opens what it needs from a ``Home`` and leaves the warehouse consistent when it returns or
fails (file-level transactions in ingestion, whole-table rebuilds elsewhere).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from transforms.landing import FEEDS, discover
from transforms.pseudonym import make_pseudonymizer
from warehouse import ingest, locks
from warehouse.home import Home
from warehouse.identity import IdentityStore
from warehouse.runner import MODELS_DIR, materialize, model_sql, used_params

CORE_MODELS = (
    "core.ref_omop_concept",
    "core.fct_lab_result_history",
    "core.fct_lab_result",
    "core.fct_dexa_scan",
    "core.fct_medication",
    "core.medication_exposure",
    "core.dim_patient",
)
FEATURE_MODELS = ("marts.feat_e2_exposure", "marts.feat_bmd_trend")
# the core tables the marts read, and those they are built from
MART_INPUT_MODELS = (
    "core.fct_lab_result_history",
    "core.fct_lab_result",
    "core.fct_dexa_scan",
    "core.fct_medication",
    "core.medication_exposure",
)


@contextmanager
def writer(home: Home, wait_s: float | None = None):
    """The writer's connection to the warehouse, with every layer's tables present; waits
    while another process reads or writes the file (warehouse/locks.py)."""
    home.ensure()
    con = locks.connect(home.warehouse, wait_s=wait_s)
    con.execute("SET enable_progress_bar = false")  # no progress bar in logs or CSV output
    try:
        ingest.ensure_schema(con)
        yield con
    finally:
        con.close()


def now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)


@dataclass
class FeedSummary:
    feed: str
    files: int = 0
    received: int = 0
    accepted: int = 0
    quarantined: int = 0
    by_check: dict[str, int] = field(default_factory=dict)

    def add(self, s: ingest.FileStats) -> None:
        self.files += 1
        self.received += s.received
        self.accepted += s.accepted
        self.quarantined += s.quarantined
        for k, v in s.by_check.items():
            self.by_check[k] = self.by_check.get(k, 0) + v


def start_run(
    home: Home,
    run_id: str,
    landing: Path,
    params: dict | None = None,
    succeeded: Callable[[str], bool] | None = None,
) -> None:
    """Record the run as 'running'. Under the run lock no other run is alive, so a run still
    'running' in raw.runs ended without its end being recorded: it becomes 'success' when
    ``succeeded(run_id)`` says so (the orchestrator saw a partial selection succeed before its
    success sensor ticked), 'failure' otherwise (it died, or its failure went unrecorded)."""
    with writer(home) as con:
        if locks.holds(home.run_lock):
            stale = con.execute(
                "SELECT run_id FROM raw.runs WHERE status = 'running' AND run_id <> $r",
                {"r": run_id},
            ).fetchall()
            for (old,) in stale:
                ok = succeeded is not None and succeeded(old)
                con.execute(
                    "UPDATE raw.runs SET status = $s, finished_at = $t WHERE run_id = $o",
                    {"s": "success" if ok else "failure", "t": now(), "o": old},
                )
        con.execute(
            "INSERT OR REPLACE INTO raw.runs (run_id, started_at, status, landing_dir, parameters_json) "
            "VALUES ($r, $t, 'running', $l, $p)",
            {
                "r": run_id,
                "t": now(),
                "l": str(landing),
                "p": json.dumps(params or {}, sort_keys=True),
            },
        )


class LandingMissing(FileNotFoundError):
    """The landing folder does not exist: not an empty delivery (an unmounted share?)."""


def check_landing(landing: Path) -> None:
    if not Path(landing).is_dir():
        raise LandingMissing(
            f"no landing folder at {landing}: create it, or mount the share it should be "
            "(a missing folder is not an empty delivery)"
        )


def land(
    home: Home, landing: Path, run_id: str, feeds: Iterable[str] = FEEDS
) -> dict[str, FeedSummary]:
    """Landing → raw: hash, archive and record new deliveries; count duplicate deliveries."""
    check_landing(landing)
    summaries = {f: FeedSummary(f) for f in feeds}
    files = discover(Path(landing), tuple(summaries))
    with writer(home) as con:
        result = ingest.register_deliveries(con, home, files, run_id=run_id, now=now())
        for dup in result.duplicates:
            summaries[dup.feed].add(dup)
            _record_stats(con, run_id, dup)
        con.execute(
            "UPDATE raw.runs SET n_files_new = $n WHERE run_id = $r",
            {"n": len(result.new_files), "r": run_id},
        )
    return summaries


def _record_stats(con, run_id: str, s: ingest.FileStats) -> None:
    con.execute(
        "INSERT INTO quality.run_feed_stats VALUES ($r, $f, 1, $rec, $acc, $q) "
        "ON CONFLICT (run_id, feed) DO UPDATE SET n_files = n_files + 1, "
        "n_received = n_received + $rec, n_accepted = n_accepted + $acc, "
        "n_quarantined = n_quarantined + $q",
        {"r": run_id, "f": s.feed, "rec": s.received, "acc": s.accepted, "q": s.quarantined},
    )


def stage(home: Home, feed: str, run_id: str, *, log=None) -> FeedSummary:
    """Raw → staged (+ quarantine) for every received, not yet staged file of ``feed``."""
    summary = FeedSummary(feed)
    pseudonymize = make_pseudonymizer(home.hmac_key())
    as_of = now()
    with writer(home) as con, IdentityStore(home.identity_db) as ids:
        pending = ingest.files_to_stage(con, feed)
        for i, (sha, source, name) in enumerate(pending, 1):
            t0 = time.perf_counter()
            stats = ingest.stage_file(
                con,
                home,
                ids,
                feed=feed,
                source=source,
                name=name,
                file_sha256=sha,
                pseudonymize=pseudonymize,
                run_id=run_id,
                as_of=as_of,
            )
            summary.add(stats)
            _record_stats(con, run_id, stats)
            record_touched(con, run_id, stats.patient_keys)
            if log:
                log(
                    f"[{feed} {i}/{len(pending)}] file {sha[:12]}: {stats.received} received, "
                    f"{stats.accepted} accepted, {stats.quarantined} quarantined "
                    f"({time.perf_counter() - t0:.1f}s)"
                )
    return summary


def record_touched(con, run_id: str, keys: set[str]) -> None:
    if keys:
        con.execute(
            "INSERT OR IGNORE INTO raw.touched_patients SELECT $r, unnest($k), NULL",
            {"r": run_id, "k": sorted(keys)},
        )


# raw.feature_state's row for what core was last built with: the marts' inputs
CORE_STATE = "core"
_STATE_OF = "SELECT params_json FROM raw.feature_state WHERE model = $m"
_SET_STATE = "INSERT OR REPLACE INTO raw.feature_state VALUES ($m, $p, $t, $r)"


def build_core(home: Home, params: dict, run_id: str | None = None) -> dict[str, int]:
    """Staged → core: full, deterministic rebuild of every core table from staged rows.

    Records what the marts' inputs were built with (``raw.feature_state``, model ``core``:
    the parameters and SQL of ``MART_INPUT_MODELS``): the marts are incremental, so a change
    there (the exposure persistence window, a lab-result model) must make the next feature
    build a full one; a change elsewhere in core (the OMOP concept file) need not."""
    counts = {}
    with writer(home) as con:
        con.execute("BEGIN")
        for name in CORE_MODELS:
            counts[name] = materialize(con, name, params)
        state = build_state(MART_INPUT_MODELS, params)
        con.execute(_SET_STATE, {"m": CORE_STATE, "p": state, "t": now(), "r": run_id})
        con.execute("COMMIT")
    return counts


def build_features(home: Home, params: dict, run_id: str, *, full: bool = False) -> dict[str, int]:
    """Core → marts: recompute the features of the patients this run touched.

    A full rebuild happens when the marts do not exist yet, when their parameters or their
    model SQL changed (an upgrade: the untouched patients' rows would keep the old
    definition), or when asked.
    """
    counts = {}
    with writer(home) as con:
        # every patient touched and not yet refreshed, by this run or an interrupted one
        touched = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT patient_key FROM raw.touched_patients WHERE refreshed_at IS NULL"
            ).fetchall()
        ]
        core = con.execute(_STATE_OF, {"m": CORE_STATE}).fetchone()
        con.execute("BEGIN")
        for name in FEATURE_MODELS:
            p_json = build_state((name,), params, core[0] if core else None)
            state = con.execute(_STATE_OF, {"m": name}).fetchone()
            incremental = not full and state is not None and state[0] == p_json
            counts[name] = materialize(
                con, name, params, patient_keys=touched if incremental else None
            )
            con.execute(_SET_STATE, {"m": name, "p": p_json, "t": now(), "r": run_id})
        con.execute(
            "UPDATE raw.touched_patients SET refreshed_at = $t WHERE refreshed_at IS NULL",
            {"t": now()},
        )
        con.execute("COMMIT")
    return counts


def build_state(names: tuple[str, ...], params: dict, core: str | None = None) -> str:
    """What models were built with: the parameters their SQL uses (a new LSC changes no E2
    state), the SHA-256 of their model SQL and, for a mart, the state core was built with
    (its inputs)."""
    sql = "\n".join(model_sql(n) for n in names)
    used = used_params(sql)
    state = {
        "params": {k: v for k, v in params.items() if k in used},
        "model_sha256": hashlib.sha256(sql.encode()).hexdigest(),
    }
    if core is not None:
        state["core"] = json.loads(core)
    return json.dumps(state, sort_keys=True, default=str)


def build_omop(home: Home) -> list[str]:
    """OMOP CDM v5.4 views over core (person, measurement, observation_period, drug_exposure)."""
    names = sorted(p.stem for p in (MODELS_DIR / "omop").glob("*.sql"))
    with writer(home) as con:
        for table in names:
            sql = model_sql("omop." + table)
            con.execute("CREATE OR REPLACE VIEW omop." + table + " AS " + sql)  # noqa: S608
    return names


def finish_run(
    home: Home, run_id: str, status: str = "success", at: dt.datetime | None = None
) -> None:
    with writer(home) as con:
        con.execute(
            "UPDATE raw.runs SET finished_at = $t, status = $s WHERE run_id = $r",
            {"t": at or now(), "s": status, "r": run_id},
        )


def close_if_running(home: Home, run_id: str, status: str, wait_s: float | None = None) -> bool:
    """Record how a run ended when nothing else did: ``failure`` (a step raised, a blocking
    check failed) or ``success`` (a selection that never reached the publish, which closes a
    whole run itself). A run already finished keeps its status. Returns whether a running
    run was marked."""
    if not home.warehouse.exists():
        return False
    with writer(home, wait_s) as con:
        marked = con.execute(
            "UPDATE raw.runs SET finished_at = $t, status = $s "
            "WHERE run_id = $r AND status = 'running' RETURNING run_id",
            {"t": now(), "s": status, "r": run_id},
        ).fetchall()
    return bool(marked)


def mark_failed(home: Home, run_id: str, wait_s: float | None = None) -> bool:
    """Record that a run ended in failure; see close_if_running."""
    return close_if_running(home, run_id, "failure", wait_s)


def run_status(home: Home, run_id: str) -> str | None:
    """The run's status in raw.runs, or None when it never got there."""
    if not home.warehouse.exists():
        return None
    with writer(home) as con:
        row = con.execute("SELECT status FROM raw.runs WHERE run_id = $r", {"r": run_id}).fetchone()
    return row[0] if row else None


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")
