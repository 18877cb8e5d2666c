"""DXA exports: Hologic APEX-style CSV and GE Lunar enCORE-style UTF-16 text (docs/feeds.md)."""

from __future__ import annotations

import copy
import datetime as dt
from functools import lru_cache
from pathlib import Path

from transforms.yamlfile import read_yaml

from .cohort import DxaVisit, Region, region
from .common import BadRecord, FeedOutput, FileRecordCount, bad_targets, csv_text, in_2099, rng_for
from .options import CONFIG_DIR

FEED = "dexa"
HOLOGIC_CONFIG = CONFIG_DIR / "dexa_hologic_columns.yaml"


def hologic_header(path: Path = HOLOGIC_CONFIG) -> list[str]:
    """The APEX header as the Hologic mapping (the parser's config) names it, in file order."""
    cfg = read_yaml(path)
    return [h for h in cfg["columns"].values() if h] + list(cfg["measure_columns"])


HOLOGIC_HEADER = hologic_header()
MEASURES = ("BMD", "BMC", "Area", "T-Score", "Z-Score", "YA %", "AM %", "Average Height",
            "Average Width")  # fmt: skip
SPINE_REGIONS = ("L1", "L2", "L3", "L4", "L1-L2", "L1-L3", "L2-L3", "L2-L4", "L3-L4", "L1-L4")
FEMUR_PARTS = (("Neck", "neck"), ("Upper Neck", "upper_neck"), ("Wards", "wards"),
               ("Troch", "troch"), ("Shaft", "shaft"), ("Total", "total"))  # fmt: skip
FEMUR_REGIONS = tuple(f"{n} {s}" for s in ("Left", "Right") for n, _ in FEMUR_PARTS) + (
    "Neck Mean", "Total Mean", "Neck Diff", "Total Diff")  # fmt: skip
LUNAR_TAIL = ("Birth Date", "Sex", "Age", "Height", "Weight", "Instrument Model",
              "Serial Number", "Software Version")  # fmt: skip
# Total-body export (regions of the real enCORE header, ../shared/corpus/derickschaefer_dxafile):
# region -> (typical BMD g/cm², area cm²). Kept by the parser as `tb_*` sites, never a hip.
TOTAL_BODY = {
    "Head": (2.15, 250), "Arms": (0.95, 450), "Legs": (1.35, 900), "Trunk": (1.0, 800),
    "Ribs": (0.75, 350), "Pelvis": (1.15, 250), "Spine": (1.15, 200), "Arm Left": (0.95, 225),
    "Leg Left": (1.35, 450), "Arm Right": (0.96, 225), "Leg Right": (1.36, 450),
    "Total": (1.25, 2300), "TBLH": (1.1, 2050), "Trunk Left": (1.0, 400),
    "Total Left": (1.24, 1150), "Trunk Right": (1.0, 400), "Total Right": (1.26, 1150),
}  # fmt: skip
TOTAL_BODY_MEASURES = ("BMD", "BMC", "Area", "T-Score", "Z-Score", "Average Height",
                       "Average Width")  # fmt: skip
TOTAL_BODY_RATE = 0.25  # share of Lunar visits that also export a total-body scan
LUNAR_L2L4_FROM_YEAR = 2019  # older enCORE export templates have no L2-L4 columns
BAD_KINDS = ("missing_patient_id", "implausible_value", "future_date", "unparseable_value")


def b3(x: float) -> str:
    return f"{x:.3f}"


def num(x: float, decimals: int) -> str:
    """enCORE style: thousands separators (`1,364.20`)."""
    return f"{x:,.{decimals}f}"


def t1(x: float) -> str:
    return f"{x:.1f}"


def _hologic_rows(p, v: DxaVisit, scan_ids) -> list[list[str]]:
    """One row per acquisition of a visit (Spine, then Hip per side), in HOLOGIC_HEADER order."""
    common = {
        "PAT_ID": p.mrn,
        "PAT_NAME": f"{p.family}, {p.given}",
        "DOB": p.birth_date.strftime("%m/%d/%Y"),
        "SEX": "M",
        "SCAN_DATE": v.date.strftime("%m/%d/%Y"),
        "INSTRUMENT": v.scanner.model,
        "SERIAL_NUMBER": v.scanner.serial,
        "SOFTWARE_VERSION": v.scanner.software,
    }
    s = v.spine
    cells = [{**common, "SCAN_TYPE": "Spine",
              **{f"L{i}_BMD": b3(s[f"L{i}"].bmd) for i in range(1, 5)},
              **_scores("L1L4", s["L1-L4"]), **_scores("L2L4", s["L2-L4"])}]  # fmt: skip
    for side, h in sorted(v.hips.items()):
        cells.append({**common, "SCAN_TYPE": "Hip", "SIDE": side.title(),
                      **_scores("NECK", h["neck"]), **_scores("HTOT", h["total"]),
                      "TROCH_BMD": b3(h["troch"].bmd), "INTER_BMD": b3(h["inter"].bmd),
                      "WARDS_BMD": b3(h["wards"].bmd)})  # fmt: skip
    rows = []
    for c in cells:
        c["SCAN_ID"] = next(scan_ids)
        rows.append([c.get(col, "") for col in HOLOGIC_HEADER])
    return rows


def _scores(prefix: str, r: Region) -> dict[str, str]:
    return {f"{prefix}_BMD": b3(r.bmd), f"{prefix}_TSCORE": t1(r.t_score),
            f"{prefix}_ZSCORE": t1(r.z_score)}  # fmt: skip


def _combine(regs: list[Region], manufacturer: str, age: float) -> Region:
    area = sum(r.area for r in regs)
    bmd = sum(r.bmd * r.area for r in regs) / area
    return region(bmd, area, manufacturer, "spine", age)


def _measure(r: Region | None, m: str) -> str:
    if r is None:
        return ""
    if m == "BMD":
        return b3(r.bmd)
    if m == "BMC":
        return num(r.bmd * r.area, 2)
    if m == "Area":
        return num(r.area, 2)
    if m == "T-Score":
        return t1(r.t_score)
    if m == "Z-Score":
        return t1(r.z_score)
    if m == "YA %":
        return f"{100.0 * r.bmd / (r.bmd - r.t_score * 0.12 or 1.0):.0f}"
    if m == "AM %":
        return f"{100.0 * r.bmd / (r.bmd - r.z_score * 0.12 or 1.0):.0f}"
    if m == "Average Height":
        return num(r.area**0.5 * 0.9, 2)
    return num(r.area**0.5 * 1.1, 2)


def _lunar_header(kind: str, year: int) -> list[str]:
    head = ["Last Name", "First Name", "Patient ID", "Measure Date"]
    if kind == "total_body":
        cols = [f"{r} {m}" for m in TOTAL_BODY_MEASURES for r in TOTAL_BODY]
        return head + cols + list(LUNAR_TAIL)
    regions = SPINE_REGIONS if kind == "spine" else FEMUR_REGIONS
    if kind == "spine" and year < LUNAR_L2L4_FROM_YEAR:
        regions = tuple(r for r in regions if r != "L2-L4")
    return head + [f"{r} {m}" for m in MEASURES for r in regions] + list(LUNAR_TAIL)


def _total_body(rng) -> dict[str, Region]:
    out = {}
    for name, (bmd, area) in TOTAL_BODY.items():
        t = round(rng.gauss(-0.3, 1.0), 1)
        out[name] = Region(bmd * rng.uniform(0.9, 1.08), area * rng.uniform(0.9, 1.1), t, t + 0.4)
    return out


def _lunar_row(p, v: DxaVisit, kind: str, header: list[str], total_body=None) -> list[str]:
    age = (v.date - p.birth_date).days / 365.25
    man = v.scanner.manufacturer
    regs: dict[str, Region | None] = {}
    if kind == "total_body":
        regs.update(total_body)
    elif kind == "spine":
        s = v.spine
        regs.update({k: s[k] for k in ("L1", "L2", "L3", "L4", "L1-L4", "L2-L4")})
        for name in ("L1-L2", "L1-L3", "L2-L3", "L3-L4"):
            a, b = (int(x[1]) for x in name.split("-"))
            regs[name] = _combine([s[f"L{i}"] for i in range(a, b + 1)], man, age)
    else:
        for side in ("left", "right"):
            h = v.hips.get(side)
            for label, key in FEMUR_PARTS:
                regs[f"{label} {side.title()}"] = h[key] if h else None
        for label, key in (("Neck", "neck"), ("Total", "total")):
            sides = [v.hips[s][key] for s in sorted(v.hips)]
            kind_ = "neck" if key == "neck" else "total"
            mean = sum(r.bmd for r in sides) / len(sides)
            regs[f"{label} Mean"] = region(
                mean, sum(r.area for r in sides) / len(sides), man, kind_, age
            )
            if len(sides) == 2:
                d = sides[0].bmd - sides[1].bmd
                regs[f"{label} Diff"] = Region(d, sides[0].area - sides[1].area, d / 0.12, d / 0.12)
            else:
                regs[f"{label} Diff"] = None
    cells = {
        "Last Name": p.family,
        "First Name": p.given,
        "Patient ID": p.mrn,
        "Measure Date": v.date.strftime("%m/%d/%Y"),
        "Birth Date": p.birth_date.strftime("%m/%d/%Y"),
        "Sex": "Male",
        "Age": str(int(age)),
        "Height": f"{v.height_in:.1f} in",
        "Weight": f"{v.weight_lbs:.1f} lbs",
        "Instrument Model": v.scanner.model,
        "Serial Number": v.scanner.serial,
        "Software Version": v.scanner.software,
    }
    return [cells[col] if kind_ is None else _measure(regs.get(kind_[0]), kind_[1])
            for col, kind_ in _columns(tuple(header))]  # fmt: skip


@lru_cache(maxsize=64)
def _columns(header: tuple[str, ...]) -> list[tuple[str, tuple[str, str] | None]]:
    """Per column: (name, (region, measure)) for region columns, (name, None) otherwise."""
    out = []
    for col in header:
        m = next((m for m in MEASURES if col.endswith(" " + m)), None)
        out.append((col, (col[: -len(m) - 1], m) if m and col not in LUNAR_TAIL else None))
    return out


def _scan_truth(p, v: DxaVisit, has_l2l4: bool) -> list[dict]:
    """The scans a parser reads from the exported (rounded) values."""
    man, sc = v.scanner.manufacturer, v.scanner
    common = {"mrn": p.mrn, "scan_date": v.date, "manufacturer": man, "model": sc.model,
              "serial": sc.serial}  # fmt: skip
    s = v.spine
    out = [dict(common, site="lumbar_spine", side=None, bmd_g_cm2=float(b3(s["L1-L4"].bmd)),
                bmd_l2_l4_g_cm2=float(b3(s["L2-L4"].bmd)) if has_l2l4 else None,
                t_score=float(t1(s["L1-L4"].t_score)), z_score=float(t1(s["L1-L4"].z_score)))]  # fmt: skip
    for side, h in sorted(v.hips.items()):
        for site, key in (("total_hip", "total"), ("femoral_neck", "neck")):
            out.append(dict(common, site=site, side=side, bmd_g_cm2=float(b3(h[key].bmd)),
                            bmd_l2_l4_g_cm2=None, t_score=float(t1(h[key].t_score)),
                            z_score=float(t1(h[key].z_score))))  # fmt: skip
    return out


def _make_bad(
    row: list[str], header: list[str], kind: str, k: int, when: dt.date
) -> tuple[list[str], str]:
    row = list(row)
    if kind == "missing_patient_id":
        row[header.index("PAT_ID" if "PAT_ID" in header else "Patient ID")] = ""
        return row, "empty patient id"
    if kind == "implausible_value":
        for i, col in enumerate(header):
            if col.endswith("BMD") and row[i]:
                row[i] = "9.900"
        return row, "BMD 9.9 g/cm2"
    date_col = header.index("SCAN_DATE" if "SCAN_DATE" in header else "Measure Date")
    if kind == "future_date":
        row[date_col] = in_2099(when).strftime("%m/%d/%Y")
        return row, "scan in 2099"
    row[date_col] = f"02/31/{when.year}"
    return row, "impossible date 02/31"


def write_dexa(patients, opts, seed: int) -> tuple[FeedOutput, list[dict]]:
    out = FeedOutput(FEED)
    scans: list[dict] = []
    counter = iter(range(1, 10**9))
    scan_ids = (f"A{n:08d}" for n in counter)
    hologic: dict[str, list] = {}
    lunar: dict[tuple[str, int], list] = {}
    for p in patients:
        for v in p.visits:
            if v.scanner.manufacturer == "Hologic":
                name = f"dexa/hologic/APEX_export_{v.date.year}.csv"
                for row in _hologic_rows(p, v, scan_ids):
                    hologic.setdefault(name, []).append((v.date, p.mrn, row, None))
                scans.extend(_scan_truth(p, v, True))
            else:
                for kind in ("spine", "femur"):
                    lunar.setdefault((kind, v.date.year), []).append((v.date, p.mrn, p, v, None))
                tb_rng = rng_for(seed, "total_body", p.index, v.date.isoformat())
                if tb_rng.random() < TOTAL_BODY_RATE:
                    entry = (v.date, p.mrn, p, v, None, _total_body(tb_rng))
                    lunar.setdefault(("total_body", v.date.year), []).append(entry)
                scans.extend(_scan_truth(p, v, v.date.year >= LUNAR_L2L4_FROM_YEAR))
    rng = rng_for(seed, "dexa-bad")
    if patients:
        for kind in BAD_KINDS:
            for k, (p, when) in enumerate(bad_targets(rng, patients, opts.bad_per_kind)):
                v = copy.deepcopy(p.visits[0])
                v.date = when.date()
                info = (kind, k, "" if kind == "missing_patient_id" else p.mrn)
                if k % 2 == 0:
                    name = f"dexa/hologic/APEX_export_{v.date.year}.csv"
                    row = _hologic_rows(p, v, scan_ids)[0]
                    hologic.setdefault(name, []).append((v.date, p.mrn, row, info))
                else:
                    lunar.setdefault(("spine", v.date.year), []).append((v.date, p.mrn, p, v, info))
    for name in sorted(hologic):
        entries = sorted(
            hologic[name], key=lambda e: (e[0], e[1], e[2][HOLOGIC_HEADER.index("SCAN_ID")])
        )
        count = FileRecordCount(FEED, "hologic", name, received=len(entries))
        rows = []
        for i, (day, _, row, info) in enumerate(entries):
            if info:
                row, note = _make_bad(row, HOLOGIC_HEADER, info[0], info[1], day)
                count.add_bad(info[0])
                out.bad.append(
                    BadRecord(FEED, "hologic", name, f"line {i + 2}", info[0], info[2], note)
                )
            rows.append(row)
        out.files[name] = csv_text(HOLOGIC_HEADER, rows).encode("utf-8")
        out.counts.append(count)
    for kind, year in sorted(lunar):
        label = {"spine": "AP_Spine", "femur": "DualFemur", "total_body": "Total_Body"}[kind]
        name = f"dexa/lunar/enCORE_{year}_{label}.txt"
        header = _lunar_header(kind, year)
        entries = sorted(lunar[(kind, year)], key=lambda e: (e[0], e[1]))
        count = FileRecordCount(FEED, "lunar", name, received=len(entries))
        lines = ["\t".join(header)]
        for i, (day, _, p, v, info, *tb) in enumerate(entries):
            row = _lunar_row(p, v, kind, header, *tb)
            if info:
                row, note = _make_bad(row, header, info[0], info[1], day)
                count.add_bad(info[0])
                out.bad.append(
                    BadRecord(FEED, "lunar", name, f"line {i + 2}", info[0], info[2], note)
                )
            lines.append("\t".join(row))
        out.files[name] = ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-16-le")
        out.counts.append(count)
    out.add_duplicates(rng_for(seed, "dexa-dup"), opts.bad_per_kind)
    scans.sort(key=lambda s: (s["mrn"], s["scan_date"], s["site"], s["side"] or ""))
    return out, scans
