"""Dagster resources: where the warehouse home is."""

from __future__ import annotations

from contextlib import contextmanager

import dagster as dg

from warehouse import locks
from warehouse.home import Home


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse home (``$LABWH_HOME``): writer DB, identity store, archive, reports."""

    home: str = ""
    landing: str = ""

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext):
        """A run holds the run lock from its first step to its last: two runs (a `labwh run`
        and a scheduled one, say) never interleave their steps. Sensors take no lock."""
        if context.dagster_run is None:
            yield self
            return
        with locks.run_lock(self.get_home().run_lock):
            yield self

    def get_home(self) -> Home:
        return Home.from_env(self.home or None)

    def landing_dir(self):
        home = self.get_home()
        return home.landing if not self.landing else Home.from_env(self.landing).root
