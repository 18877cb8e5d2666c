"""Dagster resources: where the warehouse home is."""

from __future__ import annotations

import dagster as dg

from warehouse.home import Home


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse home (``$LABWH_HOME``): writer DB, identity store, archive, reports."""

    home: str = ""
    landing: str = ""

    def get_home(self) -> Home:
        return Home.from_env(self.home or None)

    def landing_dir(self):
        home = self.get_home()
        return home.landing if not self.landing else Home.from_env(self.landing).root
