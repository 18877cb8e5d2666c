"""`dagster dev -m pipelines.definitions` starts, and its GraphQL API lists the warehouse.

Runs the real webserver + daemon as a subprocess group with DAGSTER_HOME and LABWH_HOME
under tmp_path, polls ``/graphql`` until it answers (at most ``STARTUP_TIMEOUT_S``), checks
the asset keys, sensors and schedule, then stops the whole process group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = float(os.environ.get("LABWH_DAGSTER_DEV_TIMEOUT", "180"))
"""Measured: 64 s and 100 s to the first answer on the 2-core machine at load average 8-9."""
QUERY = """
{
  assetNodes { assetKey { path } }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { sensors { name } schedules { name } jobs { name } }
    }
  }
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the group (webserver, daemon, code server), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def test_dagster_dev_serves_the_asset_graph(tmp_path):
    pytest.importorskip("dagster_webserver")
    from pipelines.instance import ensure_instance
    from warehouse.home import Home

    home = Home.from_env(tmp_path / "home").ensure()
    env = {
        **os.environ,
        "LABWH_HOME": str(home.root),
        "LABWH_HMAC_KEY": "test-key-not-secret",
        "DAGSTER_HOME": str(ensure_instance(home)),
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }
    env.pop("LABWH_AUTOMATION", None)
    port = free_port()
    log = open(tmp_path / "dagster_dev.log", "wb")  # noqa: SIM115 - closed below
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-m", "pipelines.definitions"]
        + ["-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        data, last_error = None, None
        while time.monotonic() - t0 < STARTUP_TIMEOUT_S:
            if proc.poll() is not None:
                break
            try:
                data = graphql(port, QUERY)["data"]
                if data["assetNodes"]:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, KeyError) as exc:
                last_error = exc
            time.sleep(1)
        elapsed = time.monotonic() - t0
        output = (tmp_path / "dagster_dev.log").read_text(errors="replace")[-3000:]
        assert data and data["assetNodes"], (
            f"no answer after {elapsed:.0f}s ({last_error!r}); log tail:\n{output}"
        )
        print(f"\ndagster dev answered GraphQL after {elapsed:.1f}s")

        keys = {"/".join(n["assetKey"]["path"]) for n in data["assetNodes"]}
        for key in [
            "raw/files",
            "staging/stg_meds__medication",
            "core/fct_lab_result",
            "core/dim_patient",
            "marts/feat_e2_exposure",
            "marts/feat_bmd_trend",
            "published/analytics",
        ]:
            assert key in keys
        (repo,) = data["repositoriesOrError"]["nodes"]
        assert {s["name"] for s in repo["sensors"]} == {
            "landing_hl7",
            "landing_lab_csv",
            "landing_dexa",
            "landing_meds",
            "labwh_run_failed",
            "labwh_run_succeeded",
        }
        assert [s["name"] for s in repo["schedules"]] == ["labwh_daily"]
        assert {"labwh_all", "reprocess_file", "ingest_meds"} <= {j["name"] for j in repo["jobs"]}
        # the instance is the one under LABWH_HOME, not a temporary one
        assert (home.dagster_home / "storage").is_dir()
    finally:
        stop(proc)
        log.close()
    assert proc.poll() is not None
