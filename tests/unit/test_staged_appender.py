"""warehouse.ingest.StagedAppender: staged chunks go in whole row groups, nothing is lost.

The row group size is made small (10 rows) so that the arithmetic is easy to follow: the
first chunk (7 rows) is held; with the second (25) the appender holds 32 → inserts three
groups of 10 and holds 2; with the third (3) it holds 5 and inserts nothing; ``flush``
inserts those 5: the table holds 0, 30, 30, then all 35 rows in chunk order. A file of one
chunk is one INSERT at ``flush``.
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
    one = ingest.StagedAppender(con, "t")
    one.add(_chunk(100, 25))
    assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 35  # held until flush
    one.flush()
    assert con.execute("SELECT count(*) FROM t WHERE n >= 100").fetchone()[0] == 25
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
