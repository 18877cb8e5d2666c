import duckdb
import pytest

from warehouse import runner


def test_split_statements_ignores_semicolons_in_comments_and_strings():
    sql = "-- a; b\nSELECT 'x;y' AS s; -- trailing; comment\nSELECT 2;"
    assert runner.split_statements(sql) == ["SELECT 'x;y' AS s", "SELECT 2"]


def test_bind_requires_every_parameter_and_passes_only_used_ones():
    sql = "SELECT $a + $b -- $c is in a comment\n, '$d' AS literal"
    assert runner.used_params(sql) == {"a", "b"}
    assert runner.bind(sql, {"a": 1, "b": 2, "z": 3}) == {"a": 1, "b": 2}
    with pytest.raises(KeyError):
        runner.bind(sql, {"a": 1})


def test_materialize_rejects_names_that_are_not_schema_table():
    con = duckdb.connect()
    with pytest.raises(ValueError):
        runner.materialize(con, "core.x; DROP TABLE y", {})


def test_apply_ddl_is_idempotent():
    con = duckdb.connect()
    runner.apply_ddl(con)
    runner.apply_ddl(con)
    tables = {
        r[0]
        for r in con.execute("SELECT schema_name||'.'||table_name FROM duckdb_tables()").fetchall()
    }
    assert {"raw.files", "raw.deliveries", "quality.quarantine"} <= tables
