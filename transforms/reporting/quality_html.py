"""The quality report as one self-contained HTML page (inline CSS and SVG, no scripts, no
external resources): what arrived, what was accepted, what was put aside and why, the Great
Expectations outcome, and trends across runs. Pure rendering: the data comes in as
``QualityReportData`` (warehouse/quality_report.py queries it).

Every free text that comes from a feed (quarantine reasons and excerpts, file names) goes
through ``masking.mask_identifiers`` before it is shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

from transforms.reporting import quality_svg
from transforms.reporting.cohort_html import CSS as BASE_CSS
from transforms.reporting.masking import mask_identifiers

CSS = (
    BASE_CSS
    + """
td.text, th.text { text-align: left; white-space: normal; max-width: 34rem; min-width: 10rem; }
td.path { word-break: break-all; min-width: 8rem; max-width: 18rem; }
td.mono { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .8rem;
          text-align: left; }
details { margin: .6rem 0; }
summary { cursor: pointer; color: #3b6fb6; }
.ok { color: #1f7a3f; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .6rem 1rem; min-width: 9rem; }
.card .n { font-size: 1.5rem; font-weight: 600; }
.card .l { color: #555; font-size: .8rem; }
tr.total td { font-weight: 600; background: #f2f4f7; }
svg { max-width: 100%; height: auto; border: 1px solid #eee; }
dl.glossary dt { font-weight: 600; margin-top: .4rem; }
dl.glossary dd { margin-left: 1.2rem; color: #444; }
"""
)

# what each quarantine check means (docs/feeds.md "Quarantine reasons")
CHECK_MEANINGS = {
    "malformed_message": "HL7 message that cannot be parsed; one record per message.",
    "missing_patient_id": "No patient identifier in the record.",
    "unknown_unit": "A catalogued analyte in a unit config/units.csv cannot convert.",
    "unparseable_value": "A value or date cell that no rule reads.",
    "implausible_value": "Canonical value outside config/plausible_ranges.csv (or BMD/T/Z range).",
    "future_date": "Collection / scan / start date after the run date.",
    "implausible_date": "Collection / scan / start date before 1950, or (labs, DXA) before the record's birth year.",
    "duplicate_file": "Identical bytes already received under another name.",
    "unreadable_file": "The whole file could not be staged (parser or validation error).",
    "file_too_large": "A non-streaming file above the size limit; split the export.",
    "unsupported_file": "A file no parser of its feed takes (compressed, wrong extension, no source mapping).",
    "no_records": "A file in which the parser found no record (empty, header only, other format).",
    "schema_violation": "A staged column broke its Pandera contract.",
}


@dataclass
class QualityReportData:
    run_id: str | None
    generated_at: str
    runs: list[dict] = field(default_factory=list)  # every run, oldest first, with totals
    feed_stats: list[dict] = field(default_factory=list)  # run × feed
    files: list[dict] = field(default_factory=list)  # files the selected run staged
    reasons: list[dict] = field(default_factory=list)  # feed × check of the selected run
    open_by_run: list[dict] = field(default_factory=list)  # run × check still held, every run
    released_here: list[dict] = field(default_factory=list)  # feed × check the run released
    examples: list[dict] = field(default_factory=list)
    gx: list[dict] = field(default_factory=list)  # expectations of the selected run
    gx_runs: list[dict] = field(default_factory=list)  # run → n_expectations, n_failed
    gx_links: dict[str, str] = field(default_factory=dict)  # table → relative Data Docs page
    gx_index: str | None = None  # relative link to the Data Docs index
    known: frozenset[str] = frozenset()  # patients' name and identifier words, masked in texts


def _cell(value, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    text = "" if value is None else str(value)
    return f"<td{attr}>{escape(text)}</td>"


def _table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], *, text_cols=(), table_id: str = ""
) -> str:
    """Rows of ready HTML cells (``_cell`` output) under escaped headers."""
    head = "".join(
        f'<th class="text">{escape(c)}</th>' if i in text_cols else f"<th>{escape(c)}</th>"
        for i, c in enumerate(columns)
    )
    body = "".join("<tr>" + "".join(r) + "</tr>" for r in rows)
    ident = f' id="{escape(table_id)}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(part: int | None, whole: int | None) -> str:
    if not whole:
        return ""
    return f"{100.0 * (part or 0) / whole:.1f} %"


def _balance(received, accepted, quarantined) -> str:
    ok = (received or 0) == (accepted or 0) + (quarantined or 0)
    return '<td class="ok">✓</td>' if ok else '<td class="bad">✗ mismatch</td>'


def _selected_run(data: QualityReportData) -> dict | None:
    return next((r for r in data.runs if r["run_id"] == data.run_id), None)


def _cards(data: QualityReportData) -> str:
    run = _selected_run(data) or {}
    gx_failed = sum(1 for g in data.gx if not g["success"])
    open_now = sum(r["n_open"] for r in data.reasons)
    open_all = sum(r["n_open"] for r in data.open_by_run)
    cards = [
        ("files", run.get("n_files", 0), ""),
        ("records received", run.get("n_received", 0), ""),
        ("accepted", run.get("n_accepted", 0), "ok"),
        ("quarantined", run.get("n_quarantined", 0), "bad" if run.get("n_quarantined") else "ok"),
        ("of these still held", open_now, "bad" if open_now else "ok"),
        ("held from all runs", open_all, "bad" if open_all else "ok"),
        (
            "GX expectations failed",
            f"{gx_failed} / {len(data.gx)}" if data.gx else "not run",
            "" if not data.gx else "bad" if gx_failed else "ok",
        ),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="n {cls}">{escape(str(n))}</div>'
            f'<div class="l">{escape(label)}</div></div>'
            for label, n, cls in cards
        )
        + "</div>"
    )


def _feeds_section(data: QualityReportData) -> str:
    stats = [s for s in data.feed_stats if s["run_id"] == data.run_id]
    rows = []
    tot = {"n_files": 0, "n_received": 0, "n_accepted": 0, "n_quarantined": 0}
    for s in stats:
        for k in tot:
            tot[k] += s[k] or 0
        rows.append(
            [_cell(s["feed"])]
            + [_cell(s[k]) for k in tot]
            + [_cell(_pct(s["n_quarantined"], s["n_received"]))]
            + [_balance(s["n_received"], s["n_accepted"], s["n_quarantined"])]
        )
    if not rows:
        return "<p>No file was staged in this run.</p>"
    total_row = (
        '<tr class="total">'
        + _cell("all feeds")
        + "".join(_cell(tot[k]) for k in tot)
        + _cell(_pct(tot["n_quarantined"], tot["n_received"]))
        + _balance(tot["n_received"], tot["n_accepted"], tot["n_quarantined"])
        + "</tr>"
    )
    table = _table(
        ["feed", "files", "received", "accepted", "quarantined", "% quarantined", "balance"],
        rows,
        table_id="feeds",
    )
    return table.replace("</tbody>", total_row + "</tbody>")


def _file_row(f: dict, known: frozenset[str]) -> list[str]:
    return [
        _cell(f["feed"]),
        _cell(mask_identifiers(f["source"], known)),
        _cell(f["file_sha256"][:12], "mono"),
        _cell(mask_identifiers(f["name"], known), "text mono"),
        _cell(f["bytes"]),
        _cell(f["status"]),
        _cell(f["n_received"]),
        _cell(f["n_accepted"]),
        _cell(f["n_quarantined"], "bad" if f["n_quarantined"] else ""),
        _balance(f["n_received"], f["n_accepted"], f["n_quarantined"]),
    ]


FILE_COLUMNS = [
    "feed",
    "source",
    "file id",
    "file",
    "bytes",
    "status",
    "received",
    "accepted",
    "quarantined",
    "balance",
]


def _needs_attention(f: dict) -> bool:
    balanced = (f["n_received"] or 0) == (f["n_accepted"] or 0) + (f["n_quarantined"] or 0)
    return bool(f["n_quarantined"]) or f["status"] != "parsed" or not balanced


def _files_section(data: QualityReportData) -> str:
    if not data.files:
        return "<p>No file was staged in this run.</p>"
    attention = [f for f in data.files if _needs_attention(f)]
    n_dup = sum(1 for f in data.files if f["status"] == "duplicate")
    staged = f"{len(data.files) - n_dup} files staged"
    if n_dup:
        staged += f" and {n_dup} deliveries of bytes already received (status duplicate)"
    intro = (
        f"<p>{staged}; {len(attention)} with records put aside, not "
        "fully parsed or unbalanced. The file id is the start of the file's SHA-256 "
        "(<code>raw.files.file_sha256</code>; a duplicate shows the original's); names are "
        "masked like excerpts.</p>"
    )
    first = (
        _table(
            FILE_COLUMNS,
            [_file_row(f, data.known) for f in attention],
            text_cols=(3,),
            table_id="files",
        )
        if attention
        else '<p class="ok">Every file was accepted whole.</p>'
    )
    every = (
        f"<details><summary>All {len(data.files)} files of this run</summary>"
        + _table(
            FILE_COLUMNS,
            [_file_row(f, data.known) for f in data.files],
            text_cols=(3,),
            table_id="all-files",
        )
        + "</details>"
    )
    return intro + first + every


def _open_section(data: QualityReportData) -> str:
    """What is still held, whichever run put it aside: the queue a reviewer works through."""
    if not data.open_by_run:
        return "<p>Nothing is held in quarantine.</p>"
    rows = [
        [
            _cell(r["run_id"], "mono"),
            _cell(r["check_name"], "mono"),
            _cell(CHECK_MEANINGS.get(r["check_name"], ""), "text"),
            _cell(r["n_open"], "bad"),
        ]
        for r in data.open_by_run
    ]
    total = sum(r["n_open"] for r in data.open_by_run)
    intro = (
        f"<p>{total} record{'s' if total != 1 else ''} put aside by this or earlier runs "
        "and not released (<code>labwh quarantine list</code>; the run's own are above).</p>"
    )
    return intro + _table(
        ["run", "check", "meaning", "still held"], rows, text_cols=(2,), table_id="open"
    )


def _released_here(data: QualityReportData) -> str:
    """What the run released (a release or reprocess after a fix), else nothing."""
    if not data.released_here:
        return ""
    total = sum(r["n_released"] for r in data.released_here)
    rows = [
        [
            _cell(r["feed"]),
            _cell(r["check_name"], "mono"),
            _cell(r["n_released"]),
            _cell(r["n_files"]),
        ]
        for r in data.released_here
    ]
    return (
        f"<p>Released by this run: {total} record{'s' if total != 1 else ''} put aside "
        "earlier now pass and are in the warehouse.</p>"
        + _table(["feed", "check", "released", "files"], rows, table_id="released")
    )


def _reasons_section(data: QualityReportData) -> str:
    if not data.reasons:
        return "<p>Nothing was put aside in this run.</p>" + _released_here(data)
    rows = [
        [
            _cell(r["feed"]),
            _cell(r["check_name"], "mono"),
            _cell(CHECK_MEANINGS.get(r["check_name"], ""), "text"),
            _cell(r["n_records"]),
            _cell(r["n_open"], "bad" if r["n_open"] else ""),
            _cell(r["n_released"]),
            _cell(r["n_files"]),
        ]
        for r in data.reasons
    ]
    reasons = _table(
        ["feed", "check", "meaning", "records", "still held", "released", "files"],
        rows,
        text_cols=(2,),
        table_id="reasons",
    )
    ex_rows = [
        [
            _cell(e["feed"]),
            _cell(e["check_name"], "mono"),
            _cell(e["file_sha256"][:12], "mono"),
            _cell(mask_identifiers(e["file_name"], data.known), "text mono path"),
            _cell(mask_identifiers(e["position"], data.known), "text mono path"),
            _cell(mask_identifiers(e["reason"], data.known), "text"),
            _cell(mask_identifiers(e["excerpt"], data.known), "text mono"),
            _cell("released" if e["is_released"] else "held"),
        ]
        for e in data.examples
    ]
    examples = _table(
        ["feed", "check", "file id", "file", "position", "reason", "excerpt", "state"],
        ex_rows,
        text_cols=(3, 4, 5, 6),
        table_id="examples",
    )
    return (
        reasons
        + _released_here(data)
        + '<h3>Examples</h3><p class="note">A few records per feed and check. Excerpts are '
        "de-identified at the source and masked again here (▒). Release held records with "
        "<code>labwh quarantine release</code> after fixing the mapping (docs/quality.md).</p>"
        + examples
    )


def _condition(text: str | None) -> str:
    return (text or "").replace("==", " = ").replace(" and ", ", ")


def _gx_section(data: QualityReportData) -> str:
    if not data.gx:
        return "<p>Great Expectations did not run for this run.</p>"
    by_table: dict[str, list[dict]] = {}
    for g in data.gx:
        by_table.setdefault(g["table_name"], []).append(g)
    rows = []
    for table, items in by_table.items():
        failed = sum(1 for g in items if not g["success"])
        link = data.gx_links.get(table)
        name = f'<td><a href="{escape(link)}">{escape(table)}</a></td>' if link else _cell(table)
        rows.append(
            [
                name,
                _cell(items[0]["element_count"]),
                _cell(len(items)),
                _cell(failed, "bad" if failed else "ok"),
                '<td class="ok">passed</td>' if not failed else '<td class="bad">failed</td>',
            ]
        )
    summary = _table(
        ["table (Data Docs)", "rows", "expectations", "failed", "outcome"], rows, table_id="gx"
    )
    failed_rows = [
        [
            _cell(g["table_name"]),
            _cell(g["expectation_type"], "mono"),
            _cell(g["column_name"], "mono"),
            _cell(_condition(g["row_condition"]), "text mono"),
            _cell(g["arguments_json"], "text mono"),
            _cell(g["unexpected_count"]),
            _cell("" if g["unexpected_percent"] is None else f"{g['unexpected_percent']:.2f} %"),
        ]
        for g in data.gx
        if not g["success"]
    ]
    index = (
        f'<p>Full results: <a href="{escape(data.gx_index)}">Great Expectations Data Docs</a> '
        "(counts only: no failing values are kept).</p>"
        if data.gx_index
        else ""
    )
    detail = (
        "<h3>Failed expectations</h3>"
        + _table(
            ["table", "expectation", "column", "condition", "arguments", "unexpected", "%"],
            failed_rows,
            text_cols=(3, 4),
            table_id="gx-failed",
        )
        if failed_rows
        else '<p class="ok">Every expectation passed.</p>'
    )
    return index + summary + detail


def _trends_section(data: QualityReportData) -> str:
    if not data.runs:
        return "<p>No run recorded yet.</p>"
    labels = [r["run_id"] for r in data.runs]
    bars = quality_svg.stacked_bars(
        "Records accepted and quarantined per run",
        labels,
        [r["n_accepted"] or 0 for r in data.runs],
        [r["n_quarantined"] or 0 for r in data.runs],
    )
    feeds = sorted({s["feed"] for s in data.feed_stats})
    by_key = {(s["run_id"], s["feed"]): s for s in data.feed_stats}
    series = {}
    for feed in feeds:
        ys = []
        for run in labels:
            s = by_key.get((run, feed))
            ys.append(
                100.0 * s["n_quarantined"] / s["n_received"] if s and s["n_received"] else None
            )
        series[feed] = ys
    rates = quality_svg.lines("Quarantined share per feed and run", "% quarantined", labels, series)
    gx_by_run = {g["run_id"]: g for g in data.gx_runs}
    rows = []
    for r in reversed(data.runs):
        g = gx_by_run.get(r["run_id"])
        rows.append(
            [
                _cell(r["run_id"], "mono"),
                _cell(r["started_at"]),
                _cell(r["status"]),
                _cell(r["n_files"]),
                _cell(r["n_received"]),
                _cell(r["n_accepted"]),
                _cell(r["n_quarantined"]),
                _cell(_pct(r["n_quarantined"], r["n_received"])),
                _cell(f"{g['n_failed']} / {g['n_expectations']}" if g else "—"),
            ]
        )
    table = _table(
        [
            "run",
            "started",
            "status",
            "files",
            "received",
            "accepted",
            "quarantined",
            "%",
            "GX failed",
        ],
        rows,
        table_id="runs",
    )
    return f"<figure>{bars}</figure><figure>{rates}</figure>" + table


def _glossary() -> str:
    items = "".join(
        f"<dt><code>{escape(k)}</code></dt><dd>{escape(v)}</dd>" for k, v in CHECK_MEANINGS.items()
    )
    return (
        "<p>Every received record is either accepted into the warehouse or put aside in "
        "<code>quality.quarantine</code> with the check that failed; for every file "
        "received = accepted + quarantined (the balance column). Great Expectations then "
        "checks the warehouse tables as a whole: completeness of key columns, uniqueness of "
        "keys, that every result's patient exists in <code>core.dim_patient</code>, plausible "
        "ranges per analyte and unit, and that no date lies in the future or before the "
        "patient's birth year.</p>"
        f'<dl class="glossary">{items}</dl>'
    )


def render_quality_report(data: QualityReportData) -> str:
    run = _selected_run(data) or {}
    title = "Data quality report"
    meta = [
        ("run", data.run_id or "none"),
        ("started", str(run.get("started_at") or "")),
        ("status", str(run.get("status") or "")),
        ("generated", data.generated_at),
    ]
    meta_html = " · ".join(f"{escape(k)}: {escape(v)}" for k, v in meta)
    sections = [
        ("received", "What arrived and what was accepted", _feeds_section(data)),
        ("files", "Files of this run", _files_section(data)),
        ("quarantine", "What was put aside, and why", _reasons_section(data)),
        ("held", "Still in quarantine, from every run", _open_section(data)),
        ("expectations", "Warehouse checks (Great Expectations)", _gx_section(data)),
        ("trends", "Trends across runs", _trends_section(data)),
        ("reading", "How to read this report", _glossary()),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)} — {escape(data.run_id or '')}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<h1>{escape(title)}</h1><p class="meta">{meta_html}</p>',
        _cards(data),
    ]
    for key, heading, body in sections:
        parts.append(f'<section id="{key}"><h2>{escape(heading)}</h2>{body}</section>')
    parts.append("</body></html>")
    return "\n".join(parts)
