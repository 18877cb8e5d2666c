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


def _current(con, name):
    return con.execute("SELECT current_setting($n)", {"n": name}).fetchone()[0]


def test_setting_holds_inside_the_block_and_restores_the_previous_value():
    con = duckdb.connect()
    con.execute("SET threads = 3")  # not DuckDB's default here: restored, not reset
    with runner.setting(con, "threads", 1):
        assert _current(con, "threads") == 1
    assert _current(con, "threads") == 3
    con.execute("SET preserve_insertion_order = false")
    with pytest.raises(RuntimeError), runner.setting(con, "preserve_insertion_order", True):
        assert _current(con, "preserve_insertion_order") is True
        raise RuntimeError("the block fails")
    assert _current(con, "preserve_insertion_order") is False
    with pytest.raises(KeyError):  # only listed settings: a name cannot be bound
        runner.setting(con, "memory_limit'; DROP TABLE x; --", 1).__enter__()


def test_materialize_leaves_insertion_order_as_it_was(tmp_path, monkeypatch):
    models = tmp_path / "models" / "marts"
    models.mkdir(parents=True)
    (models / "t.sql").write_text("SELECT range AS patient_key FROM range(3)")
    monkeypatch.setattr(runner, "MODELS_DIR", tmp_path / "models")
    con = duckdb.connect()
    con.execute("CREATE SCHEMA marts")
    assert _current(con, "preserve_insertion_order") is True
    assert runner.materialize(con, "marts.t") == 3
    assert _current(con, "preserve_insertion_order") is True


def test_a_bad_run_config_override_is_named_as_such():
    import pytest

    from warehouse import params

    with pytest.raises(ValueError, match=r"max_gap_days.*run-config overrides: \['max_gap_days'\]"):
        params.feature_params({"max_gap_days": -5})
    with pytest.raises(
        ValueError, match=r"censored_fraction must be in \[0, 1\] \(got 7.0\) \(run-config"
    ):
        params.feature_params({"censored_fraction": 7})
