"""Ground truth under DIR/truth/ (docs/truth.md): what the pipeline must end up with."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from pathlib import Path

from .common import NAMESPACE, FeedOutput
from .labs import E2_LOINCS, current_results
from .reference import bmd_trend, e2_exposure, exposure_episodes, sbmd_mg_cm2

E2_COLUMNS = ["threshold_pg_ml", "period", "first_date", "last_date", "n_results", "n_dates",
              "n_censored", "mean_e2_pg_ml", "min_e2_pg_ml", "max_e2_pg_ml", "followup_days",
              "interpolated_days", "below_days", "gap_days", "indeterminate_days",
              "fraction_below", "anastrozole_days", "anastrozole_below_days"]  # fmt: skip
BMD_COLUMNS = ["site", "n_scans", "first_scan_date", "last_scan_date", "span_years",
               "first_bmd_g_cm2", "last_bmd_g_cm2", "change_g_cm2", "lsc_g_cm2", "exceeds_lsc",
               "slope_g_cm2_per_year", "slope_se_g_cm2_per_year", "slope_pct_per_year",
               "uses_sbmd", "sbmd_is_approximate", "n_manufacturers", "manufacturers",
               "reason"]  # fmt: skip
FEEDS = ("hl7", "lab_csv", "dexa", "meds")


def _float(v: float) -> str:
    return repr(v)


def _date(v: dt.date) -> str:
    return v.isoformat()


def _datetime(v: dt.datetime) -> str:
    return v.isoformat(sep=" ")


_CELL = {
    str: str,
    int: str,
    float: _float,
    bool: lambda v: "true" if v else "false",
    type(None): lambda v: "",
    dt.date: _date,
    dt.datetime: _datetime,
}


def cell(v) -> str:
    """CSV text of a truth value: '' for None, true/false, repr() for floats, ISO dates."""
    return _CELL[type(v)](v)


def write_csv(path: Path, header: list[str], rows) -> int:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    n = 0
    for r in rows:
        w.writerow([cell(x) for x in r])
        n += 1
    path.write_text(buf.getvalue(), encoding="utf-8")
    return n


def e2_truth(lab_obs) -> list:
    """Current E2 results (corrections applied, retractions removed, N/A values dropped)."""
    return [o for o in current_results(lab_obs)
            if o.loinc in E2_LOINCS and o.status in ("F", "C") and o.value is not None]  # fmt: skip


def write_truth(truth_dir: Path, *, patients, outputs: list[FeedOutput], scans, supplies, opts,
                manifest: dict) -> dict:  # fmt: skip
    truth_dir.mkdir(parents=True, exist_ok=True)
    lab_obs = [o for out in outputs for o in out.obs]
    current = current_results(lab_obs)
    e2 = e2_truth(lab_obs)
    summary: dict = {}

    def regimens(p) -> str:
        return ";".join(f"{s.start}..{s.end}:{s.regimen}" for s in p.segments)

    def scanners(p) -> str:
        hist, last = [], None
        for v in p.visits:
            key = f"{v.scanner.manufacturer} {v.scanner.model} {v.scanner.serial}"
            if key != last:
                hist.append(f"{v.date}:{key}")
                last = key
        return ";".join(hist)

    write_csv(truth_dir / "patients.csv",
              ["mrn", "namespace", "birth_year", "sex", "followup_start", "followup_end", "arm",
               "regimens", "e2_base_pg_ml", "testosterone_base_ng_dl", "primary_lab",
               "northlab_e2_assay", "n_draws", "n_dxa_visits", "scanner_history",
               "changes_manufacturer", "low_e2_years", "spine_rate_pct_per_year_e2_adequate",
               "spine_rate_pct_per_year_e2_low"],
              ([p.mrn, NAMESPACE, p.birth_date.year, "M", p.start, p.end, p.arm, regimens(p),
                round(p.e2_base, 3), round(p.t_base, 1), p.primary_lab, p.northlab_assay,
                len(p.draws), len(p.visits), scanners(p),
                len({v.scanner.manufacturer for v in p.visits}) > 1, round(p.low_e2_years, 4),
                round(p.spine_rate_pct[0], 4), round(p.spine_rate_pct[1], 4)]
               for p in patients))  # fmt: skip
    obs_cols = ["mrn", "collected_date", "collected_at", "value_pg_ml", "comparator", "loinc_code",
                "feed", "source", "order_id", "code", "result_status", "sent_value", "sent_unit"]  # fmt: skip
    summary["e2_results"] = write_csv(
        truth_dir / "e2_results.csv", obs_cols,
        ([o.mrn, o.collected_at.date(), o.collected_at, o.value, o.comparator, o.loinc, o.feed,
          o.source, o.order_id, o.code, o.status, o.sent_value, o.sent_unit] for o in e2))  # fmt: skip
    summary["lab_results"] = write_csv(
        truth_dir / "lab_results.csv",
        ["mrn", "collected_at", "loinc_code", "analyte", "is_mapped", "value", "unit", "comparator",
         "feed", "source", "order_id", "code", "result_status", "sent_value", "sent_unit"],
        ([o.mrn, o.collected_at, o.loinc, o.analyte, o.loinc is not None, o.value, o.unit,
          o.comparator, o.feed, o.source, o.order_id, o.code, o.status, o.sent_value,
          o.sent_unit] for o in current))  # fmt: skip
    # counts
    feed_rows, file_rows, q = [], [], {}
    for out in outputs:
        rec = sum(c.received for c in out.counts)
        qua = sum(c.n_quarantined for c in out.counts)
        feed_rows.append([out.feed, len(out.counts), rec, rec - qua, qua])
        for c in sorted(out.counts, key=lambda c: c.name):
            file_rows.append([out.feed, c.source, c.name, c.received, c.received - c.n_quarantined,
                              c.n_quarantined])  # fmt: skip
            for k, n in c.quarantined.items():
                q[(out.feed, k)] = q.get((out.feed, k), 0) + n
    write_csv(truth_dir / "feed_counts.csv",
              ["feed", "files", "records_received", "records_accepted", "records_quarantined"],
              feed_rows)  # fmt: skip
    write_csv(truth_dir / "file_counts.csv",
              ["feed", "source", "file", "records_received", "records_accepted",
               "records_quarantined"], file_rows)  # fmt: skip
    write_csv(truth_dir / "quarantine_expected.csv", ["feed", "check_name", "count"],
              ([f, k, n] for (f, k), n in sorted(q.items())))  # fmt: skip
    bad = sorted(
        (b for out in outputs for b in out.bad), key=lambda b: (b.feed, b.file, b.position)
    )
    write_csv(truth_dir / "bad_records.csv",
              ["feed", "source", "file", "position", "check_name", "mrn", "note", "loinc_code",
               "collected_date", "value_if_released"],
              ([b.feed, b.source, b.file, b.position, b.check_name, b.mrn, b.note, b.loinc_code,
                b.collected_date, b.value_if_released] for b in bad))  # fmt: skip
    # medication exposure
    episodes = {}
    ep_rows = []
    for p in patients:
        for ingredient in ("anastrozole", "testosterone"):
            eps = exposure_episodes(supplies[p.mrn][ingredient], opts.persistence_window_days)
            episodes[(p.mrn, ingredient)] = eps
            for a, b in eps:
                n_sup = sum(1 for s, _ in supplies[p.mrn][ingredient] if a <= s <= b)
                ep_rows.append([p.mrn, ingredient, a, b, (b - a).days + 1, n_sup])
    write_csv(
        truth_dir / "medication_exposure.csv",
        ["mrn", "ingredient", "episode_start", "episode_end", "days", "n_dispenses"],
        ep_rows,
    )
    # features
    by_mrn: dict[str, list] = {}
    for o in e2:
        by_mrn.setdefault(o.mrn, []).append((o.collected_at.date(), o.value, o.comparator))
    feat_rows = []
    for mrn in sorted(by_mrn):
        for r in e2_exposure(by_mrn[mrn], thresholds=opts.thresholds_pg_ml,
                             max_gap_days=opts.max_gap_days,
                             censored_fraction=opts.censored_fraction,
                             episodes=episodes.get((mrn, "anastrozole"), ())):  # fmt: skip
            feat_rows.append([mrn] + [r[c] for c in E2_COLUMNS])
    summary["feat_e2_exposure"] = write_csv(
        truth_dir / "feat_e2_exposure.csv", ["mrn"] + E2_COLUMNS, feat_rows
    )
    scans_by: dict[str, list] = {}
    for s in scans:
        scans_by.setdefault(s["mrn"], []).append(s)
    bmd_rows = []
    for mrn in sorted(scans_by):
        for r in bmd_trend(
            scans_by[mrn], lsc_g_cm2=opts.lsc_g_cm2, min_span_years=opts.min_span_years
        ):
            bmd_rows.append([mrn] + [r[c] for c in BMD_COLUMNS])
    summary["feat_bmd_trend"] = write_csv(
        truth_dir / "feat_bmd_trend.csv", ["mrn"] + BMD_COLUMNS, bmd_rows
    )
    write_csv(truth_dir / "dexa_scans.csv",
              ["mrn", "scan_date", "site", "side", "bmd_g_cm2", "bmd_l2_l4_g_cm2", "sbmd_mg_cm2",
               "sbmd_is_approximate", "t_score", "z_score", "manufacturer", "model", "serial"],
              ([s["mrn"], s["scan_date"], s["site"], s["side"], s["bmd_g_cm2"], s["bmd_l2_l4_g_cm2"],
                sbmd_mg_cm2(s["site"], s["manufacturer"],
                            s["bmd_l2_l4_g_cm2"] if s["bmd_l2_l4_g_cm2"] is not None else s["bmd_g_cm2"]),
                s["site"] == "lumbar_spine" and s["bmd_l2_l4_g_cm2"] is None,
                s["t_score"], s["z_score"], s["manufacturer"], s["model"], s["serial"]]
               for s in scans))  # fmt: skip
    summary["feed_counts"] = {r[0]: dict(zip(("files", "received", "accepted", "quarantined"), r[1:], strict=True))
                              for r in feed_rows}  # fmt: skip
    summary["quarantine_expected"] = {f"{f}/{k}": n for (f, k), n in sorted(q.items())}
    manifest = dict(manifest, counts=summary)
    manifest["files"] = {name: hashlib.sha256(data).hexdigest()
                         for out in outputs for name, data in sorted(out.files.items())}  # fmt: skip
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                             encoding="utf-8")  # fmt: skip
    return summary
