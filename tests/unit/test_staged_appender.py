"""warehouse.ingest.StagedAppender: staged chunks go in whole row groups, nothing is lost.

The row group size is made small (10 rows) so that the arithmetic is easy to follow: after
chunks of 7, 25 and 3 rows the table must hold 0, then 30, then 30 rows (7 + 25 = 32 → three
groups of 10, 2 held; 2 + 3 = 5 held), and after ``flush`` all 35, in chunk order.
"""

from __future__ import annotations

import duckdb
import polars as pl

from warehouse import ingest


def _chunk(start: int, n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"position": [f"m{i}" for i in range(start, start + n)], "n": list(range(start, start + n))}
    )


def test_appender_inserts_whole_row_groups_then_the_rest(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ingest, "ROW_GROUP_ROWS", 10)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE t (position VARCHAR, n BIGINT)")
    appender = ingest.StagedAppender(con, "t")
    counts = []
    start = 0
    for size in (7, 25, 3):
        appender.add(_chunk(start, size))
        start += size
        counts.append(con.execute("SELECT count(*) FROM t").fetchone()[0])
    assert counts == [0, 30, 30]
    appender.flush()
    appender.flush()  # nothing left: a second flush inserts nothing
    rows = con.execute("SELECT n, position FROM t ORDER BY n").fetchall()
    assert rows == [(i, f"m{i}") for i in range(35)]
    con.close()


def test_insert_staged_by_name_and_threads_restored(tmp_path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    (threads,) = con.execute("SELECT current_setting('threads')").fetchone()
    con.execute("CREATE TABLE t (n BIGINT, position VARCHAR)")
    ingest.insert_staged(con, "t", _chunk(0, 3))  # columns in another order: matched by name
    assert con.execute("SELECT n, position FROM t ORDER BY n").fetchall() == [
        (0, "m0"),
        (1, "m1"),
        (2, "m2"),
    ]
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == threads
    con.close()
