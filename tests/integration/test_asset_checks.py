"""The Dagster contract checks run against a built warehouse: pass on a sound one, fail
(blocking) when a core table breaks its contract, and carry no values in their metadata."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import duckdb
import pytest
import quality_fixture as qf

from pipelines.assets import all_assets
from pipelines.checks import build_asset_checks
from pipelines.resources import WarehouseResource

pytestmark = pytest.mark.integration


def _evaluate(home) -> dict[str, dg.AssetCheckEvaluation]:
    job = dg.define_asset_job("checks_only", selection=dg.AssetSelection.all_asset_checks())
    defs = dg.Definitions(
        assets=all_assets,
        asset_checks=build_asset_checks(),
        jobs=[job],
        resources={"warehouse": WarehouseResource(home=str(home.root))},
    )
    result = defs.resolve_job_def("checks_only").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_checks_pass_on_built_warehouse_then_block_on_duplicate_keys(home):
    qf.build_quality_warehouse(home, with_bad_rows=False)
    evaluations = _evaluate(home)
    assert len(evaluations) == 13  # 4 staged + 7 core + 2 marts tables
    assert all(e.passed for e in evaluations.values()), {
        k: e.metadata for k, e in evaluations.items() if not e.passed
    }

    con = duckdb.connect(str(home.warehouse))
    con.execute("INSERT INTO core.dim_patient SELECT * FROM core.dim_patient")  # every key twice
    con.close()
    evaluations = _evaluate(home)
    bad = evaluations["core/dim_patient"]
    assert not bad.passed and bad.blocking
    assert bad.metadata["failures_by_check"].data == {"patient_key:field_uniqueness": 4}
    assert qf.PK_A not in repr(bad.metadata) and qf.PK_B not in repr(bad.metadata)
    assert all(e.passed for k, e in evaluations.items() if k != "core/dim_patient")


def test_modules_dagster_loads_do_not_import_great_expectations():
    code = (
        "import sys, pipelines.checks, warehouse.quality_gx, warehouse.quality_report, "
        "warehouse.quarantine; print('great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
