"""Deterministic synthetic cohort behind ``labwh generate`` (landing files + ground truth).

``generate(patients, seed, out, **options)`` writes ``out/landing/<feed>/…`` in the shapes of
docs/feeds.md and ``out/truth/…`` (docs/truth.md). Same arguments → byte-identical files:
every random draw comes from a ``random.Random`` seeded from (seed, purpose, patient), there is
no wall clock, and every collection is written in an explicit sort order.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transforms.catalog import load_catalog

from .cohort import build_cohort
from .common import write_bytes
from .dexa_writer import write_dexa
from .hl7_writer import write_hl7
from .labcsv_writer import write_lab_csv
from .meds_writer import write_meds
from .options import GENERATOR_VERSION, Options, make_options
from .truth import write_truth

__all__ = ["GENERATOR_VERSION", "Options", "generate"]


def _prepare(out: Path) -> None:
    """Remove a previous generator output in ``out``; refuse to mix with foreign files."""
    for sub in ("landing", "truth"):
        d = out / sub
        if d.exists() and any(d.iterdir()):
            if not (out / "truth" / "manifest.json").exists():
                raise FileExistsError(f"{d} is not empty and was not written by the generator")
    for sub in ("landing", "truth"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)


def generate(patients: int, seed: int, out: Path | str, **options) -> dict:
    """Write a synthetic cohort of ``patients`` men under ``out`` and return a summary.

    Options (keyword, all optional; see ``Options``): ``bad_per_kind`` (default
    max(1, patients // 50)), ``start_date``, ``end_date``, ``feed_mix``, ``correction_rate``,
    ``retraction_rate``, ``vendor_switch_rate``, feature parameters (``thresholds_pg_ml``,
    ``max_gap_days``, ``censored_fraction``, ``min_span_years``, ``lsc_g_cm2``,
    ``persistence_window_days``; defaults from config/features.yaml) and ``config_dir``.
    """
    if patients < 0:
        raise ValueError("patients must be >= 0")
    opts = make_options(patients, **options)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _prepare(out)
    catalog = load_catalog(opts.config_dir)
    cohort = build_cohort(patients, seed, opts)
    hl7 = write_hl7(cohort, catalog, opts, seed)
    lab_csv = write_lab_csv(cohort, catalog, opts, seed)
    dexa, scans = write_dexa(cohort, opts, seed)
    meds, supplies = write_meds(cohort, opts, seed)
    outputs = [hl7, lab_csv, dexa, meds]
    landing = out / "landing"
    for o in outputs:
        for name, data in sorted(o.files.items()):
            write_bytes(landing, name, data)
    manifest = {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "patients": patients,
        "options": opts.manifest(),
        "landing_dir": "landing",
    }
    summary = write_truth(out / "truth", patients=cohort, outputs=outputs, scans=scans,
                          supplies=supplies, opts=opts, manifest=manifest)  # fmt: skip
    return {
        "patients": patients,
        "seed": seed,
        "landing": str(landing),
        "truth": str(out / "truth"),
        "files": {o.feed: len(o.files) for o in outputs},
        **summary,
    }
