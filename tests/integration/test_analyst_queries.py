"""Every example query in docs/analysts.md runs on a generated, published warehouse."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "analysts.md"


def _examples() -> dict[str, str]:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    out = {}
    for b in blocks:
        m = re.match(r"-- example: (\w+)\n", b)
        if m:
            out[m.group(1)] = b
    return out


def test_docs_have_the_promised_examples():
    assert {"e2_history", "bmd_trend_by_site", "cohort_counts"} <= set(_examples())


@pytest.mark.parametrize("name", sorted(_examples()))
def test_example_query_runs_and_returns_rows(name, published_warehouse):
    con = duckdb.connect(str(published_warehouse), read_only=True)
    try:
        rows = con.execute(_examples()[name]).fetchall()
    finally:
        con.close()
    assert rows, f"example {name} returned no rows"
