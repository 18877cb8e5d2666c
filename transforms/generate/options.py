"""Options of ``generate()`` with their defaults (feature parameters from config/features.yaml)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transforms.yamlfile import read_yaml

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"

GENERATOR_VERSION = "1.0.0"


def _feature_defaults(config_dir: Path) -> dict:
    path = config_dir / "features.yaml"
    cfg = read_yaml(path) if path.exists() else {}
    e2 = (cfg or {}).get("e2_exposure", {})
    bmd = (cfg or {}).get("bmd_trend", {})
    med = (cfg or {}).get("medication_exposure", {})
    return {
        "thresholds_pg_ml": [float(t) for t in e2.get("thresholds_pg_ml", [10, 20, 30])],
        "max_gap_days": int(e2.get("max_gap_days", 180)),
        "censored_fraction": float(e2.get("censored_fraction", 0.5)),
        "min_span_years": float(bmd.get("min_span_years", 1.0)),
        "lsc_g_cm2": dict(
            bmd.get("lsc_g_cm2", {"lumbar_spine": 0.030, "total_hip": 0.025, "femoral_neck": 0.035})
        ),
        "persistence_window_days": int(med.get("persistence_window_days", 30)),
    }


@dataclass(frozen=True)
class Options:
    """Everything that shapes the output; same options + seed → byte-identical files."""

    bad_per_kind: int = 1
    start_date: dt.date = dt.date(2017, 1, 1)
    end_date: dt.date = dt.date(2025, 6, 30)
    feed_mix: tuple[float, float, float] = (0.6, 0.2, 0.2)  # hl7, northlab, southlab
    correction_rate: float = 0.04  # share of HL7 E2 results re-sent later with OBX-11=C
    retraction_rate: float = 0.015  # share of HL7 E2 results retracted later with OBX-11=D
    vendor_switch_rate: float = 0.25  # patients with >= 3 DXA visits who change manufacturer
    thresholds_pg_ml: tuple[float, ...] = (10.0, 20.0, 30.0)
    max_gap_days: int = 180
    censored_fraction: float = 0.5
    min_span_years: float = 1.0
    lsc_g_cm2: dict = field(
        default_factory=lambda: {"lumbar_spine": 0.030, "total_hip": 0.025, "femoral_neck": 0.035}
    )
    persistence_window_days: int = 30
    config_dir: Path = CONFIG_DIR

    def manifest(self) -> dict:
        d = asdict(self)
        d["start_date"] = self.start_date.isoformat()
        d["end_date"] = self.end_date.isoformat()
        d["feed_mix"] = list(self.feed_mix)
        d["thresholds_pg_ml"] = list(self.thresholds_pg_ml)
        d["config_dir"] = "config" if self.config_dir == CONFIG_DIR else str(self.config_dir)
        return d


def make_options(patients: int, **overrides) -> Options:
    """Defaults (bad_per_kind = max(1, patients // 50); feature parameters from the config)."""
    config_dir = Path(overrides.get("config_dir", CONFIG_DIR))
    base = _feature_defaults(config_dir)
    base["thresholds_pg_ml"] = tuple(base["thresholds_pg_ml"])
    base["bad_per_kind"] = max(1, patients // 50)
    base["config_dir"] = config_dir
    unknown = set(overrides) - set(Options.__dataclass_fields__)
    if unknown:
        raise TypeError(f"unknown generate() options: {sorted(unknown)}")
    base.update(overrides)
    for key in ("start_date", "end_date"):
        if isinstance(base.get(key), str):
            base[key] = dt.date.fromisoformat(base[key])
    if "thresholds_pg_ml" in overrides:
        base["thresholds_pg_ml"] = tuple(float(t) for t in overrides["thresholds_pg_ml"])
    return Options(**base)
