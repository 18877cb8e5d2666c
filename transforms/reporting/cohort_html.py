"""Self-contained HTML of the cohort report: inline CSS, figures as base64 PNG, no scripts,
no external resources (opens offline, can be mailed as one file)."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from html import escape

from transforms.reporting.cohort_format import Table

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Arial, sans-serif; margin: 2rem auto;
       max-width: 1400px; color: #222; line-height: 1.4; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.3rem; border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { font-size: 1.05rem; margin-top: 1.6rem; }
.meta { color: #555; font-size: .9rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .85rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; white-space: nowrap; }
th:first-child, td:first-child, td.text { text-align: left; }
.scroll { overflow-x: auto; max-width: 100%; }
thead th { background: #f2f4f7; }
tbody tr:nth-child(even) { background: #fafafa; }
.note { color: #555; font-size: .82rem; margin: .2rem 0; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: .82rem; }
"""


@dataclass
class Figure:
    name: str  # file stem of the PNG written beside the HTML
    caption: str
    png: bytes


@dataclass
class Section:
    key: str
    title: str
    intro: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


_NUMERIC = re.compile(r"^[-+0-9.e<±—to ]*$")


def _cell(c: str) -> str:
    """A table cell; text (not numbers, CIs, "<11" or "—") is aligned left."""
    cls = "" if _NUMERIC.match(c) else ' class="text"'
    return f"<td{cls}>{escape(c)}</td>"


def table_html(t: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in t.rows)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in t.notes)
    return (
        f'<h3>{escape(t.title)}</h3><div class="scroll"><table id="{escape(t.key)}">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{notes}"
    )


def figure_html(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    return (
        f'<figure id="fig-{escape(f.name)}"><img alt="{escape(f.caption)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{escape(f.caption)}</figcaption></figure>'
    )


def render(title: str, meta: list[tuple[str, str]], sections: list[Section]) -> str:
    meta_html = " · ".join(f"{escape(k)}: {escape(v)}" for k, v in meta)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f'<h1>{escape(title)}</h1><p class="meta">{meta_html}</p>',
    ]
    for s in sections:
        parts.append(f'<section id="{escape(s.key)}"><h2>{escape(s.title)}</h2>')
        parts += [f"<p>{escape(p)}</p>" for p in s.intro]
        parts += [table_html(t) for t in s.tables]
        parts += [figure_html(f) for f in s.figures]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
