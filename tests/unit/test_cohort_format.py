"""Small-cell suppression and cell formatting of the cohort report; HTML self-containment."""

from __future__ import annotations

import base64

from transforms.reporting.cohort_format import SUPPRESSED, Cells, Table
from transforms.reporting.cohort_html import Figure, Section, render
from transforms.reporting.cohort_stats import Summary

CELLS = Cells(11)


def test_counts_below_the_limit_are_masked():
    assert [CELLS.count(n) for n in (0, 1, 10, 11, 250)] == ["<11", "<11", "<11", "11", "250"]
    assert Cells(5).count(4) == "<5"


def test_statistics_of_small_groups_are_suppressed():
    small = Summary(10, 1.0, 0.5, 0.6, 1.4)
    big = Summary(11, 1.0, 0.5, 0.6, 1.4)
    assert CELLS.mean_sd(small, 2) == SUPPRESSED
    assert CELLS.mean_sd(big, 2) == "1.00 ± 0.50"
    assert CELLS.value(1.23456, 10, 3) == SUPPRESSED
    assert CELLS.value(-1.23456, 11, 3) == "-1.235"
    assert CELLS.ci(0.6, 1.4, 10, 1) == SUPPRESSED
    assert CELLS.ci(-0.6, 1.4, 11, 1) == "-0.6 to 1.4"
    assert CELLS.p(0.2, 11, 10) == SUPPRESSED
    assert CELLS.p(0.01234, 11, 12) == "0.012"
    assert CELLS.p(0.00012345, 11, 12) == "1.23e-04"


def test_negative_zero_is_printed_as_zero():
    assert Cells.num(-0.0004, 3) == "0.000"
    assert Cells.num(-0.0006, 3) == "-0.001"


def test_markdown_table():
    t = Table("k", "T", ["a", "b"], [["x|y", "<11"]])
    assert t.to_markdown() == "| a | b |\n| --- | --- |\n| x\\|y | <11 |"


def test_html_embeds_figures_and_escapes_text():
    png = b"\x89PNG\r\n\x1a\nfake"
    section = Section(
        "s1",
        "A <b> title",
        intro=["1 < 2"],
        tables=[Table("s1-t", "Table", ["c"], [["<11"]])],
        figures=[Figure("f", "cap", png)],
    )
    html = render("Report", [("Run", "r1")], [section])
    assert html.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," + base64.b64encode(png).decode() in html
    assert "A &lt;b&gt; title" in html and "<td>&lt;11</td>" in html
    assert "http" not in html and "<script" not in html and "<link" not in html


def test_feature_parameters_line():
    from transforms.reporting.cohort_format import feature_parameters

    params = {
        "marts.feat_e2_exposure": {
            "thresholds_pg_ml": [10.0, 20.0, 32.5],
            "max_gap_days": 200,
            "censored_fraction": 0.5,
        },
        "marts.feat_bmd_trend": {
            "min_span_years": 1.5,
            "bmd_sites": ["lumbar_spine", "total_hip"],
            "lsc_g_cm2": [0.03, 0.025],
        },
    }
    assert feature_parameters(params) == (
        "E2 thresholds 10, 20, 32.5 pg/mL, max gap 200 days, <L as L × 0.5; "
        "BMD min span 1.5 years, LSC g/cm² lumbar_spine 0.03, total_hip 0.025"
    )
    assert feature_parameters({}) == "not recorded"
