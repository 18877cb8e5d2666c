"""HL7 v2.5.1 ORU^R01 files for landing/hl7 (docs/feeds.md), with corrections and bad messages."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from transforms.catalog import Catalog

from .common import (
    NAMESPACE,
    SENDING_APP,
    TIMEZONE,
    BadRecord,
    FeedOutput,
    FileRecordCount,
    bad_targets,
    in_2099,
    rng_for,
)
from .labs import HL7_SENDS, LabObs, Send, canonical_unit, send_value

FEED = "hl7"
TZ = ZoneInfo(TIMEZONE)
NOTES = (
    "Probe leicht hämolysiert",
    "Échantillon lipémique & ictérique",
    "Specimen received at 4°C; drawn before injection",
    "Repeat requested by Dr. Peña",
)
FORMATS = ("cr", "batch", "batch_notrailer", "lf", "crlf", "mllp", "bom")
EXTENSION = {"cr": "hl7", "batch": "hl7", "batch_notrailer": "txt", "lf": "txt", "crlf": "hl7",
             "mllp": "mllp", "bom": "hl7"}  # fmt: skip


def escape(text: str) -> str:
    out = text.replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\")
    return out.replace("&", "\\T\\").replace("~", "\\R\\")


def ts(when: dt.datetime, with_offset: bool) -> str:
    """HL7 DTM, facility local; with the America/New_York offset of that moment if asked."""
    s = (f"{when.year:04d}{when.month:02d}{when.day:02d}"
         f"{when.hour:02d}{when.minute:02d}{when.second:02d}")  # fmt: skip
    return s + _offset(when) if with_offset else s


def _offset(when: dt.datetime) -> str:
    return when.replace(tzinfo=TZ).strftime("%z")


@dataclass
class Msg:
    at: dt.datetime  # MSH-7, facility local
    tz: bool
    groups: list[list[str]]  # segments after MSH; each group starts with PID
    obs: list[LabObs] = field(default_factory=list)
    bad: str | None = None
    bad_mrn: str = ""
    bad_note: str = ""
    mergeable: bool = True

    def segments(self, control_id: str) -> list[str]:
        msh = (f"MSH|^~\\&|{SENDING_APP}|{NAMESPACE}|LABWH|LABWH|{ts(self.at, self.tz)}||"
               f"ORU^R01^ORU_R01|{control_id}|P|2.5.1")  # fmt: skip
        segs = [msh]
        for i, g in enumerate(self.groups):
            pid = g[0]
            if pid.startswith("PID|1|"):
                pid = f"PID|{i + 1}|" + pid[len("PID|1|") :]
            segs.append(pid)
            segs.extend(g[1:])
        return segs


class _Ids:
    def __init__(self) -> None:
        self.n = 0

    def filler(self) -> str:
        self.n += 1
        return f"FIL{self.n:07d}"


def _pid(p, rng: random.Random) -> str:
    mr = f"{p.mrn}^^^{NAMESPACE}^MR"
    other = f"H{p.index * 7919 % 1000000:06d}^^^SOUTH_HOSP^PI"
    r = rng.random()
    cx = mr if r < 0.85 else (f"{mr}~{other}" if r < 0.95 else f"{other}~{mr}")
    name = f"{escape(p.family)}^{escape(p.given)}"
    return f"PID|1||{cx}||{name}||{p.birth_date:%Y%m%d}|M"


def _obx(set_id: int, send: Send, value: str, comparator: str | None, status: str,
         obs_time: str, with_loinc: bool, flag: str = "N") -> str:  # fmt: skip
    ident = f"{send.code}^{escape(send.text)}^L"
    if with_loinc and send.loinc:
        ident += f"^{send.loinc}^{escape(send.text)}^LN"
    vtype, val = ("SN", f"{comparator}^{value}") if comparator else ("NM", value)
    seg = (
        f"OBX|{set_id}|{vtype}|{ident}||{val}|{send.unit}|{send.ref}|{flag}|||{status}|||{obs_time}"
    )
    return seg.rstrip("|")


def _obr(set_id: int, filler: str, panel: str, collected: str, status: str) -> list[str]:
    fields = ["OBR", str(set_id), "", f"{filler}^{SENDING_APP}", panel, "", "", collected]
    fields += [""] * 17 + [status]
    return [f"ORC|RE||{filler}^{SENDING_APP}", "|".join(fields)]


PANELS = {"HORM": "HORM^Hormone panel^L", "BONE": "BONE^Bone markers^L"}


def _draw_messages(p, draw, catalog: Catalog, opts, ids: _Ids, rng: random.Random) -> list[Msg]:
    tz = rng.random() < 0.6
    collected = ts(draw.collected_at, tz)
    reported = draw.collected_at + dt.timedelta(
        hours=rng.randint(3, 30), minutes=rng.randint(0, 59)
    )
    msg = Msg(reported, tz, [[_pid(p, rng)]])
    corrections: list[Msg] = []
    v = draw.values
    horm = [("estradiol", HL7_SENDS["estradiol"])] if draw.variant < 0.8 else []
    if draw.variant >= 0.75:
        horm.append(("estradiol", HL7_SENDS["estradiol_molar"]))
    horm.append(("testosterone_total", HL7_SENDS["testosterone_total"]))
    for name in ("shbg", "psa"):
        if name in v:
            horm.append((name, HL7_SENDS[name]))
    panels = [("HORM", horm)]
    if "ctx" in v:
        panels.append(("BONE", [("ctx", HL7_SENDS["ctx"]), ("p1np", HL7_SENDS["p1np"])]))
    group = msg.groups[0]
    for obr_ix, (panel, items) in enumerate(panels, start=1):
        filler = ids.filler()
        group.extend(_obr(obr_ix, filler, PANELS[panel], collected, "F"))
        for set_id, (analyte, send) in enumerate(items, start=1):
            text, comp, canon = send_value(catalog, analyte, send, v[analyte])
            obs_time = collected if rng.random() < 0.5 else ""
            with_loinc = rng.random() < 0.7
            flag = "L" if comp else "N"
            group.append(_obx(set_id, send, text, comp, "F", obs_time, with_loinc, flag))
            if rng.random() < 0.04:
                group.append(f"NTE|1||{escape(rng.choice(NOTES))}")
            o = _obs(p, draw, send, analyte, catalog, canon, comp, filler, "F", reported, text)
            msg.obs.append(o)
            r = rng.random()
            if analyte == "estradiol" and set_id == 1 and comp is None:
                if r < opts.correction_rate:
                    new_text, new_comp, new_canon = send_value(
                        catalog, analyte, send, v[analyte] * rng.uniform(0.75, 1.3)
                    )
                    status = "C"
                elif r < opts.correction_rate + opts.retraction_rate:
                    new_text, new_comp, new_canon, status = text, comp, canon, "D"
                else:
                    continue
                at = reported + dt.timedelta(days=rng.randint(32, 90), hours=rng.randint(0, 8))
                seg = _obx(1, send, new_text, new_comp, status, obs_time, with_loinc,
                           "L" if new_comp else "N")  # fmt: skip
                note = "NTE|1||" + escape(
                    "Corrected result" if status == "C" else "Result deleted: wrong specimen"
                )
                cm = Msg(
                    at,
                    tz,
                    [[_pid(p, rng), *_obr(1, filler, PANELS[panel], collected, "C"), seg, note]],
                )
                cm.mergeable = False
                cm.obs.append(_obs(p, draw, send, analyte, catalog, new_canon, new_comp, filler,
                                   status, at, new_text))  # fmt: skip
                corrections.append(cm)
    return [msg, *corrections]


def _obs(p, draw, send, analyte, catalog, canon, comp, filler, status, version, text) -> LabObs:
    catalogued = send.loinc is not None and send.loinc in catalog.analytes
    return LabObs(
        mrn=p.mrn,
        collected_at=draw.collected_at,
        loinc=send.loinc if catalogued else None,
        analyte=analyte if catalogued else send.text,
        value=canon,
        comparator=comp,
        unit=canonical_unit(catalog, analyte) if catalogued else send.unit,
        feed=FEED,
        source=SENDING_APP,
        order_id=filler,
        code=send.code,
        status=status,
        version=version,
        sent_value=text,
        sent_unit=send.unit,
    )


BAD_KINDS = ("malformed_message", "missing_patient_id", "unknown_unit", "implausible_value",
             "future_date", "unparseable_value")  # fmt: skip


def _bad_message(kind: str, k: int, p, when: dt.datetime, ids: _Ids, rng) -> Msg:
    tz = k % 2 == 0
    e2 = HL7_SENDS["estradiol"]
    collected = ts(when, tz)
    value, unit, note = f"{rng.uniform(15, 40):.1f}", e2.unit, ""
    pid = _pid(p, rng)
    if kind == "missing_patient_id":
        pid = f"PID|1||||{escape(p.family)}^{escape(p.given)}||{p.birth_date:%Y%m%d}|M"
    elif kind == "unknown_unit":
        value, unit, note = f"{rng.uniform(1.5, 4.0):.2f}", "ng/dL", "E2 in ng/dL"
    elif kind == "implausible_value":
        value, note = ("95000", "E2 95000 pg/mL") if k % 2 == 0 else ("-4.0", "E2 negative")
    elif kind == "future_date":
        collected = ts(in_2099(when), tz)
        note = "collected in 2099"
    elif kind == "unparseable_value":
        value, note = "abc", "NM value 'abc'"
    filler = ids.filler()
    send = Send(e2.code, e2.text, e2.loinc, unit, 1, None, e2.ref)
    obx = _obx(1, send, value, None, "F", "", True)
    orc_obr = _obr(1, filler, PANELS["HORM"], collected, "F")
    if kind == "malformed_message":
        if k % 2 == 0:
            group = [pid, orc_obr[0], obx, orc_obr[1]]  # OBX before any OBR
            note = "OBX before OBR"
        else:
            group = [pid, *orc_obr, "OBXX" + obx[3:]]  # segment id of four letters
            note = "segment id OBXX"
    else:
        group = [pid, *orc_obr, obx]
    mrn = "" if kind == "missing_patient_id" else p.mrn
    m = Msg(when + dt.timedelta(hours=5), tz, [group], bad=kind, bad_mrn=mrn, bad_note=note)
    m.mergeable = False
    return m


def _render(msgs_with_ids: list[tuple[Msg, str]], fmt: str) -> tuple[bytes, list[int]]:
    """File bytes and, per message, the segment count (for positions)."""
    sep = {"lf": "\n", "crlf": "\r\n"}.get(fmt, "\r")
    texts = [sep.join(m.segments(cid)) + sep for m, cid in msgs_with_ids]
    if fmt == "mllp":
        body = "".join("\x0b" + t + "\x1c\r" for t in texts)
    elif fmt in ("batch", "batch_notrailer"):
        last = max(m.at for m, _ in msgs_with_ids)
        head = (f"FHS|^~\\&|{SENDING_APP}|{NAMESPACE}|LABWH|LABWH|{ts(last, False)}\r"
                f"BHS|^~\\&|{SENDING_APP}|{NAMESPACE}|LABWH|LABWH|{ts(last, False)}\r")  # fmt: skip
        body = head + "".join(texts)
        if fmt == "batch":
            body += f"BTS|{len(texts)}\rFTS|1\r"
    else:
        body = "".join(texts)
    data = body.encode("utf-8")
    if fmt == "bom":
        data = b"\xef\xbb\xbf" + data
    return data, [len(m.segments(cid)) for m, cid in msgs_with_ids]


def write_hl7(patients, catalog: Catalog, opts, seed: int) -> FeedOutput:
    out = FeedOutput(FEED)
    ids = _Ids()
    msgs: list[Msg] = []
    for p in patients:
        rng = rng_for(seed, "hl7", p.index)
        for draw in p.draws:
            if draw.lab == "hl7":
                msgs.extend(_draw_messages(p, draw, catalog, opts, ids, rng))
    rng = rng_for(seed, "hl7-bad")
    if patients:
        for kind in BAD_KINDS:
            for k, (p, when) in enumerate(bad_targets(rng, patients, opts.bad_per_kind)):
                msgs.append(_bad_message(kind, k, p, when, ids, rng))
    by_month: dict[str, list[Msg]] = {}
    for m in msgs:
        by_month.setdefault(m.at.strftime("%Y%m"), []).append(m)
    rng = rng_for(seed, "hl7-files")
    months = sorted(by_month)
    fmts = list(FORMATS)
    rng.shuffle(fmts)
    control = 0
    for f_ix, month in enumerate(months):
        fmt = fmts[f_ix] if f_ix < len(fmts) else rng.choice(FORMATS)
        month_msgs = sorted(by_month[month], key=lambda m: (m.at, m.groups[0][0]))
        merged: list[Msg] = []
        for m in month_msgs:  # some messages carry two patients
            prev = merged[-1] if merged else None
            if (prev is not None and prev.mergeable and m.mergeable and len(prev.groups) == 1
                    and prev.tz == m.tz and rng.random() < 0.06):  # fmt: skip
                prev.at = max(prev.at, m.at)
                prev.groups.append(m.groups[0])
                prev.obs.extend(m.obs)
                prev.mergeable = False
            else:
                merged.append(m)
        with_ids = []
        for m in merged:
            control += 1
            with_ids.append((m, f"MSG{control:07d}"))
        name = f"hl7/ORU_R01_{month}.{EXTENSION[fmt]}"
        data, _ = _render(with_ids, fmt)
        out.files[name] = data
        count = FileRecordCount(FEED, SENDING_APP, name)
        for i, (m, cid) in enumerate(with_ids):
            segs = m.segments(cid)
            if m.bad == "malformed_message":
                count.received += 1
                count.add_bad(m.bad)
                out.bad.append(
                    BadRecord(FEED, SENDING_APP, name, f"m{i}", m.bad, m.bad_mrn, m.bad_note)
                )
                continue
            count.received += sum(1 for s in segs if s.startswith("OBX|"))
            if m.bad:
                j = next(k for k, s in enumerate(segs) if s.startswith("OBX|"))
                count.add_bad(m.bad)
                out.bad.append(_bad_record(name, i, j, m, segs[j]))
            out.obs.extend(m.obs)
        out.counts.append(count)
    out.add_duplicates(rng_for(seed, "hl7-dup"), opts.bad_per_kind)
    return out


def _bad_record(name: str, i: int, j: int, m: Msg, obx: str) -> BadRecord:
    released = ""
    if m.bad == "unknown_unit":
        released = f"{float(obx.split('|')[5]) * 10:.1f}"  # if ng/dL is added with factor 10
    collected = [s for s in m.groups[0] if s.startswith("OBR|")][0].split("|")[7][:8]
    return BadRecord(FEED, SENDING_APP, name, f"m{i}/s{j}", m.bad, m.bad_mrn, m.bad_note,
                     "2243-4", f"{collected[:4]}-{collected[4:6]}-{collected[6:8]}", released)  # fmt: skip
