"""``labwh``: the command line for the common jobs (generate, run, sql, report, quarantine).

Every command works on ``$LABWH_HOME`` (default ``./data``; ``--home`` overrides it).
``labwh run`` executes the same Dagster graph that ``dagster dev`` shows, in-process.
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import sys
import time
from pathlib import Path

from transforms.csvsafe import safe_row
from transforms.landing import FEEDS
from transforms.records import QUARANTINE_CHECKS
from warehouse.home import Home

EPILOG = "Home folder: --home, else $LABWH_HOME, else ./data."


def _home(args) -> Home:
    return Home.from_env(getattr(args, "home", None))


# --------------------------------------------------------------------------- generate
def cmd_generate(args) -> int:
    from transforms.generate import generate

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"--out {out} is a file; give a folder", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        summary = generate(args.patients, args.seed, out)
    except FileExistsError as err:  # a landing/ or truth/ there holds files not its own
        print(f"{err}; give another --out, or empty that folder", file=sys.stderr)
        return 2
    print(
        f"generated {args.patients} patients (seed {args.seed}) in {time.perf_counter() - t0:.1f}s"
    )
    print(f"  landing files: {out / 'landing'}")
    print(f"  ground truth:  {out / 'truth'}")
    if isinstance(summary, dict):
        for k, v in summary.items():
            if isinstance(v, int | float | str):
                print(f"  {k}: {v}")
    return 0


def _absent(path: Path, what: str) -> bool:
    """Whether a command lacks ``path`` to start from; says so (the caller exits 2)."""
    if path.exists():
        return False
    print(f"no {what} at {path}; run `labwh run` first", file=sys.stderr)
    return True


# --------------------------------------------------------------------------- run
class RunFailed(RuntimeError):
    """A pipeline run ended in failure; ``where`` says what raw.runs recorded of it."""

    def __init__(self, run_id: str, failures: list[str], where: str, busy: bool = False):
        self.run_id = run_id
        self.where = where
        self.failures = failures
        self.busy = busy  # a step failed because the warehouse stayed locked
        super().__init__(f"run {run_id} failed ({where}): " + "; ".join(failures))


def run_pipeline(
    home: Home, landing: Path | None = None, *, run_config: dict | None = None, quiet: bool = False
):
    """Materialize every asset once, in-process; returns the Dagster result.

    A failed run (a step raised, a blocking check failed) is recorded as 'failure' in
    raw.runs and raised as ``RunFailed`` with the failed steps and their first error line.
    """
    from pipelines.definitions import defs
    from pipelines.ops import all_job
    from pipelines.resources import WarehouseResource

    home.ensure()
    instance = _instance(home)
    resources = {
        "warehouse": WarehouseResource(home=str(home.root), landing=str(landing) if landing else "")
    }
    level = "WARNING" if quiet else "INFO"  # Dagster's own events are DEBUG: keep them in the UI
    config = {"loggers": {"console": {"config": {"log_level": level}}}, **(run_config or {})}
    with instance:  # the job the schedule runs, so the UI lists CLI runs beside it
        result = defs.resolve_job_def(all_job.name).execute_in_process(
            run_config=config, instance=instance, resources=resources, raise_on_error=False
        )
    if not result.success:
        causes = step_failures(result)
        failures = [f"{step}: {message}" for step, _, message in causes]
        where = _record_failure(home, result.run_id)
        busy = any(cls == "WarehouseBusy" for _, cls, _ in causes)
        raise RunFailed(result.run_id, failures or ["see the Dagster run log"], where, busy)
    return result


def step_failures(result) -> list[tuple[str, str, str]]:
    """(step, error class, first message line) of each failed step, for the error that caused
    it (Dagster wraps a step's exception in one of its own)."""
    from pipelines.loggers import error_text, root_error

    out = []
    for ev in result.all_events:
        if not (ev.is_step_failure or ev.event_type_value == "RESOURCE_INIT_FAILURE"):
            continue
        error = root_error(ev.event_specific_data.error)
        out.append((ev.step_key or "resources", error.cls_name, error_text(error)))
    return out


def step_seconds(result) -> list[tuple[str, float]]:
    """(step, seconds) of each step that succeeded, slowest first (Dagster's own timing)."""
    timed = [
        (ev.step_key, ev.event_specific_data.duration_ms / 1000.0)
        for ev in result.all_events
        if ev.is_step_success and ev.step_key
    ]
    return sorted(timed, key=lambda st: (-st[1], st[0]))


def _record_failure(home: Home, run_id: str) -> str:
    """Mark the run failed in raw.runs; say what raw.runs now holds of it."""
    import duckdb

    from pipelines.loggers import first_line
    from warehouse import steps
    from warehouse.locks import WarehouseBusy

    try:
        if steps.mark_failed(home, run_id):
            return "recorded as 'failure' in raw.runs"
        status = steps.run_status(home, run_id)
    except (WarehouseBusy, duckdb.Error) as err:
        # the warehouse is held by another process or cannot be opened at all (read-only
        # file or mount): whatever row the run has stays 'running' until the next run
        # closes it (steps.start_run)
        return (
            f"could not be recorded in raw.runs ({first_line(str(err))}); if the run got "
            "there, the next run closes its row"
        )
    if status is None:
        return "before it reached raw.runs: the warehouse is unchanged"
    return f"after the snapshot was published: raw.runs keeps '{status}'"


def _instance(home: Home):
    import dagster as dg

    try:
        from pipelines.instance import ensure_instance
    except ImportError:
        return dg.DagsterInstance.ephemeral()
    os.environ["DAGSTER_HOME"] = str(ensure_instance(home))
    return dg.DagsterInstance.get()


SLOWEST_STEPS = 5


def _print_run_end(home: Home, result, t0: float) -> None:
    """What a finished run (``run`` or ``reprocess``) says: its counts, wall time since
    ``t0`` and its slowest steps."""
    _print_run_summary(home, result.run_id)
    print(f"done in {time.perf_counter() - t0:.1f}s")
    slowest = step_seconds(result)[:SLOWEST_STEPS]
    print("  slowest steps:       " + ", ".join(f"{step} {sec:.1f}s" for step, sec in slowest))


def _print_run_summary(home: Home, run_id: str) -> None:
    from warehouse.quality_queries import connect_read_only, query

    con = connect_read_only(home.warehouse)
    try:
        stats = query(con, "run_feed_stats")
        totals = query(con, "feed_totals")
    finally:
        con.close()
    counts = ["feed", "n_files", "n_received", "n_accepted", "n_quarantined"]
    this_run = stats.filter(stats["run_id"] == run_id).select(counts).rows()
    print(f"run {run_id}")
    header = f"  {'feed':<8} {'files':>6} {'received':>9} {'accepted':>9} {'quarantined':>12}"
    print("this run:")
    print(header)
    if not this_run:
        print("  (no new files)")
    _print_counts(this_run)
    print("warehouse totals (distinct files):")
    print(header)
    _print_counts(totals.select(counts).rows())


def _print_counts(rows) -> None:
    for feed, f, r, a, q in rows:
        print(f"  {feed:<8} {f:>6} {r:>9} {a:>9} {q:>12}")


def cmd_run(args) -> int:
    from warehouse import locks, steps

    home = _home(args)
    landing = Path(args.landing).resolve() if args.landing else None
    try:  # the home's own landing folder too: missing, it is not an empty delivery
        steps.check_landing(landing or home.landing)
    except steps.LandingMissing as err:
        print(err, file=sys.stderr)
        return 2
    if landing is not None and not any((landing / feed).is_dir() for feed in FEEDS):
        # nothing here could ever be read: a wrong folder, not an empty delivery
        nested = landing / "landing"
        hint = f"; did you mean --landing {nested}?" if nested.is_dir() else ""
        folders = ", ".join(f + "/" for f in FEEDS)
        print(f"no feed folder ({folders}) in {landing}{hint}", file=sys.stderr)
        return 2
    run_config = {}
    if args.full_rebuild:
        run_config = {"ops": {"feature_marts": {"config": {"full_rebuild": True}}}}
    t0 = time.perf_counter()
    try:
        with locks.run_lock(home.run_lock):  # waits for a run in progress, then fails clearly
            result = run_pipeline(home, landing, run_config=run_config)
    except RunFailed as err:
        print(f"run {err.run_id} FAILED ({err.where}):", file=sys.stderr)
        for failure in err.failures:
            print(f"  {failure}", file=sys.stderr)
        print("  fix the cause and run again: nothing received is lost", file=sys.stderr)
        return 3 if err.busy else 1
    _print_run_end(home, result, t0)
    print(f"  warehouse (writer):  {home.warehouse}")
    print(f"  published snapshot:  {home.published}")
    print(f"  reports:             {home.reports}")
    print("  query it:            labwh sql -c 'SELECT * FROM marts.feat_e2_exposure LIMIT 5'")
    return 0


# --------------------------------------------------------------------------- sql
def _print_table(cur, as_csv: bool, out=None) -> None:
    if cur is None:  # the text held no statement (only comments or semicolons)
        if not as_csv:
            print("(no statement)", file=out or sys.stdout)
        return
    cols = [d[0] for d in cur.description] if cur.description else []
    _print_rows(cols, cur.fetchall(), as_csv, out)


def _print_rows(cols: list[str], rows: list, as_csv: bool = False, out=None) -> None:
    """Aligned plain columns, one line a row (readable in a pager and with grep), or CSV.
    ``out`` defaults to the sys.stdout of the call, not of the import."""
    out = out or sys.stdout
    if as_csv:
        w = csv.writer(out)
        w.writerow(safe_row(cols))
        w.writerows(safe_row(r) for r in rows)
        return
    text = [[("NULL" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in text]) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in text:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)), file=out)
    print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", file=out)


def cmd_sql(args) -> int:
    import duckdb

    from warehouse.quality_queries import connect_read_only

    home = _home(args)
    if _absent(home.published, "published snapshot"):
        return 2
    if args.command is not None and not args.command.strip():
        print("sql -c needs a query (without -c: the interactive shell)", file=sys.stderr)
        return 2
    con = connect_read_only(home.published)
    con.execute("SET enable_progress_bar = false")  # keeps --csv output clean
    try:
        if args.command:
            try:
                _print_table(con.execute(args.command), args.csv)
            except duckdb.Error as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            return 0
        print(
            f"labwh sql on {home.published} (read-only). End statements with ';', "
            "quit with .quit, .help for more"
        )
        buf: list[str] = []
        while True:
            try:
                line = input("labwh> " if not buf else "   ...> ")
            except EOFError:
                break
            word = line.strip()
            if word in (".quit", ".exit", "\\q"):
                break
            if word.startswith("."):  # a shell command: acts at once, never part of a query
                if word == ".tables":
                    _print_table(con.execute(SHELL_TABLES), args.csv)
                elif word == ".clear":
                    buf = []
                else:
                    print(SHELL_HELP)
                continue
            buf.append(line)
            if line.rstrip().endswith(";"):
                try:
                    _print_table(con.execute("\n".join(buf)), args.csv)
                except duckdb.Error as exc:
                    print(f"error: {exc}", file=sys.stderr)
                buf = []
        return 0
    finally:
        con.close()


SHELL_TABLES = (
    "SELECT table_schema || '.' || table_name AS table_name, table_type "
    "FROM information_schema.tables "
    "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1"
)
SHELL_HELP = """\
  a query ends with ';' (it may span lines)
  .tables   the tables and views of the snapshot
  .clear    drop the statement typed so far
  .quit     leave (also .exit, \\q, Ctrl-D)"""


# --------------------------------------------------------------------------- report
def cmd_report(args) -> int:
    home = _home(args)
    if _absent(home.warehouse, "warehouse"):
        return 2
    from pipelines import reports

    for name, path in reports.build_all(home).items():
        print(f"  {name}: {path}")
    return 0


# --------------------------------------------------------------------------- quarantine
def cmd_quarantine(args) -> int:
    from warehouse import locks, quarantine

    home = _home(args)
    if _absent(home.warehouse, "warehouse"):
        return 2
    if args.action == "list" and args.id is not None:
        print("quarantine list takes no id: `labwh quarantine show ID`", file=sys.stderr)
        return 2
    if args.action == "list":
        frame = quarantine.list_quarantine(
            home, feed=args.feed, check=args.check, include_released=args.all
        )
        shown = [c for c in QUARANTINE_LIST_COLUMNS if c in frame.columns]
        if args.all:
            shown.append("released_at")
        _print_rows(shown, frame.select(shown).rows())
        return 0
    if args.action == "show":
        try:
            record = quarantine.show(home, args.id)
        except KeyError:
            print(
                f"no quarantine record {args.id} (see `labwh quarantine list --all`)",
                file=sys.stderr,
            )
            return 1
        for k, v in record.items():
            print(f"{k:>20}: {v}")
        return 0
    from warehouse.reprocess import ContractBroken

    # `release 12` and `release --ids 12 13` both name records
    ids = [*(args.ids or []), *([args.id] if args.id is not None else [])]
    try:
        with locks.run_lock(home.run_lock):
            result = quarantine.release(
                home,
                ids=ids or None,
                check_name=args.check,
                feed=args.feed,
                run_id=_stamped_run_id("release"),
            )
    except LookupError as err:
        print(f"{err}; see `labwh quarantine list`", file=sys.stderr)
        return 1
    except ContractBroken as err:
        print(f"release failed: {err}", file=sys.stderr)
        return 1
    for k, v in result.items():
        print(f"{k}: {v}")
    if not result["selected"]:
        print("nothing to release: no open quarantine record matches", file=sys.stderr)
        return 2
    return 0


def _stamped_run_id(kind: str) -> str:
    """``<kind>-<local time>-<8 hex>``: readable and unique even within one second."""
    import datetime as dt
    import uuid

    return f"{kind}-{dt.datetime.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


# what `quarantine list` prints, a line a record (`show ID` prints every field)
QUARANTINE_LIST_COLUMNS = [
    "quarantine_id",
    "feed",
    "check_name",
    "file_name",
    "position",
    "reason",
    "excerpt",
]


# --------------------------------------------------------------------------- status
STATUS_RUN_COLUMNS = [
    "run_id",
    "started_at",
    "finished_at",
    "status",
    "n_files",
    "n_received",
    "n_accepted",
    "n_quarantined",
]


def cmd_status(args) -> int:
    from warehouse.status import read_status

    home = _home(args)
    if _absent(home.warehouse, "warehouse"):
        return 2
    st = read_status(home, last=args.runs)
    print(f"warehouse (writer):  {home.warehouse}")
    published = (
        f"published {st.snapshot_published_at:%Y-%m-%d %H:%M:%S}"
        if st.snapshot_published_at
        else "not published yet"
    )
    print(f"analyst snapshot:    {home.published} ({published})")
    if st.busy:
        print(f"\nwarehouse busy: {st.busy}")
        print("showing the published snapshot instead: what the holder is writing is not in it")
    print(f"\nruns: {st.n_runs} in all; the last {len(st.runs)}, newest first")
    _print_rows(STATUS_RUN_COLUMNS, [[r[c] for c in STATUS_RUN_COLUMNS] for r in st.runs])
    held = sum(r["n_open"] for r in st.open_quarantine)
    print(f"\nheld in quarantine: {held} record{'s' if held != 1 else ''} (all runs)")
    if st.open_quarantine:
        cols = ["feed", "check_name", "n_open", "n_files"]
        _print_rows(cols, [[r[c] for c in cols] for r in st.open_quarantine])
        print("  see `labwh quarantine list`; after a fix, `labwh quarantine release --check …`")
    print("\nrows")
    _print_rows(
        ["table", "rows"],
        [[t, "not built yet" if n is None else n] for t, n in st.table_rows.items()],
    )
    return 0


# --------------------------------------------------------------------------- reprocess
def cmd_reprocess(args) -> int:
    from pipelines.ops import run_reprocess
    from warehouse import locks

    home = _home(args)
    if _absent(home.warehouse, "warehouse"):
        return 2
    problem = _reprocess_selection_problem(home, args.file, args.day)
    if problem:
        print(f"reprocess: {problem}", file=sys.stderr)
        return 2
    features = {"full_rebuild": True} if args.full_rebuild else None
    t0 = time.perf_counter()
    with locks.run_lock(home.run_lock):  # waits for a run in progress, then fails clearly
        result = run_reprocess(home, file_sha256=args.file, day=args.day, features=features)
    if not result.success:
        causes = step_failures(result)
        for step, _, message in causes:
            print(f"reprocess failed: {step}: {message}", file=sys.stderr)
        return 3 if any(cls == "WarehouseBusy" for _, cls, _ in causes) else 1
    _print_run_end(home, result, t0)
    return 0


def _reprocess_selection_problem(home: Home, file_sha256: str | None, day: str | None):
    """Why the selection cannot be reprocessed (a bad hash or day, no file), or None: checked
    with the job's own selection (``select_files``) before the job starts, so a typo is one
    line and exit 2, not a failed run."""
    from warehouse.quality_queries import connect_read_only
    from warehouse.reprocess import select_files

    con = connect_read_only(home.warehouse)
    try:
        files = select_files(con, file_sha256=file_sha256, day=day)
    except ValueError as err:
        return str(err)
    finally:
        con.close()
    if not files:
        return "no received file matches (see `labwh sql -c 'SELECT * FROM raw.files'`)"
    return None


# --------------------------------------------------------------------------- rekey
def cmd_rekey(args) -> int:
    from warehouse.rekey import rekey

    home = _home(args)
    if not args.yes:
        print(
            "rekey replays every archived file under a new HMAC key: every patient_key changes "
            "and analysts' saved keys stop matching. Re-run with --yes to proceed.",
            file=sys.stderr,
        )
        return 2
    if os.environ.get("LABWH_HMAC_KEY"):
        new_key = None  # the key comes from the environment: it was already changed there
    else:
        new_key = (os.environ.get("LABWH_NEW_HMAC_KEY") or secrets.token_hex(32)).encode()
    from warehouse import locks

    with locks.run_lock(home.run_lock):
        result = rekey(home, new_key=new_key)
    for k, v in result.items():
        print(f"{k}: {v}")
    return 0


# --------------------------------------------------------------------------- parser
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="labwh",
        description="Lab-data warehouse: E2 exposure and BMD trends for men on testosterone therapy.",
        epilog=EPILOG,
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    g = sub.add_parser(
        "generate",
        help="write a synthetic cohort as landing files + ground truth",
        epilog="Same --patients/--seed give byte-identical files.",
    )
    g.add_argument(
        "--patients", type=_positive_int, default=200, help="number of patients (default 200)"
    )
    g.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    g.add_argument("--out", required=True, help="output folder (landing/ and truth/ are created)")
    g.set_defaults(func=cmd_generate)

    r = sub.add_parser("run", help="run the whole pipeline once, in-process", epilog=EPILOG)
    r.add_argument("--landing", help="landing folder (default $LABWH_HOME/landing)")
    r.add_argument("--home", help="warehouse home folder")
    r.add_argument(
        "--full-rebuild", action="store_true", help="recompute features for every patient"
    )
    r.set_defaults(func=cmd_run)

    s = sub.add_parser(
        "sql", help="SQL shell (or one query) on the published snapshot", epilog=EPILOG
    )
    s.add_argument("-c", "--command", help="run one query and exit")
    s.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    s.add_argument("--home", help="warehouse home folder")
    s.set_defaults(func=cmd_sql)

    st = sub.add_parser(
        "status",
        help="the last runs, what quarantine holds, table sizes, snapshot age",
        epilog="Reads the writer's warehouse read-only; while a run writes it, the published "
        "snapshot (and says so). " + EPILOG,
    )
    st.add_argument(
        "--runs", type=_positive_int, default=5, help="how many recent runs to show (default 5)"
    )
    st.add_argument("--home", help="warehouse home folder")
    st.set_defaults(func=cmd_status)

    rep = sub.add_parser("report", help="build the cohort and quality reports", epilog=EPILOG)
    rep.add_argument("--home", help="warehouse home folder")
    rep.set_defaults(func=cmd_report)

    q = sub.add_parser("quarantine", help="review and release quarantined records", epilog=EPILOG)
    q.add_argument("action", choices=["list", "show", "release"])
    q.add_argument("id", nargs="?", type=int, help="quarantine id (show; release)")
    q.add_argument("--ids", type=int, nargs="*", help="quarantine ids to release")
    q.add_argument("--feed", choices=FEEDS, help="only this feed")
    q.add_argument(
        "--check",
        choices=sorted(QUARANTINE_CHECKS),
        metavar="CHECK",
        help="only this check_name: " + ", ".join(sorted(QUARANTINE_CHECKS)),
    )
    q.add_argument("--all", action="store_true", help="list: include released records")
    q.add_argument("--home", help="warehouse home folder")
    q.set_defaults(func=cmd_quarantine)

    rp = sub.add_parser(
        "reprocess",
        help="re-stage one received file or one day of files, then rebuild and publish",
        epilog=EPILOG,
    )
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--file", metavar="SHA256", help="raw.files.file_sha256, or a unique prefix (>= 8 hex)"
    )
    which.add_argument("--day", metavar="YYYY-MM-DD", help="every file received that day")
    rp.add_argument(
        "--full-rebuild", action="store_true", help="recompute features for every patient"
    )
    rp.add_argument("--home", help="warehouse home folder")
    rp.set_defaults(func=cmd_reprocess)

    rk = sub.add_parser(
        "rekey",
        help="rotate the pseudonymization key (docs/threat_model.md)",
        epilog="With $LABWH_HMAC_KEY set, set the new key there first; otherwise the key file "
        "gets $LABWH_NEW_HMAC_KEY or a fresh random key. " + EPILOG,
    )
    rk.add_argument("--yes", action="store_true", help="really replace every patient_key")
    rk.add_argument("--home", help="warehouse home folder")
    rk.set_defaults(func=cmd_rekey)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.cmd == "quarantine" and args.action == "show" and args.id is None:
        print("quarantine show needs an ID", file=sys.stderr)
        return 2
    from warehouse.locks import BadSetting, WarehouseBusy

    try:
        return args.func(args)
    except WarehouseBusy as err:
        print(f"warehouse busy: {err}", file=sys.stderr)
        return 3
    except BadSetting as err:
        print(f"setting: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader went away (`labwh sql -c … | head`): stop quietly, as a shell tool does;
        # stdout goes to /dev/null so the interpreter's final flush raises nothing either
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # 128 + SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
