"""The local Dagster instance: ``$LABWH_HOME/dagster`` with its ``dagster.yaml``.

``ensure_instance(home)`` writes the instance configuration (telemetry off, every storage
under the folder, one run at a time because DuckDB has a single writer) and returns the
folder to use as ``DAGSTER_HOME``. The CLI calls it before any run; ``scripts/dagster_dev.sh``
calls ``python -m pipelines.instance`` before ``dagster dev``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from warehouse.home import Home

MAX_RUNTIME_S = 6 * 3600
"""A run still STARTED after this is failed by the daemon's run monitoring."""

WRITER_TAG = "labwh/warehouse"
"""Tag on every run that writes the warehouse; the run queue admits one such run at a time."""


def instance_config(dagster_home: Path) -> dict:
    """The ``dagster.yaml`` content for a local instance rooted at ``dagster_home``."""
    base = Path(dagster_home).resolve()
    return {
        "telemetry": {"enabled": False},
        "storage": {"sqlite": {"base_dir": str(base / "storage")}},
        "local_artifact_storage": {
            "module": "dagster._core.storage.root",
            "class": "LocalArtifactStorage",
            "config": {"base_dir": str(base)},
        },
        "compute_logs": {
            "module": "dagster._core.storage.local_compute_log_manager",
            "class": "LocalComputeLogManager",
            "config": {"base_dir": str(base / "logs")},
        },
        # the default QueuedRunCoordinator (daemon) honours these limits
        "concurrency": {
            "runs": {
                "max_concurrent_runs": 1,
                "tag_concurrency_limits": [{"key": WRITER_TAG, "limit": 1}],
            }
        },
        # the default launcher cannot see a run worker that died (kill -9, a reboot): its run
        # stays STARTED and holds the one-run queue until this bound fails it
        "run_monitoring": {"enabled": True, "max_runtime_seconds": MAX_RUNTIME_S},
    }


def ensure_instance(home: Home | str | os.PathLike | None = None) -> Path:
    """Create ``<home>/dagster/dagster.yaml`` (rewritten when it differs); return the folder."""
    if not isinstance(home, Home):
        home = Home.from_env(home)
    dagster_home = home.dagster_home
    dagster_home.mkdir(parents=True, exist_ok=True)
    text = (
        "# written by pipelines.instance.ensure_instance; edits are overwritten\n"
        + yaml.safe_dump(instance_config(dagster_home), sort_keys=False)
    )
    target = dagster_home / "dagster.yaml"
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        tmp = target.with_suffix(".yaml.part")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    return dagster_home


if __name__ == "__main__":  # prints the DAGSTER_HOME to export (scripts/dagster_dev.sh)
    print(ensure_instance(sys.argv[1] if len(sys.argv) > 1 else None))
