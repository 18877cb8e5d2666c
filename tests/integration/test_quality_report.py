"""build_quality_report on a built warehouse: the latest run becomes quality_report.html, every
run gets its copy, counts come from quality.run_feed_stats / raw.files / quality.quarantine,
and the planted identifiers in an excerpt never reach the page."""

from __future__ import annotations

import re

import pytest
import quality_fixture as qf

from warehouse.quality_report import build_quality_report

pytestmark = pytest.mark.integration


def _cells(html: str, table_id: str) -> list[list[str]]:
    """Text of the body cells of the table with ``table_id``, row by row."""
    table = html.split(f'<table id="{table_id}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table)[1:]
    return [
        [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)] for r in rows
    ]


def test_reports_per_run_with_counts_and_masking(home):
    qf.build_quality_warehouse(home, with_marts=False, with_bad_rows=False)
    main = build_quality_report(home)
    quality = home.reports / "quality"
    assert main == quality / "quality_report.html"
    assert (quality / "runs" / f"{qf.RUN_2}.html").exists()
    latest = main.read_text()
    assert f"run: {qf.RUN_2}" in latest

    older = build_quality_report(home, qf.RUN_1)
    assert older == quality / "runs" / f"{qf.RUN_1}.html"
    assert f"run: {qf.RUN_2}" in main.read_text()  # the main page still shows the latest run
    html = older.read_text()

    # run-0001: one hl7 file, 9 received = 6 accepted + 3 quarantined (fixture bookkeeping)
    assert _cells(html, "feeds")[0][:5] == ["hl7", "1", "9", "6", "3"]
    reasons = {(r[0], r[1]): r[3:6] for r in _cells(html, "reasons")}
    assert reasons == {
        ("hl7", "implausible_value"): ["1", "1", "0"],
        ("hl7", "malformed_message"): ["1", "1", "0"],
        ("hl7", "unknown_unit"): ["1", "1", "0"],
    }
    # the malformed message's excerpt holds a PID segment with a fake MRN and name
    for secret in (qf.FAKE_MRN, "DOEFAKE", "JANEFAKE", "19580312"):
        assert secret not in html
    assert "PID|▒▒▒" in html
    runs = _cells(html, "runs")
    assert [r[0] for r in runs] == [qf.RUN_2, qf.RUN_1]
    assert runs[1][4:8] == ["9", "6", "3", "33.3 %"]


def test_a_duplicate_delivery_is_a_row_of_the_files_section(home):
    # the same bytes delivered again under another name in run-0001: one record received and
    # quarantined (duplicate_file), shown as its own row so the rows add up to the feed totals
    import duckdb

    qf.build_quality_warehouse(home, with_marts=False, with_bad_rows=False)
    con = duckdb.connect(str(home.warehouse))
    sha, received_at = con.execute(
        "SELECT file_sha256, received_at FROM raw.files WHERE run_id = $r", {"r": qf.RUN_1}
    ).fetchone()
    con.execute(
        "INSERT INTO raw.deliveries VALUES ('hl7/copy_of_a.hl7', $s, 'hl7', $t, true, $r)",
        {"s": sha, "t": received_at, "r": qf.RUN_1},
    )
    con.close()
    html = build_quality_report(home, qf.RUN_1).read_text()
    assert "1 files staged and 1 deliveries of bytes already received" in html
    rows = _cells(html, "all-files")
    assert [r[5:10] for r in rows if r[5] == "duplicate"] == [["duplicate", "1", "0", "1", "✓"]]
    assert [r[2] for r in rows] == [sha[:12], sha[:12]]
