"""The Dagster definitions load and show every layer of the contract."""

import pytest


def test_definitions_load_with_every_layer():
    from pipelines.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    for expected in [
        "raw/files",
        "staging/stg_hl7__lab_result",
        "staging/stg_lab_csv__lab_result",
        "staging/stg_dexa__scan",
        "staging/stg_meds__medication",
        "core/fct_lab_result",
        "core/fct_lab_result_history",
        "core/fct_dexa_scan",
        "core/fct_medication",
        "core/dim_patient",
        "marts/feat_e2_exposure",
        "marts/feat_bmd_trend",
        "omop/views",
        "published/analytics",
    ]:
        assert expected in keys
    defs.resolve_job_def("labwh_all")


def test_cli_help_for_every_command(capsys):
    import pytest

    from pipelines.cli import build_parser

    for cmd in ["generate", "run", "status", "sql", "report", "quarantine", "reprocess", "rekey"]:
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args([cmd, "--help"])
        assert exc.value.code == 0
        assert "usage: labwh " + cmd in capsys.readouterr().out


def test_report_and_sql_before_any_run_say_what_to_do(home, capsys):
    from pipelines.cli import main

    assert not home.warehouse.exists()
    assert main(["report"]) == 2
    assert "run `labwh run` first" in capsys.readouterr().err
    assert main(["status"]) == 2
    assert "run `labwh run` first" in capsys.readouterr().err
    assert main(["sql", "-c", "SELECT 1"]) == 2
    assert "run `labwh run` first" in capsys.readouterr().err
    assert main(["quarantine", "list"]) == 2
    assert "run `labwh run` first" in capsys.readouterr().err


def test_cli_refuses_bad_arguments_with_a_message(home, tmp_path, capsys):
    import pytest

    from pipelines.cli import main

    missing = tmp_path / "no-such-landing"
    assert main(["run", "--landing", str(missing)]) == 2
    assert f"no landing folder at {missing}" in capsys.readouterr().err
    assert not home.warehouse.exists()  # a refused run writes nothing
    # the folder `labwh generate --out` made, instead of its landing/: no feed folder there
    generated = tmp_path / "generate_out"
    (generated / "landing" / "hl7").mkdir(parents=True)
    assert main(["run", "--landing", str(generated)]) == 2
    err = capsys.readouterr().err
    assert "no feed folder (hl7/, lab_csv/, dexa/, meds/)" in err
    assert f"did you mean --landing {generated / 'landing'}?" in err
    assert not home.warehouse.exists()

    for bad in ["-5", "0", "many"]:
        with pytest.raises(SystemExit) as exc:
            main(["generate", "--patients", bad, "--out", str(tmp_path / "gen")])
        assert exc.value.code == 2
        assert "--patients" in capsys.readouterr().err
    assert not (tmp_path / "gen").exists()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    assert main(["generate", "--patients", "2", "--out", str(a_file)]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
    # a landing/ the generator did not write is never deleted: a message, exit 2, no traceback
    foreign = tmp_path / "theirs"
    (foreign / "landing").mkdir(parents=True)
    (foreign / "landing" / "real.hl7").write_text("MSH|")
    assert main(["generate", "--patients", "2", "--out", str(foreign)]) == 2
    assert "was not written by the generator" in capsys.readouterr().err
    assert (foreign / "landing" / "real.hl7").read_text() == "MSH|"


def test_sql_error_and_unknown_quarantine_record_are_messages(home, capsys):
    from pipelines.cli import main
    from warehouse import params, steps
    from warehouse.publish import publish

    steps.build_core(home, params.core_params())  # an empty warehouse, published
    publish(home)
    assert main(["sql", "-c", "selec 1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "syntax error" in err and "Traceback" not in err
    # a query with no statement (only a comment, as when an example is pasted on one line)
    assert main(["sql", "-c", "-- just a comment"]) == 0
    assert capsys.readouterr().out == "(no statement)\n"
    assert main(["sql", "--csv", "-c", ";"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["quarantine", "show", "99999"]) == 1
    assert "no quarantine record 99999" in capsys.readouterr().err
    assert main(["quarantine", "release", "--check", "unknown_unit"]) == 2  # nothing to do
    out, err = capsys.readouterr()
    assert "selected: 0" in out and "nothing to release" in err
    # an id names a record, as a positional argument or with --ids: unknown → 1, nothing done
    for argv in (["release", "99999"], ["release", "--ids", "99999"]):
        assert main(["quarantine", *argv]) == 1
        assert "no open quarantine record 99999" in capsys.readouterr().err
    assert main(["quarantine", "list", "12"]) == 2
    assert "takes no id" in capsys.readouterr().err
    # a check or feed name that does not exist is an error naming the ones that do, not an
    # empty list
    for argv, says in (
        (["--check", "unknown_units"], "unknown_unit"),
        (["--feed", "csv"], "lab_csv"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(["quarantine", "list", *argv])
        assert exit_.value.code == 2 and says in capsys.readouterr().err
    # a reprocess selection that cannot work is one line and exit 2, before any job starts
    for argv, says in (
        (["--day", "yesterday"], "is not a date (YYYY-MM-DD)"),
        (["--file", "abc"], "at least 8 hex characters"),
        (["--file", "zzzzzzzzzz"], "is not a SHA-256"),
        (["--day", "1999-01-01"], "no received file matches"),
    ):
        assert main(["reprocess", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err


def test_stamped_run_ids_differ_within_one_second():
    from pipelines.cli import _stamped_run_id

    ids = {_stamped_run_id("release") for _ in range(50)}
    assert len(ids) == 50 and all(i.startswith("release-") for i in ids)


def test_output_cut_short_by_its_reader_ends_quietly(home):
    # `labwh sql -c … | head -1`: the reader closes the pipe; no traceback, exit 141 (SIGPIPE)
    import os
    import subprocess
    import sys

    from warehouse import params, steps
    from warehouse.publish import publish

    steps.build_core(home, params.core_params())
    publish(home)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "sql", "-c", "SELECT * FROM range(200000)"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "LABWH_HOME": str(home.root)},
    )
    assert proc.stdout.readline().strip() == b"range"
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_sql_shell_commands_act_at_once(home, monkeypatch, capsys):
    # a dot command is never part of the query being typed: `.tables` mid-statement lists the
    # tables, `.clear` drops the half-typed statement, `.quit` leaves at any point
    from pipelines.cli import main
    from warehouse import params, steps
    from warehouse.publish import publish

    steps.build_core(home, params.core_params())
    publish(home)
    lines = iter(["SELECT 1", ".tables", ".clear", "SELECT 2 AS x;", "SELECT 3", ".quit"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["sql"]) == 0
    out, err = capsys.readouterr()
    assert "core.fct_lab_result" in out and "omop.measurement" in out  # .tables
    assert "x\n-\n2\n(1 row)" in out and "error" not in err  # SELECT 1 was dropped
    assert main(["sql", "-c", ""]) == 2
    assert "needs a query" in capsys.readouterr().err


def test_status_of_a_run_that_never_got_to_core(home, capsys):
    from pipelines.cli import main
    from warehouse import steps

    steps.start_run(home, "first-run", home.landing)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "runs: 1 in all; the last 1, newest first" in out
    assert "first-run" in out and "running" in out
    assert "(not published yet)" in out and "held in quarantine: 0 records" in out
    assert out.count("not built yet") == 7
