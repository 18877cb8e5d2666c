"""The HTML reports open in headless Chromium without any console message (skipped when
/usr/bin/chromium is absent: `apt-get install -y chromium`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import quality_fixture as qf

from warehouse.quality_report import build_quality_report

CHROMIUM = Path("/usr/bin/chromium")
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_reports_chromium.sh"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed"),
]


def _check(reports: Path, shots: Path | None = None) -> subprocess.CompletedProcess:
    args = ["bash", str(SCRIPT), str(reports)] + ([str(shots)] if shots else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


def test_quality_reports_load_cleanly_and_a_broken_page_is_caught(home, tmp_path):
    qf.build_quality_warehouse(home, with_marts=False, with_bad_rows=False)
    build_quality_report(home)
    build_quality_report(home, qf.RUN_1)
    result = _check(home.reports, tmp_path / "shots")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 report(s) checked" in result.stdout
    assert len(list((tmp_path / "shots").glob("*.png"))) == 3

    broken = tmp_path / "broken"
    shutil.copytree(home.reports, broken)
    (broken / "bad.html").write_text(
        "<!DOCTYPE html><html><body><script>not_defined();</script></body></html>"
    )
    result = _check(broken)
    assert result.returncode == 1
    assert "Uncaught ReferenceError" in result.stderr


def test_data_docs_load_offline_and_a_missing_copy_is_caught(home, tmp_path):
    """GX's Data Docs pages, rewritten to the site's local assets, load with the network
    refused and no console message; without the local jQuery they break visibly."""
    import datetime as dt

    from warehouse.quality_gx import run_gx

    qf.build_quality_warehouse(home)
    run_gx(home, qf.RUN_2, as_of=dt.datetime(2024, 6, 1))
    site = home.reports / "quality" / "data_docs"
    result = _check(site)
    assert result.returncode == 0, result.stdout + result.stderr
    # the index, and per table of config/gx_suites.yaml (6) its suite and its validation page
    assert "13 report(s) checked" in result.stdout

    broken = tmp_path / "no_jquery"
    shutil.copytree(site, broken)
    (broken / "static" / "vendor" / "jquery" / "jquery.min.js").unlink()
    result = _check(broken)
    assert result.returncode == 1
    assert "Failed to load resource" in result.stderr or "$ is not defined" in result.stderr
