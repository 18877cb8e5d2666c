"""Build parameters shared by the Dagster assets and the CLI (config/*.yaml, *.csv)."""

from __future__ import annotations

import copy

from transforms import feature_config
from transforms.catalog import CONFIG_DIR
from transforms.yamlfile import read_yaml

# run-config override name → section of config/features.yaml
_OVERRIDE_SECTIONS = {
    "thresholds_pg_ml": "e2_exposure",
    "max_gap_days": "e2_exposure",
    "censored_fraction": "e2_exposure",
    "min_span_years": "bmd_trend",
}


def _features_yaml() -> dict:
    return read_yaml(feature_config.CONFIG_PATH) or {}


def core_params() -> dict:
    cfg = _features_yaml().get("medication_exposure", {})
    return {
        "omop_concepts_csv": str(CONFIG_DIR / "omop_concepts.csv"),
        "persistence_window_days": int(cfg.get("persistence_window_days", 30)),
    }


def feature_params(overrides: dict | None = None) -> dict:
    """Bound parameters of the feature marts: config/features.yaml with run-config overrides."""
    raw = copy.deepcopy(_features_yaml())
    for key, value in (overrides or {}).items():
        section = _OVERRIDE_SECTIONS.get(key)
        if section is None:
            raise KeyError(f"unknown feature parameter {key!r}")
        raw.setdefault(section, {})[key] = value
    try:
        return feature_config.from_mapping(raw).model_params()
    except ValueError as err:
        if not overrides:
            raise
        # the bad value may be the run's, not the file's: say which were overridden
        raise ValueError(f"{err} (run-config overrides: {sorted(overrides)})") from err
