"""The quality report's rendering: masking, balance, totals, self-containment, charts."""

from __future__ import annotations

import re

import pytest

from transforms.reporting import quality_svg
from transforms.reporting.masking import MASK, mask_identifiers
from transforms.reporting.quality_html import QualityReportData, render_quality_report


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PID|1||MRN0000042^^^NORTH_CLINIC^MR||DOE^JOHN||19580312|M", f"PID|{MASK * 3}"),
        ("name DOE^JOHN here", f"name {MASK * 3} here"),
        ("id MRN0042 and PAT-12345", f"id {MASK * 3} and {MASK * 3}"),
        ("born 19580312", f"born {MASK * 3}"),
        ("collected 2023-01-05 08:30", f"collected 2023-{MASK * 2}-{MASK * 2} 08:30"),
        ("scan 05/01/2023", f"scan {MASK * 2}/{MASK * 2}/2023"),
        # a date joined to a name by '_' (no word boundary there) is a date all the same
        ("doe_1945-04-15.csv", f"doe_1945-{MASK * 2}-{MASK * 2}.csv"),
        ("x_15.04.1945.csv", f"x_{MASK * 2}/{MASK * 2}/1945.csv"),
        ("lab/DOE_JOHN_MRN12345.csv", f"lab/DOE_JOHN_{MASK * 3}.csv"),
        # analyte values, codes and positions stay readable
        ("estradiol 12 pg/dL", "estradiol 12 pg/dL"),
        ("testosterone_total 99999 ng/dL", "testosterone_total 99999 ng/dL"),
        ("E2 1234567.5 pg/mL", "E2 1234567.5 pg/mL"),
        (
            "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||18.4",
            "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||18.4",
        ),
        ("m7/s3", "m7/s3"),
        # an RxNorm code of config/medications.csv is not an identifier
        ("199224 1 mg daily 2018-05-12", f"199224 1 mg daily 2018-{MASK * 2}-{MASK * 2}"),
        ("199225 1 mg", f"{MASK * 3} 1 mg"),
        (None, ""),
    ],
)
def test_mask_identifiers(text, expected):
    assert mask_identifiers(text) == expected


def test_known_words_are_masked_whole_and_case_blind():
    import unicodedata

    from transforms.reporting.masking import known_words

    known = known_words(["Müller-Lüdenscheidt", "Jo", None, "A", "q7731"])
    # every spelling: as is, without accents, transliterated; one letter is no name
    assert known == {"müller", "muller", "mueller", "lüdenscheidt", "ludenscheidt"} | {
        "luedenscheidt",
        "jo",
        "q7731",
    }
    m3 = MASK * 3
    assert (
        mask_identifiers("lab/MÜLLER_jo Q7731 joint.csv", known) == f"lab/{m3}_{m3} {m3} joint.csv"
    )
    assert mask_identifiers("Müllerova.csv", known) == "Müllerova.csv"  # only whole words
    # other spellings and joined words of the same names
    for text in ("MUELLER.csv", "Muller.csv", "JoMüller.csv", "LÜDENSCHEIDTJo.csv"):
        assert mask_identifiers(text, known) == f"{m3}.csv", text
    decomposed = unicodedata.normalize("NFD", "Müller.csv")  # as macOS writes names
    assert mask_identifiers(decomposed, known) == f"{m3}.csv"


def test_nice_axis_maximum():
    assert [quality_svg._nice_max(v) for v in (0, 0.3, 1, 7, 9, 11, 26, 90, 101)] == [
        1.0,
        0.5,
        1.0,
        10.0,
        10.0,
        20.0,
        50.0,
        100.0,
        200.0,
    ]


def test_stacked_bars_heights_are_proportional():
    svg = quality_svg.stacked_bars("t", ["r1", "r2"], [30, 10], [10, 0])
    heights = [
        float(h)
        for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', svg)
    ]
    plot_h = quality_svg.HEIGHT - quality_svg.TOP - quality_svg.BOTTOM
    # axis max for 40 records is 50: bars are 30/50, 10/50, 10/50 and 0 of the plot height
    assert heights[:4] == pytest.approx([plot_h * 0.6, plot_h * 0.2, plot_h * 0.2, 0.0], abs=0.06)


def _data(**kw) -> QualityReportData:
    base = dict(
        run_id="r2",
        generated_at="2024-01-02 12:00:00",
        runs=[
            {
                "run_id": "r1",
                "started_at": "2024-01-01",
                "status": "success",
                "n_files": 1,
                "n_received": 9,
                "n_accepted": 6,
                "n_quarantined": 3,
            },
            {
                "run_id": "r2",
                "started_at": "2024-01-02",
                "status": "success",
                "n_files": 2,
                "n_received": 7,
                "n_accepted": 6,
                "n_quarantined": 1,
            },
        ],
        feed_stats=[
            {
                "run_id": "r1",
                "feed": "hl7",
                "n_files": 1,
                "n_received": 9,
                "n_accepted": 6,
                "n_quarantined": 3,
            },
            {
                "run_id": "r2",
                "feed": "dexa",
                "n_files": 1,
                "n_received": 3,
                "n_accepted": 3,
                "n_quarantined": 0,
            },
            {
                "run_id": "r2",
                "feed": "lab_csv",
                "n_files": 1,
                "n_received": 4,
                "n_accepted": 2,
                "n_quarantined": 1,
            },  # 4 != 2 + 1: the balance must say so
        ],
        files=[
            {
                "file_sha256": "ab" * 32,
                "feed": "lab_csv",
                "source": "northlab",
                "name": "lab_csv/northlab/MRN0099887.csv",
                "bytes": 100,
                "status": "parsed",
                "n_received": 4,
                "n_accepted": 3,
                "n_quarantined": 1,
            },
            {
                "file_sha256": "cd" * 32,
                "feed": "dexa",
                "source": "hologic",
                "name": "dexa/hologic/x.csv",
                "bytes": 50,
                "status": "parsed",
                "n_received": 3,
                "n_accepted": 3,
                "n_quarantined": 0,
            },
        ],
        reasons=[
            {
                "feed": "lab_csv",
                "check_name": "unknown_unit",
                "n_records": 1,
                "n_open": 1,
                "n_released": 0,
                "n_files": 1,
            },
        ],
        examples=[
            {
                "quarantine_id": 4,
                "file_sha256": "ab" * 32,
                "feed": "lab_csv",
                "check_name": "unknown_unit",
                "reason": "unit 'pg/dL' for DOEFAKE^JANEFAKE",
                "excerpt": "PID|1||MRN0099887",
                "position": "line 4",
                "file_name": "lab_csv/northlab/MRN0099887.csv",
                "is_released": False,
            },
        ],
        gx=[
            {
                "table_name": "core.fct_lab_result",
                "expectation_no": 0,
                "expectation_type": "expect_column_values_to_be_unique",
                "column_name": "result_id",
                "row_condition": None,
                "arguments_json": "{}",
                "success": True,
                "element_count": 9,
                "unexpected_count": 0,
                "unexpected_percent": 0.0,
            },
            {
                "table_name": "core.fct_lab_result",
                "expectation_no": 1,
                "expectation_type": "expect_column_values_to_be_in_set",
                "column_name": "patient_in_dim",
                "row_condition": None,
                "arguments_json": '{"value_set": [true]}',
                "success": False,
                "element_count": 9,
                "unexpected_count": 1,
                "unexpected_percent": 11.11,
            },
        ],
        gx_runs=[{"run_id": "r2", "n_expectations": 2, "n_failed": 1}],
        gx_links={"core.fct_lab_result": "data_docs/validations/core/fct_lab_result/r2/t/x.html"},
        gx_index="data_docs/index.html",
    )
    base.update(kw)
    return QualityReportData(**base)


def _section(html: str, key: str) -> str:
    return html.split(f'<section id="{key}">', 1)[1].split("</section>", 1)[0]


def test_report_masks_feed_text_and_is_self_contained():
    html = render_quality_report(_data())
    for secret in ("MRN0099887", "DOEFAKE", "JANEFAKE"):
        assert secret not in html
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from a network
    assert 'href="data_docs/validations/core/fct_lab_result/r2/t/x.html"' in html
    assert 'href="data_docs/index.html"' in html


def test_feed_table_totals_and_balance():
    feeds = _section(render_quality_report(_data()), "received")
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", feeds)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in rows[1:]]
    assert cells[0][:6] == ["dexa", "1", "3", "3", "0", "0.0 %"] and cells[0][6] == "✓"
    assert cells[1][:6] == ["lab_csv", "1", "4", "2", "1", "25.0 %"] and "mismatch" in cells[1][6]
    # all feeds: 2 files, 7 received, 5 accepted, 1 quarantined (1/7 = 14.3 %), mismatch
    assert cells[2][:6] == ["all feeds", "2", "7", "5", "1", "14.3 %"] and "mismatch" in cells[2][6]


def test_gx_section_lists_failures_and_trends_cover_every_run():
    html = render_quality_report(_data())
    gx = _section(html, "expectations")
    failed = gx.split("Failed expectations", 1)[1]
    assert "patient_in_dim" in failed and "result_id" not in failed  # passed ones not listed
    assert gx.count('class="bad">failed') == 1
    trends = _section(html, "trends")
    assert trends.count("<svg") == 2
    assert ">r1<" in trends and ">r2<" in trends
    assert "1 / 2" in trends  # GX failed / evaluated of r2


def test_report_without_runs_renders():
    html = render_quality_report(QualityReportData(run_id=None, generated_at="2024-01-01 00:00:00"))
    assert "No run recorded yet." in html and "did not run" in html


def test_files_needing_attention_come_first_and_all_files_are_folded():
    files = _section(render_quality_report(_data()), "files")
    attention = files.split('<table id="files">', 1)[1].split("</table>", 1)[0]
    assert "abababababab" in attention and "cdcdcdcdcdcd" not in attention  # clean file not listed
    folded = files.split("<details>", 1)[1]
    assert "All 2 files of this run" in folded
    assert "abababababab" in folded and "cdcdcdcdcdcd" in folded


def test_every_quarantine_check_is_explained():
    from schemas.validate import SCHEMA_VIOLATION
    from transforms.records import CHECK_NAMES
    from transforms.reporting.quality_html import CHECK_MEANINGS

    assert set(CHECK_MEANINGS) == {*CHECK_NAMES, SCHEMA_VIOLATION}


def test_records_held_from_earlier_runs_stay_in_view():
    # a run that put nothing aside: its own cards say 0, the open queue of earlier runs stays
    import dataclasses

    data = dataclasses.replace(
        _data(),
        reasons=[],
        open_by_run=[
            {"run_id": "r0", "check_name": "unknown_unit", "n_open": 7},
            {"run_id": "r1", "check_name": "future_date", "n_open": 2},
        ],
    )
    html = render_quality_report(data)
    cards = dict(
        (label, n)
        for n, label in re.findall(
            r'<div class="n[^"]*">([^<]*)</div><div class="l">([^<]*)</div>', html
        )
    )
    assert cards["of these still held"] == "0" and cards["held from all runs"] == "9"
    held = _section(html, "held")
    assert "9 records put aside by this or earlier runs" in held
    assert ">r0<" in held and ">7<" in held and ">future_date<" in held
    assert "Nothing was put aside in this run." in _section(html, "quarantine")
    empty = render_quality_report(dataclasses.replace(_data(), open_by_run=[]))
    assert "Nothing is held in quarantine." in _section(empty, "held")
