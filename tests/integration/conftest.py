"""A generated cohort run through the whole pipeline once per test session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def published_warehouse(tmp_path_factory):
    from pipelines.cli import run_pipeline
    from transforms.generate import generate
    from warehouse.home import Home

    base = tmp_path_factory.mktemp("published")
    mp = pytest.MonkeyPatch()
    mp.setenv("LABWH_HMAC_KEY", "session-key")
    mp.setenv("LABWH_HOME", str(base / "home"))
    generate(40, 5, base / "gen")
    home = Home.from_env(base / "home")
    run_pipeline(home, base / "gen" / "landing")
    yield home.published
    mp.undo()
