"""The long fuzz run: the strategies and invariants of the unit fuzz tests, many more inputs.

    .venv/bin/python scripts/fuzz_long.py                      # every target, 2000 inputs each
    .venv/bin/python scripts/fuzz_long.py --target hl7 --examples 20000 --seed 7

Targets reuse ``tests/unit/test_fuzz_hl7.py`` and ``tests/unit/test_fuzz_csv_dexa_meds.py``
(same generators, same invariants: no exception except the documented whole-file ``csv.Error``,
every record staged or rejected exactly once, vocabulary check names with reasons, no
identifier in HL7 reasons/excerpts, per-input deadline). Prints one Markdown table row per
target: inputs tried, how many were parsed / unreadable, records staged / rejected, seconds.
A broken invariant stops the target and prints hypothesis' minimal failing input.
docs/reliability.md records the counts of the last documented run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "unit")]

import test_fuzz_csv_dexa_meds as fc  # noqa: E402
import test_fuzz_hl7 as fh  # noqa: E402


def _hl7(strategy, secrets=False):
    def check(case):
        data, sec = case if isinstance(case, tuple) else (case, ())
        return fh.check_invariants(data, secrets=sec if secrets else ())

    return strategy, check


def _csv(strategy):
    return strategy, lambda case: fc.check_invariants(*case)


TARGETS = {
    "hl7_random_bytes": _hl7(st.binary(max_size=8000)),
    "hl7_header_then_bytes": _hl7(st.binary(max_size=4000).map(lambda b: b"MSH|^~\\&|" + b)),
    "hl7_structure_aware": _hl7(fh.hl7_file(), secrets=True),
    "hl7_corpus_mutations": _hl7(fh.mutated_corpus()),
    "csv_random_bytes": _csv(st.tuples(st.sampled_from(fc.TARGETS), st.binary(max_size=6000))),
    "csv_built_from_cells": _csv(fc.built_file()),
    "csv_generated_mutations": _csv(fc.mutated_file()),
}
GROUPS = {
    "hl7": [t for t in TARGETS if t.startswith("hl7")],
    "csv": [t for t in TARGETS if t.startswith("csv")],
}


def run_target(name: str, examples: int, seed_value: int) -> dict:
    strategy, check = TARGETS[name]
    counts: Counter = Counter()

    @settings(
        max_examples=examples,
        deadline=10_000,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @seed(seed_value)
    @given(strategy)
    def prop(case):
        out = check(case)
        counts["inputs"] += 1
        counts["unreadable" if out.get("unreadable") else "parsed"] += 1
        counts["staged"] += out.get("rows", 0)
        counts["rejected"] += out.get("rejects", 0)

    t0 = time.perf_counter()
    status = "ok"
    try:
        prop()
    except Exception as exc:  # a broken invariant: report it, keep the other targets going
        status = f"FAILED: {type(exc).__name__}: {str(exc)[:300]}"
    return {**counts, "seconds": round(time.perf_counter() - t0, 1), "status": status}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="all", choices=["all", *GROUPS, *TARGETS])
    p.add_argument("--examples", type=int, default=2000, help="inputs per target")
    p.add_argument("--seed", type=int, default=20261125)
    args = p.parse_args(argv)
    names = list(TARGETS) if args.target == "all" else GROUPS.get(args.target, [args.target])
    print(
        "| target | inputs | parsed | unreadable (csv.Error) | records staged | records rejected | s | status |"
    )
    print("|---|---|---|---|---|---|---|---|")
    failed = False
    for name in names:
        r = run_target(name, args.examples, args.seed)
        failed |= r["status"] != "ok"
        print(
            f"| {name} | {r.get('inputs', 0)} | {r.get('parsed', 0)} | {r.get('unreadable', 0)} "
            f"| {r.get('staged', 0)} | {r.get('rejected', 0)} | {r['seconds']} | {r['status']} |",
            flush=True,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
