"""Build parameters shared by the Dagster assets and the CLI (config/*.yaml, *.csv)."""

from __future__ import annotations

from pathlib import Path

import yaml

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def _features_yaml() -> dict:
    with open(CONFIG_DIR / "features.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def core_params() -> dict:
    cfg = _features_yaml().get("medication_exposure", {})
    return {
        "omop_concepts_csv": str(CONFIG_DIR / "omop_concepts.csv"),
        "persistence_window_days": int(cfg.get("persistence_window_days", 30)),
    }


def feature_params(overrides: dict | None = None) -> dict:
    """Bound parameters of the feature marts (transforms.feature_config when present)."""
    from transforms import feature_config

    return feature_config.model_params(overrides)
