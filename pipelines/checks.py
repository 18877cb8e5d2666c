"""Asset checks: every staged, core and marts table against its Pandera contract.

Wiring only. One check per table (``schemas.checks.asset_check_specs``), keyed to the asset
``[schema, table]``; core and marts checks are blocking, so a broken contract stops the
downstream assets (and the published snapshot). The check opens the warehouse read-only and
reports counts and check names only, never the failing values.
"""

from __future__ import annotations

import dagster as dg

from pipelines.resources import WarehouseResource
from schemas.checks import CheckSpec, asset_check_specs, validate_table
from warehouse.quality_queries import connect_read_only

CHECK_NAME = "pandera_contract"


def _check(spec: CheckSpec) -> dg.AssetChecksDefinition:
    schema, table = spec.table.split(".")

    @dg.asset_check(
        asset=dg.AssetKey([schema, table]),
        name=CHECK_NAME,
        description=spec.description,
        blocking=spec.blocking,
    )
    def _contract(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        con = connect_read_only(warehouse.get_home().warehouse)
        try:
            passed, n_failures, by_check, meta = validate_table(con, spec.table)
        finally:
            con.close()
        return dg.AssetCheckResult(
            passed=passed,
            metadata={
                "n_failures": n_failures,
                "failures_by_check": dg.MetadataValue.json(by_check),
                **{k: v for k, v in meta.items() if isinstance(v, int | str)},
            },
        )

    return _contract


def build_asset_checks() -> list[dg.AssetChecksDefinition]:
    """The contract checks of every modelled table (register: ``asset_checks=...``)."""
    return [_check(spec) for spec in asset_check_specs()]
