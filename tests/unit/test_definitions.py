"""The Dagster definitions load and show every layer of the contract."""


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

    for cmd in ["generate", "run", "sql", "report", "quarantine", "reprocess", "rekey"]:
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args([cmd, "--help"])
        assert exc.value.code == 0
        assert "usage: labwh " + cmd in capsys.readouterr().out


def test_report_and_sql_before_any_run_say_what_to_do(home, capsys):
    from pipelines.cli import main

    assert not home.warehouse.exists()
    assert main(["report"]) == 2
    assert "run `labwh run` first" in capsys.readouterr().err
    assert main(["sql", "-c", "SELECT 1"]) == 2
    assert "run `labwh run` first" in capsys.readouterr().err
