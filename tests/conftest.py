"""Shared fixtures: every test gets its own warehouse home in a temp folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh ``Home`` under tmp_path with a fixed HMAC key (never a developer's data/)."""
    from warehouse.home import Home

    monkeypatch.setenv("LABWH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABWH_HMAC_KEY", "test-key-not-secret")
    home = Home.from_env().ensure()
    home.landing.mkdir()  # a deployment's landing folder exists (ensure does not make it)
    return home
