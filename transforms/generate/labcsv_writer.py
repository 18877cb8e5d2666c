"""CSV lab exports for landing/lab_csv/<source>/, written from config/sources/lab_csv/*.yaml."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

from transforms.catalog import Catalog
from transforms.yamlfile import read_yaml

from .common import BadRecord, FeedOutput, FileRecordCount, bad_targets, csv_text, in_2099, rng_for
from .labs import NORTH_SENDS, SOUTH_SENDS, LabObs, Send, canonical_unit, send_value

FEED = "lab_csv"
SOURCES = ("northlab", "southlab")
FILE_NAME = {
    "northlab": "lab_csv/northlab/northlab_results_{y}Q{q}.csv",
    "southlab": "lab_csv/southlab/southlab_befunde_{y}_Q{q}.csv",
}
NEWLINE = {"northlab": "\n", "southlab": "\r\n"}
BAD_KINDS = ("missing_patient_id", "unknown_unit", "implausible_value", "future_date",
             "unparseable_value")  # fmt: skip


def load_source(config_dir: Path, source: str) -> dict:
    path = Path(config_dir) / "sources" / "lab_csv" / f"{source}.yaml"
    return read_yaml(path)


class _Source:
    def __init__(self, cfg: dict, catalog: Catalog) -> None:
        self.cfg = cfg
        self.name = cfg["source"]
        self.catalog = catalog
        self.columns = {k: v for k, v in cfg["columns"].items() if v}
        self.header = list(self.columns.values())
        self.dt_fmt = cfg["datetime_formats"][0]
        self.date_fmt = cfg["datetime_formats"][-1]
        self.decimal = cfg["decimal"]
        self.sends = NORTH_SENDS if self.name == "northlab" else SOUTH_SENDS

    def num(self, text: str) -> str:
        return text.replace(".", self.decimal)

    def row(self, p, when: dt.datetime, send: Send, value: str, unit: str, order_id: str,
            flag: str, rng: random.Random, date_only: bool = False) -> list[str]:  # fmt: skip
        cells = {
            "patient_id": p.mrn,
            "patient_name": f"{p.family}, {p.given}",
            "birth_date": p.birth_date.strftime(self.date_fmt),
            "collected_at": when.strftime(self.date_fmt if date_only else self.dt_fmt),
            "code": send.code,
            "code_text": send.text,
            "loinc": send.loinc if send.loinc and rng.random() < 0.7 else "",
            "value": value,
            "unit": unit,
            "reference_range": send.ref,
            "abnormal_flags": flag,
            "order_id": order_id,
            "result_status": "F" if rng.random() < 0.9 else "",
        }
        return [cells[k] for k in self.columns]

    def draw_rows(self, p, draw, order_id: str, rng: random.Random):
        """(row, LabObs or None) for every result of one draw."""
        out = []
        date_only = self.name == "northlab" and rng.random() < 0.05
        when = draw.collected_at
        if date_only:
            when = dt.datetime.combine(when.date(), dt.time())
        for analyte, true in sorted(draw.values.items()):
            send = self.sends[analyte]
            embed = False
            if analyte == "estradiol":
                if self.name == "northlab" and p.northlab_assay == "ia":
                    send = self.sends["estradiol_ia"]
                elif self.name == "southlab" and draw.variant < 0.12:
                    send, embed = self.sends["estradiol_mass"], True
            text, comp, canon = send_value(self.catalog, analyte, send, true)
            cell = self.num((comp or "") + text)
            unit = send.unit
            if analyte not in ("estradiol", "testosterone_total") and rng.random() < 0.03:
                cell, canon, comp = rng.choice(("N/A", "")), None, None
            elif embed and comp is None:
                cell = f"{cell} {send.unit}"
                unit = send.unit if rng.random() < 0.7 else ""
            elif self.name == "northlab" and rng.random() < 0.1:
                unit = unit.lower()
            flag = "L" if comp else ""
            row = self.row(
                p, when, send, cell, unit, order_id, "" if embed else flag, rng, date_only
            )
            catalogued = send.loinc is not None and send.loinc in self.catalog.analytes
            obs = LabObs(
                mrn=p.mrn,
                collected_at=when,
                loinc=send.loinc,
                analyte=analyte if catalogued else send.text,
                value=canon,
                comparator=comp,
                unit=canonical_unit(self.catalog, analyte) if catalogued else send.unit,
                feed=FEED,
                source=self.name,
                order_id=order_id,
                code=send.code,
                status="F",
                version=when,
                sent_value=cell,
                sent_unit=unit,
            )
            out.append((row, obs))
        return out

    def bad_row(self, kind: str, k: int, p, when: dt.datetime, order_id: str, rng):
        send = self.sends["estradiol"]
        value, unit, note, released = self.num(f"{rng.uniform(15, 40):.1f}"), send.unit, "", ""
        date_only = False
        if kind == "unknown_unit":
            v = rng.uniform(1.5, 4.0)
            value, unit, note = self.num(f"{v:.2f}"), "ng/dL", "E2 in ng/dL"
            released = f"{float(f'{v:.2f}') * 10:.1f}"
        elif kind == "implausible_value":
            if k % 2 == 0:
                value, unit, note = "95000", "pg/mL", "E2 95000 pg/mL"
            else:
                send, value, unit, note = self.sends["testosterone_total"], "-12", self.sends["testosterone_total"].unit, "negative testosterone"  # fmt: skip
        elif kind == "future_date":
            when, note = in_2099(when), "collected in 2099"
        elif kind == "unparseable_value" and k % 2 == 0:
            value, note = "abc", "value 'abc'"
        row = self.row(p, when, send, value, unit, order_id, "", rng, date_only)
        cols = list(self.columns)
        if kind == "missing_patient_id":
            row[cols.index("patient_id")] = ""
            note = "empty patient id"
        elif kind == "unparseable_value" and k % 2 == 1:
            row[cols.index("collected_at")] = _impossible_date(when, self.dt_fmt)
            note = "impossible date 31 February"
        return row, note, released, send.loinc


def _impossible_date(when: dt.datetime, fmt: str) -> str:
    """``when`` formatted with day 31 of February (no rule can read it)."""
    return when.strftime(fmt.replace("%d", "31").replace("%m", "02"))


def _quarter_file(source: str, day: dt.date) -> str:
    return FILE_NAME[source].format(y=day.year, q=(day.month - 1) // 3 + 1)


def write_lab_csv(patients, catalog: Catalog, opts, seed: int) -> FeedOutput:
    out = FeedOutput(FEED)
    sources = {s: _Source(load_source(opts.config_dir, s), catalog) for s in SOURCES}
    files: dict[str, list] = {}  # name -> list of (row, obs | None, bad info | None)
    n_order = 0
    for p in patients:
        rng = rng_for(seed, "lab_csv", p.index)
        for draw in p.draws:
            if draw.lab not in sources:
                continue
            n_order += 1
            prefix = "NL" if draw.lab == "northlab" else "SL"
            order_id = f"{prefix}{n_order:08d}"
            name = _quarter_file(draw.lab, draw.collected_at.date())
            for row, obs in sources[draw.lab].draw_rows(p, draw, order_id, rng):
                files.setdefault(name, []).append((draw.collected_at, order_id, row, obs, None))
    rng = rng_for(seed, "lab_csv-bad")
    if patients:
        for kind in BAD_KINDS:
            for k, (p, when) in enumerate(bad_targets(rng, patients, opts.bad_per_kind)):
                src = sources[SOURCES[k % 2]]
                n_order += 1
                order_id = f"X{src.name[0].upper()}{n_order:08d}"
                row, note, released, loinc = src.bad_row(kind, k, p, when, order_id, rng)
                name = _quarter_file(src.name, when.date())
                if name not in files:
                    name = sorted(n for n in files if f"/{src.name}/" in n)[0] if any(
                        f"/{src.name}/" in n for n in files) else name  # fmt: skip
                info = (kind, "" if kind == "missing_patient_id" else p.mrn, note, released,
                        loinc, when.date().isoformat())  # fmt: skip
                files.setdefault(name, []).append((when, order_id, row, None, info))
    for name in sorted(files):
        source = name.split("/")[1]
        src = sources[source]
        entries = sorted(files[name], key=lambda e: (e[0], e[1]))
        count = FileRecordCount(FEED, source, name, received=len(entries))
        rows = []
        for i, (_, _, row, obs, info) in enumerate(entries):
            rows.append(row)
            if obs is not None:
                out.obs.append(obs)
            if info is not None:
                kind, mrn, note, released, loinc, day = info
                count.add_bad(kind)
                out.bad.append(BadRecord(FEED, source, name, f"line {i + 2}", kind, mrn, note,
                                         loinc or "", day, released))  # fmt: skip
        text = csv_text(src.header, rows, src.cfg["delimiter"], NEWLINE[source])
        out.files[name] = text.encode(src.cfg["encoding"])
        out.counts.append(count)
    out.add_duplicates(rng_for(seed, "lab_csv-dup"), opts.bad_per_kind)
    return out
