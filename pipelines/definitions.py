"""The whole Dagster graph, loaded from one place (``dagster dev -m pipelines.definitions``)."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import all_assets
from pipelines.resources import WarehouseResource

everything = dg.define_asset_job("labwh_all", selection=dg.AssetSelection.all())

defs = dg.Definitions(
    assets=all_assets,
    jobs=[everything],
    resources={"warehouse": WarehouseResource()},
)
