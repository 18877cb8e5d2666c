"""The report assembles without failing on empty or tiny cohorts, and shows nothing small."""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd

from transforms.reporting import cohort_config
from transforms.reporting.cohort_build import build_content
from transforms.reporting.cohort_select import CohortData

CONFIG = cohort_config.from_mapping(
    {
        "labs": [{"analyte": "estradiol", "label": "E2", "unit": "pg/mL"}],
        "sites": [{"site": "lumbar_spine", "label": "Spine"}],
        "base_criteria": [{"type": "sex", "in": ["M"], "label": "men"}],
        "cohorts": {
            "ai": {"label": "AI", "criteria": [{"type": "anastrozole_days", "min": 183}]},
            "none": {"label": "None", "criteria": [{"type": "anastrozole_days", "max": 0}]},
        },
        "comparisons": [{"name": "ai_vs_none", "title": "AI vs none", "groups": ["ai", "none"]}],
    }
)


def frames(n_ai: int, n_none: int) -> CohortData:
    keys = [f"pk_ai_{i}" for i in range(n_ai)] + [f"pk_no_{i}" for i in range(n_none)]
    d0 = dt.date(2020, 1, 1)
    patients = pd.DataFrame(
        {
            "patient_key": keys,
            "sex": "M",
            "birth_year": 1960,
            "first_e2_date": d0,
            "e2_followup_days": 700,
            "age_at_first_e2": 60,
            "anastrozole_days": [400] * n_ai + [0] * n_none,
        }
    )
    fractions = pd.DataFrame(
        [(k, 20.0, 0.25 * (i % 4)) for i, k in enumerate(keys)],
        columns=["patient_key", "threshold_pg_ml", "fraction_below"],
    )
    trend = pd.DataFrame(
        [(k, "lumbar_spine", 3, 2.0, 1.0, -0.01 * (i % 3), -(i % 3), False)
         for i, k in enumerate(keys)],
        columns=["patient_key", "site", "n_scans", "span_years", "first_bmd_g_cm2",
                 "slope_g_cm2_per_year", "slope_pct_per_year", "uses_sbmd"],
    )  # fmt: skip
    labs = pd.DataFrame(
        [(k, "estradiol", d0 + dt.timedelta(days=d), 20.0 + i, False, 1)
         for i, k in enumerate(keys) for d in (0, 360)],
        columns=["patient_key", "analyte", "result_date", "value", "is_censored", "n_results"],
    )  # fmt: skip
    dexa = pd.DataFrame(
        [(k, "lumbar_spine", d0 + dt.timedelta(days=d), 1.0 - 0.001 * d / 365, -1.0)
         for k in keys for d in (0, 370, 740)],
        columns=["patient_key", "site", "scan_date", "bmd_g_cm2", "t_score"],
    )  # fmt: skip
    return CohortData(patients, fractions, trend, labs, dexa)


def cells_of(html: str) -> list[str]:
    return re.findall(r"<td[^>]*>([^<]*)</td>", html)


def test_empty_warehouse_renders_a_report():
    c = build_content(CONFIG, frames(0, 0))
    assert "<!DOCTYPE html>" in c.html
    assert len(c.figures) == 4
    assert "| AI vs none | AI | <11 | — | — | — |" in c.preview_markdown
    # "<11" alone would read as 1-10 patients
    assert "The warehouse holds no patient yet" in c.html
    assert "holds no patient" not in build_content(CONFIG, frames(4, 7)).html


def test_tiny_groups_show_no_number_but_the_shared_steps():
    c = build_content(CONFIG, frames(4, 7))
    numbers = [x for x in cells_of(c.html) if re.fullmatch(r"-?[0-9.]+(e-?\d+)?", x)]
    # the only numbers shown: the 11 patients (4 + 7) in the warehouse and after "men"
    assert numbers == ["11", "11", "11", "11"]
    assert "| AI | <11 | — | — | — |" in c.preview_markdown
    assert "| None | <11 | — | — |  |" in c.preview_markdown
    assert "pk_" not in c.html  # "_" is not in the base64 alphabet


def test_groups_of_eleven_are_shown():
    c = build_content(CONFIG, frames(11, 12))
    lines = c.preview_markdown.splitlines()
    assert lines[2].startswith("| AI vs none | AI | 11 | ")
    assert lines[3].startswith("|  | None | 12 | ")
    assert "—" not in lines[2]
