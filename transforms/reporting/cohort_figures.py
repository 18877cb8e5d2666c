"""Figures of the cohort report as PNG bytes (matplotlib, Agg backend; no display needed).

Groups whose size is below the small-cell limit are never drawn (their curves would show
individual patients): the caller passes only the groups that may be shown, and within a
panel a group is drawn only when at least ``min_patients`` of its patients have data there.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from transforms.reporting.cohort_select import KEY  # noqa: E402

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")
DAYS_PER_YEAR = 365.25


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def _panels(n: int, title: str):
    fig, axes = plt.subplots(1, max(n, 1), figsize=(4.2 * max(n, 1), 3.4), squeeze=False)
    fig.suptitle(title, fontsize=11)
    return fig, axes[0]


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


HIST_EDGES = np.linspace(0.0, 1.0, 6)  # fraction_below in bins of 0.2 (last bin includes 1)


def binned_counts(values: np.ndarray, edges: np.ndarray, min_cell: int):
    """Histogram counts and which bins must be hidden (1 … min_cell − 1 patients)."""
    counts, _ = np.histogram(values[np.isfinite(values)], bins=edges)
    return counts, (counts > 0) & (counts < min_cell)


def fraction_histograms(
    fractions: Mapping[str, Mapping[float, np.ndarray]],
    thresholds: Sequence[float],
    title: str,
    min_patients: int,
) -> bytes:
    """One panel per threshold; per group bars of patients per fraction_below bin.

    A bin holding 1 … min_patients − 1 patients of a group is drawn hatched at height
    ``min_patients`` ("fewer than", its count is not shown).
    """
    fig, axes = _panels(len(thresholds), title)
    edges = HIST_EDGES
    width = (edges[1] - edges[0]) / (len(fractions) + 1)
    for ax, thr in zip(axes, thresholds, strict=False):
        drawn = False
        for k, (color, (label, by_thr)) in enumerate(zip(COLORS, fractions.items(), strict=False)):
            vals = np.asarray(by_thr.get(thr, []), dtype=float)
            if np.isfinite(vals).sum() < min_patients:
                continue
            counts, hidden = binned_counts(vals, edges, min_patients)
            x = edges[:-1] + width * (k + 0.5)
            shown = np.where(hidden, 0, counts)
            ax.bar(x, shown, width=width, color=color, label=label, align="edge")
            ax.bar(
                x[hidden],
                [min_patients] * int(hidden.sum()),
                width=width,
                color="white",
                edgecolor=color,
                hatch="///",
                align="edge",
            )
            drawn = True
        ax.set_title(f"E2 < {thr:g} pg/mL", fontsize=10)
        ax.set_xlabel("fraction of interpolated days below")
        ax.set_ylabel("patients")
        ax.set_xticks(edges)
        if drawn:
            ax.legend(fontsize=8, title=f"hatched: < {min_patients}", title_fontsize=7)
        else:
            _empty(ax, f"no group with ≥ {min_patients} patients here")
    return _png(fig)


def _years(df: pd.DataFrame, date_col: str) -> pd.Series:
    d = pd.to_datetime(df[date_col], cache=False)  # the cache scans every value first
    first = d.groupby(df[KEY]).transform("min")
    return (d - first).dt.days / DAYS_PER_YEAR


def _spaghetti(
    ax,
    groups: Mapping[str, pd.DataFrame],
    date_col: str,
    value_col: str,
    step: float,
    min_patients: int,
):
    """Thin line per patient, bold group mean per ``step``-year bin of time since first value
    (a bin with fewer than ``min_patients`` patients has no mean point)."""
    drawn = False
    for color, (label, df) in zip(COLORS, groups.items(), strict=False):
        df = df.dropna(subset=[value_col])
        if df[KEY].nunique() < min_patients:
            continue
        df = df.assign(_t=_years(df, date_col)).sort_values([KEY, "_t"])
        keys = df[KEY].to_numpy()
        starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        points = np.column_stack([df["_t"].to_numpy(float), df[value_col].to_numpy(float)])
        lines = np.split(points, starts)  # one polyline per patient (rows sorted by patient)
        patients = LineCollection(lines, colors=color, alpha=0.18, linewidths=0.7)
        patients.set_in_layout(False)  # inside the axes: no need to measure thousands of paths
        ax.add_collection(patients)
        ax.autoscale_view()
        binned = df.assign(_bin=(df["_t"] / step).round() * step).groupby("_bin")
        means = binned[value_col].mean()[binned[KEY].nunique() >= min_patients]
        ax.plot(means.index, means.to_numpy(), color=color, linewidth=2.4, marker="o", label=label)
        drawn = True
    if drawn:
        ax.legend(fontsize=8)
    else:
        _empty(ax, f"no group with ≥ {min_patients} patients here")


def bmd_trajectories(
    groups: Mapping[str, pd.DataFrame],
    sites: Sequence[tuple[str, str]],
    title: str,
    min_patients: int,
) -> bytes:
    """One panel per site: BMD against years since the patient's first scan."""
    fig, axes = _panels(len(sites), title)
    for ax, (site, label) in zip(axes, sites, strict=False):
        per_group = {g: df[df["site"] == site] for g, df in groups.items()}
        _spaghetti(ax, per_group, "scan_date", "bmd_g_cm2", 1.0, min_patients)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("years since first scan")
        ax.set_ylabel("BMD, g/cm²")
    return _png(fig)


def e2_over_time(groups: Mapping[str, pd.DataFrame], title: str, min_patients: int) -> bytes:
    """E2 (pg/mL) against years since the patient's first E2 result; mean per half year."""
    fig, axes = _panels(1, title)
    _spaghetti(axes[0], groups, "result_date", "value", 0.5, min_patients)
    axes[0].set_xlabel("years since first E2")
    axes[0].set_ylabel("E2, pg/mL")
    return _png(fig)


def slope_vs_fraction(
    points: Sequence[tuple[str, pd.DataFrame, tuple[float, float] | None]],
    threshold: float,
    title: str,
) -> bytes:
    """Per site: slope (%/year) against fraction below ``threshold``, with the OLS line."""
    fig, axes = _panels(len(points), title)
    for ax, (label, df, line) in zip(axes, points, strict=False):
        if df is None or df.empty:
            _empty(ax, "too few patients to show")
        else:
            dots = ax.scatter(df["fraction_below"], df["slope_pct_per_year"], s=12, alpha=0.6)
            dots.set_in_layout(False)
            if line is not None:
                a, b = line
                xs = np.array([0.0, 1.0])
                ax.plot(xs, a + b * xs, color="black", linewidth=1.5)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(f"fraction of time E2 < {threshold:g} pg/mL")
        ax.set_ylabel("BMD slope, %/year")
    return _png(fig)
