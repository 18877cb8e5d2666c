"""Plain-Python reference implementations of docs/features.md (and of the sBMD formulas).

Written day by day on purpose: the warehouse's SQL is compared with what these return on
the generator's own clean values. Nothing here knows about files or feeds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence

from transforms import sbmd


# --- Cross-manufacturer standardized BMD (DOMAIN.md; coefficients in config/sbmd_coefficients.csv)
def sbmd_mg_cm2(site: str, manufacturer: str, bmd: float) -> float:
    """Standardized BMD in mg/cm² from a measured BMD (spine: pass the L2-L4 value if any)."""
    return sbmd.sbmd_mg_cm2(manufacturer, site, bmd)


def bmd_from_sbmd(site: str, manufacturer: str, sbmd_g_cm2: float) -> float:
    """Inverse of ``sbmd_mg_cm2`` (sBMD given in g/cm²): what that scanner would measure."""
    return sbmd.bmd_from_sbmd(manufacturer, site, 1000.0 * sbmd_g_cm2)


# --- Medication exposure episodes ---------------------------------------------------------
def exposure_episodes(
    supplies: Iterable[tuple[dt.date, dt.date]], persistence_window_days: int
) -> list[tuple[dt.date, dt.date]]:
    """Merge supplies (start, end inclusive) into episodes.

    Sorted by start; a supply starting at most ``persistence_window_days`` days after the end
    of the running episode (gap = start − end − 1 days; overlaps have a negative gap) extends
    it to max(end); otherwise it opens a new episode. No grace period after the last supply.
    """
    episodes: list[list[dt.date]] = []
    for start, end in sorted(supplies):
        if episodes and (start - episodes[-1][1]).days - 1 <= persistence_window_days:
            episodes[-1][1] = max(episodes[-1][1], end)
        else:
            episodes.append([start, end])
    return [(a, b) for a, b in episodes]


# --- E2 time below thresholds (Rosendaal) -------------------------------------------------
CENSORED = ("<", "<=")


def _per_date(results, censored_fraction):
    by_date: dict[dt.date, list[tuple[float, str | None]]] = {}
    for day, value, comparator in results:
        by_date.setdefault(day, []).append((value, comparator or None))
    out = []
    for day in sorted(by_date):
        ivals, limits = [], []
        for value, comp in by_date[day]:
            if comp in CENSORED:
                ivals.append(value * censored_fraction)
                limits.append(value)
            else:
                ivals.append(value)
        censored = len(limits) == len(ivals)
        limit = sum(limits) / len(limits) if censored else None
        out.append((day, sum(ivals) / len(ivals), censored, limit, by_date[day]))
    return out


def _year_segments(o0: int, n: int) -> list[tuple[int, int, int]]:
    """Split covered days k = 0 … n−1 (ordinal o0 + k) by calendar year: (year, k_from, k_to)."""
    segs, k = [], 0
    while k < n:
        y = dt.date.fromordinal(o0 + k).year
        k_end = min(n, dt.date(y + 1, 1, 1).toordinal() - o0)
        segs.append((y, k, k_end))
        k = k_end
    return segs


_COUNTS = ("interpolated_days", "below_days", "gap_days", "indeterminate_days",
           "anastrozole_days", "anastrozole_below_days")  # fmt: skip


def e2_exposure(
    results: Sequence[tuple[dt.date, float, str | None]],
    *,
    thresholds: Sequence[float],
    max_gap_days: int,
    censored_fraction: float,
    episodes: Sequence[tuple[dt.date, dt.date]] = (),
) -> list[dict]:
    """Rows of feat_e2_exposure for one patient (without the key), docs/features.md exactly.

    ``results``: (collection date, value in pg/mL, comparator or None) of the current E2
    results. ``episodes``: anastrozole exposure episodes (inclusive dates).
    """
    dates = _per_date(results, censored_fraction)
    if not dates:
        return []
    ai_days = set()
    for a, b in episodes:
        ai_days.update(range(a.toordinal(), b.toordinal() + 1))
    counts: dict[tuple[float, str], dict[str, int]] = {}

    def bucket(t: float, period: str) -> dict[str, int]:
        c = counts.get((t, period))
        if c is None:
            c = counts[(t, period)] = dict.fromkeys(_COUNTS, 0)
        return c

    for j in range(len(dates) - 1):
        d0, v0, c0, lim0, _ = dates[j]
        d1, v1, c1, lim1, _ = dates[j + 1]
        n = (d1 - d0).days
        o0 = d0.toordinal()
        segs = _year_segments(o0, n)
        ai_in = {
            y: [k for k in range(a, b) if o0 + k in ai_days] if ai_days else [] for y, a, b in segs
        }
        values = None
        for t in thresholds:
            if n > max_gap_days:
                kind = "gap_days"
            elif (c0 and lim0 > t) or (c1 and lim1 > t):
                kind = "indeterminate_days"
            else:
                kind = "interpolated_days"
                if values is None:
                    values = [v0 + (v1 - v0) * k / n for k in range(n)]
            for y, a, b in segs:
                below = ai_below = 0
                if kind == "interpolated_days":
                    below = sum(map(t.__gt__, values[a:b]))  # day by day: v < t
                    ai_below = sum(1 for k in ai_in[y] if values[k] < t)
                for period in ("overall", str(y)):
                    c = bucket(t, period)
                    c[kind] += b - a
                    c["below_days"] += below
                    c["anastrozole_days"] += len(ai_in[y])
                    c["anastrozole_below_days"] += ai_below
    rows = []
    years = sorted({int(p) for (_, p) in counts if p != "overall"} | {d[0].year for d in dates})
    for t in thresholds:
        for period in ["overall"] + [str(y) for y in years]:
            in_window = [d for d in dates if period == "overall" or d[0].year == int(period)]
            c = counts.get((t, period)) or dict.fromkeys(_COUNTS, 0)
            ivals = [d[1] for d in in_window]
            raw = [r for d in in_window for r in d[4]]
            interp = c["interpolated_days"]
            rows.append(
                {
                    "threshold_pg_ml": t,
                    "period": period,
                    "first_date": in_window[0][0] if in_window else None,
                    "last_date": in_window[-1][0] if in_window else None,
                    "n_results": len(raw),
                    "n_dates": len(in_window),
                    "n_censored": sum(1 for _, comp in raw if comp in CENSORED),
                    "mean_e2_pg_ml": sum(ivals) / len(ivals) if ivals else None,
                    "min_e2_pg_ml": min(ivals) if ivals else None,
                    "max_e2_pg_ml": max(ivals) if ivals else None,
                    "followup_days": interp + c["gap_days"] + c["indeterminate_days"],
                    "interpolated_days": interp,
                    "below_days": c["below_days"],
                    "gap_days": c["gap_days"],
                    "indeterminate_days": c["indeterminate_days"],
                    "fraction_below": c["below_days"] / interp if interp else None,
                    "anastrozole_days": c["anastrozole_days"],
                    "anastrozole_below_days": c["anastrozole_below_days"],
                }
            )
    return rows


# --- BMD trend per site -------------------------------------------------------------------
LSC_ROUNDING = 1e-9  # g/cm²: a change beyond the LSC by no more than this is rounding


def bmd_trend(
    scans: Sequence[dict], *, lsc_g_cm2: dict[str, float], min_span_years: float
) -> list[dict]:
    """Rows of feat_bmd_trend for one patient (without the key), docs/features.md exactly.

    ``scans``: dicts with scan_date, site (lumbar_spine | total_hip | femoral_neck), side,
    bmd_g_cm2 (spine: L1-L4), bmd_l2_l4_g_cm2 (spine, None when the export lacks it),
    manufacturer.
    """
    rows = []
    for site in ("lumbar_spine", "total_hip", "femoral_neck"):
        site_scans = [s for s in scans if s["site"] == site]
        if not site_scans:
            continue
        manufacturers = sorted({s["manufacturer"] for s in site_scans})
        uses_sbmd = len(manufacturers) > 1
        approx = False
        per_date: dict[dt.date, list[float]] = {}
        for s in site_scans:
            bmd = s["bmd_g_cm2"]
            if uses_sbmd:
                src = bmd
                if site == "lumbar_spine":
                    if s.get("bmd_l2_l4_g_cm2") is not None:
                        src = s["bmd_l2_l4_g_cm2"]
                    else:
                        approx = True
                bmd = sbmd_mg_cm2(site, s["manufacturer"], src) / 1000.0
            per_date.setdefault(s["scan_date"], []).append(bmd)
        days = sorted(per_date)
        ys = [sum(per_date[d]) / len(per_date[d]) for d in days]
        first = days[0]
        xs = [(d - first).days / 365.25 for d in days]
        n = len(days)
        span = (days[-1] - first).days / 365.25
        lsc = lsc_g_cm2[site]
        row = {
            "site": site,
            "n_scans": n,
            "first_scan_date": first,
            "last_scan_date": days[-1],
            "span_years": span,
            "first_bmd_g_cm2": ys[0],
            "last_bmd_g_cm2": ys[-1],
            "change_g_cm2": ys[-1] - ys[0] if n >= 2 else None,
            "lsc_g_cm2": lsc,
            # beyond the LSC by more than the subtraction's rounding (docs/features.md)
            "exceeds_lsc": abs(ys[-1] - ys[0]) - lsc > LSC_ROUNDING if n >= 2 else None,
            "slope_g_cm2_per_year": None,
            "slope_se_g_cm2_per_year": None,
            "slope_pct_per_year": None,
            "uses_sbmd": uses_sbmd,
            "sbmd_is_approximate": approx,
            "n_manufacturers": len(manufacturers),
            "manufacturers": ",".join(manufacturers),
            "reason": None,
        }
        if n < 2:
            row["reason"] = "fewer_than_2_scans"
        elif span < min_span_years:
            row["reason"] = "span_below_minimum"
        else:
            xbar = sum(xs) / n
            ybar = sum(ys) / n
            sxx = sum((x - xbar) ** 2 for x in xs)
            sxy = sum((x - xbar) * (y - ybar) for x, y in zip(xs, ys, strict=True))
            slope = sxy / sxx
            intercept = ybar - slope * xbar
            row["slope_g_cm2_per_year"] = slope
            row["slope_pct_per_year"] = 100.0 * slope / ys[0]
            if n > 2:
                sse = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
                row["slope_se_g_cm2_per_year"] = math.sqrt(sse / (n - 2) / sxx)
        rows.append(row)
    return rows
