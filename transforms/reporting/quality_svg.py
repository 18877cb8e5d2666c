"""Inline SVG charts for the quality report (no scripts, no external resources)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 16, 56
ACCEPTED_COLOR = "#4c9a6a"
QUARANTINED_COLOR = "#d0583f"
PALETTE = ("#3b6fb6", "#d0583f", "#4c9a6a", "#9b59b6", "#c9a227", "#555555")


def _nice_max(v: float) -> float:
    """A round axis maximum ≥ v (1, 2, 2.5, 5 × 10^k)."""
    if v <= 0:
        return 1.0
    k = 1.0
    while k * 10 <= v:
        k *= 10
    while k > v:
        k /= 10
    for m in (1, 2, 2.5, 5, 10):
        if m * k >= v:
            return m * k
    return 10 * k


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e6 else f"{v:.2e}"


def _frame(title: str, y_max: float, y_label: str, labels: Sequence[str]) -> list[str]:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="system-ui, Arial, sans-serif" '
        f'font-size="11"><title>{escape(title)}</title>',
        f'<text x="{LEFT}" y="11" font-size="12" fill="#333">{escape(y_label)}</text>',
    ]
    for i in range(5):
        v = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" stroke="#e3e3e3"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">{_fmt(v)}</text>'
        )
    step = plot_w / max(len(labels), 1)
    every = max(1, len(labels) // 12)  # at most ~12 x labels
    for i, label in enumerate(labels):
        if i % every:
            continue
        x = LEFT + step * (i + 0.5)
        short = label if len(label) <= 14 else label[:6] + "…" + label[-6:]
        parts.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="end" fill="#555" '
            f'transform="rotate(-30 {x:.1f} {TOP + plot_h + 16})">{escape(short)}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" '
        'stroke="#888"/>'
    )
    return parts


def _legend(items: Sequence[tuple[str, str]]) -> list[str]:
    x = WIDTH - RIGHT + 14
    out = []
    for i, (name, color) in enumerate(items):
        y = TOP + 14 + 18 * i
        out.append(
            f'<rect x="{x}" y="{y - 9}" width="12" height="10" fill="{color}"/>'
            f'<text x="{x + 17}" y="{y}" fill="#333">{escape(name)}</text>'
        )
    return out


def stacked_bars(
    title: str, labels: Sequence[str], accepted: Sequence[int], quarantined: Sequence[int]
) -> str:
    """Records accepted (bottom) and quarantined (top) per run."""
    y_max = _nice_max(max((a + q for a, q in zip(accepted, quarantined, strict=True)), default=0))
    parts = _frame(title, y_max, "records per run", labels)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels), 1)
    bar = max(2.0, step * 0.6)
    for i, (a, q) in enumerate(zip(accepted, quarantined, strict=True)):
        x = LEFT + step * (i + 0.5) - bar / 2
        h_a, h_q = plot_h * a / y_max, plot_h * q / y_max
        base = TOP + plot_h
        parts.append(
            f'<rect x="{x:.1f}" y="{base - h_a:.1f}" width="{bar:.1f}" height="{h_a:.1f}" '
            f'fill="{ACCEPTED_COLOR}"><title>{escape(labels[i])}: {a} accepted</title></rect>'
            f'<rect x="{x:.1f}" y="{base - h_a - h_q:.1f}" width="{bar:.1f}" height="{h_q:.1f}" '
            f'fill="{QUARANTINED_COLOR}"><title>{escape(labels[i])}: {q} quarantined</title></rect>'
        )
    parts += _legend([("accepted", ACCEPTED_COLOR), ("quarantined", QUARANTINED_COLOR)])
    parts.append("</svg>")
    return "".join(parts)


def lines(
    title: str, y_label: str, labels: Sequence[str], series: dict[str, Sequence[float | None]]
) -> str:
    """One polyline per series over the runs; None leaves a hole."""
    values = [v for s in series.values() for v in s if v is not None]
    y_max = _nice_max(max(values, default=0))
    parts = _frame(title, y_max, y_label, labels)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels), 1)
    legend = []
    for k, (name, ys) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        legend.append((name, color))
        pts = [
            (LEFT + step * (i + 0.5), TOP + plot_h - plot_h * y / y_max)
            for i, y in enumerate(ys)
            if y is not None
        ]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>'
            )
        for (x, y), v in zip(pts, [y for y in ys if y is not None], strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                f"<title>{escape(name)}: {v:.1f}</title></circle>"
            )
    parts += _legend(legend)
    parts.append("</svg>")
    return "".join(parts)
