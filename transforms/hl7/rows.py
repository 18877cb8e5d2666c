"""Messages → staged lab rows (one per OBX), rejects and identities, one chunk at a time.

The loop touches each segment once: it dispatches on the first three characters and splits
only MSH, PID, OBR and OBX into fields. Values that repeat for every OBX of a group (message,
patient, order) are kept once per group and spread over the rows by polars at the end, so a
chunk becomes one DataFrame built from plain Python lists.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from schemas.staging import StgLabResult, columns_of
from transforms import redact
from transforms.catalog import Catalog
from transforms.hl7.config import Hl7Config, load_hl7_config
from transforms.hl7.framing import RawMessage
from transforms.hl7.parse import (
    SEGMENT_ID,
    Encoding,
    MalformedMessage,
    components,
    first_component,
    hd_name,
    read_encoding,
    segment_shape,
    unescape,
)
from transforms.hl7.timestamps import BadTimestamp, birth_year_and_date, parse_dtm_us
from transforms.labnorm import normalize_lab_results
from transforms.records import (
    MALFORMED_MESSAGE,
    MISSING_PATIENT_ID,
    UNPARSEABLE_VALUE,
    Identity,
    ParseResult,
    Reject,
)

SCHEMA = columns_of(StgLabResult)
COMPARATORS = frozenset({"<", "<=", ">", ">="})
SN_COMPARATORS = COMPARATORS | {"", "="}  # SN-1 values that leave a plain number
CODED_TYPES = frozenset({"CWE", "CE", "CNE", "CF", "CV"})
_NUMBER = re.compile(r"\s*(<=|>=|<|>)?\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*")
_PAD = [""] * 32
PATIENT_CACHE_SIZE = 20_000  # recent PID segments; bounded so memory stays flat
SPILL_ROWS = 20_000  # OBX rows held as Python lists before they become a polars frame
TIMESTAMP_COLUMNS = ("message_at", "collected_at", "observed_at")

# Columns set once per group (message × patient × order) and gathered onto its OBX rows.
GROUP_COLUMNS = (
    "source_system",
    "patient_key",
    "message_control_id",
    "sending_facility",
    "hl7_version",
    "message_at",
    "message_index",
    "filler_order_number",
    "placer_order_number",
    "order_status",
    "birth_year",
    "sex",
)
OBX_COLUMNS = (
    "segment_index",
    "collected_at",
    "observed_at",
    "source_code",
    "source_text",
    "source_code_system",
    "alt_code",
    "alt_text",
    "alt_code_system",
    "sub_id",
    "value_type",
    "original_value",
    "original_unit",
    "value_num_original",
    "comparator",
    "value_text",
    "reference_range",
    "abnormal_flags",
    "result_status",
    "method",
)


@dataclass
class FileState:
    """What stays the same for every chunk of one file."""

    file_sha256: str
    pseudonymize: Callable[[str, str], str]
    catalog: Catalog
    config: Hl7Config | None = None  # one config for every message; None: per MSH-3
    _configs: dict[str, Hl7Config] = field(default_factory=dict)
    # PID segment text (+ fallback namespace) → (patient_key, birth_year, sex, identities)
    patients: dict[tuple[str, str], tuple] = field(default_factory=dict)
    segment_ids: set[str] = field(default_factory=set)  # ids already checked

    def config_for(self, sending_application: str) -> Hl7Config:
        if self.config is not None:
            return self.config
        cfg = self._configs.get(sending_application)
        if cfg is None:
            cfg = self._configs[sending_application] = load_hl7_config(sending_application)
        return cfg


def _number(text: str) -> tuple[float | None, str | None]:
    """'5', ' 5.0 ', '<5', '>= 300' → (number, comparator); (None, None) when not a number."""
    m = _NUMBER.fullmatch(text)
    if m is None:
        return None, None
    return float(m.group(2)), m.group(1)


def _value(
    vtype: str, raw: str, enc: Encoding
) -> tuple[str | None, float | None, str | None, str | None, str | None]:
    """OBX-5 → (original_value, number, comparator, value_text, error)."""
    if not raw:
        return None, None, None, None, None
    original = unescape(raw, enc) if enc.ec in raw else raw
    if vtype == "NM":
        if enc.rs in raw:  # repeated NM (`27~25`): no single number; kept as text
            return original, None, None, original, None
        if not original.strip():
            return original, None, None, None, None
        try:
            num = float(original)
            if math.isfinite(num) and "_" not in original:
                return original, num, None, None, None
        except ValueError:
            pass
        num, comp = _number(original)
        if num is None:
            return original, None, None, None, "OBX-5 of type NM is not a number"
        return original, num, comp, None, None
    if vtype == "SN":
        c = components(raw.split(enc.rs, 1)[0], enc, 4)
        comp, num1, sep, num2 = c[0].strip(), c[1].strip(), c[2].strip(), c[3].strip()
        if sep or num2:  # range or ratio (`^10^-^20`, `^1^:^40`): text
            return original, None, None, f"{comp}{num1}{sep}{num2}", None
        if not num1:
            if comp:
                return original, None, None, None, "OBX-5 of type SN has no number"
            return original, None, None, None, None
        num, extra = _number(num1)
        if num is None or extra is not None or comp not in SN_COMPARATORS:
            return original, None, None, None, "OBX-5 of type SN is not comparator^number"
        return original, num, comp if comp in COMPARATORS else None, None, None
    if vtype in CODED_TYPES:
        c = components(raw.split(enc.rs, 1)[0], enc, 2)
        return original, None, None, c[1] or c[0] or None, None
    if vtype == "ST":  # a plain number sent as ST (`<5`) also gets its number
        num, comp = _number(original)
        return original, num, comp, original, None
    return original, None, None, original, None


def _flags(raw: str, enc: Encoding) -> str:
    """OBX-8: component 1 of each repetition, joined with '~'."""
    return "~".join(first_component(r, enc) for r in raw.split(enc.rs))


def _obx_excerpt(code: str, vtype: str, value: str | None) -> str:
    """What a rejected OBX shows (transforms.redact): the code as a token, the value as it
    is only when it looks like data (`0 .07`), else by its shape (a name typed into it)."""
    return f"OBX-3 {redact.token(code)} | OBX-2 {redact.token(vtype)} | OBX-5 {redact.shown(value)}"


def _coded_text(raw: str, enc: Encoding) -> str | None:
    """Text of a CE/CWE field (component 2, else 1), first repetition."""
    if not raw:
        return None
    c = components(raw.split(enc.rs, 1)[0], enc, 2)
    return c[1] or c[0] or None


class ChunkParser:
    """Parses messages one by one (``add``); ``result()`` makes the chunk's ParseResult."""

    def __init__(self, state: FileState) -> None:
        self.state = state
        self.groups: list[tuple] = []  # one tuple per group, in GROUP_COLUMNS order
        self.rows: list[tuple] = []  # one tuple per OBX: group number, then OBX_COLUMNS
        self.rejects: list[Reject] = []
        self.identities: dict[tuple, None] = {}  # Identity fields, first-seen order
        self.apps: set[str] = set()
        self._new_identities: list[tuple] = []
        self.frames: list[pl.DataFrame] = []
        self.messages = 0

    # -- one message -------------------------------------------------------------------
    def add(self, msg: RawMessage) -> None:
        self.messages += 1
        g_len = len(self.groups)
        o_len = len(self.rows)
        r_len = len(self.rejects)
        self._new_identities: list[tuple] = []
        self._control_id = None
        enc = None
        try:
            if msg.orphan:
                raise MalformedMessage("segments outside any message (no MSH before them)")
            enc = read_encoding(msg.segments[0])
            self._message(msg, enc)
            if len(self.rows) >= SPILL_ROWS:
                self._spill()
        except MalformedMessage as exc:
            del self.groups[g_len:]
            del self.rows[o_len:]
            del self.rejects[r_len:]
            for identity in self._new_identities:
                del self.identities[identity]
            self.rejects.append(
                Reject(
                    position=f"m{msg.index}",
                    check_name=MALFORMED_MESSAGE,
                    reason=str(exc),
                    excerpt=segment_shape(msg.segments, enc),
                    message_control_id=self._control_id,
                )
            )

    def _message(self, msg: RawMessage, enc: Encoding) -> None:
        fs, cs, rs, ec = enc.fs, enc.cs, enc.rs, enc.ec
        segs = msg.segments
        h = segs[0].split(fs)
        if len(h) < 12:
            h.extend(_PAD[: 12 - len(h)])
        control_id = self._control_id = first_component(h[9], enc) or None
        app = hd_name(h[2], enc)
        facility = hd_name(h[3], enc)
        cfg = self.state.config_for(app)
        tz = cfg.timezone
        mtype = h[8].split(cs)
        code = mtype[0].strip()
        trigger = mtype[1].strip() if len(mtype) > 1 else ""
        if f"{code}^{trigger}" not in cfg.message_types and not (code == "ORU" and not trigger):
            raise MalformedMessage(
                f"message type {redact.token(code)}^{redact.token(trigger)} is not a result "
                "message this feed accepts"
            )
        try:
            message_at = parse_dtm_us(first_component(h[6], enc), tz)
        except BadTimestamp:
            raise MalformedMessage("MSH-7 is not a valid HL7 timestamp") from None
        if message_at is None:
            raise MalformedMessage("MSH-7 (message date/time) is empty")
        version = first_component(h[11], enc) or None
        self.apps.add(app)

        groups = self.groups
        rows = self.rows
        valid_ids = self.state.segment_ids
        mi = msg.index

        patient_key: str | None = None
        birth_year: int | None = None
        sex: str | None = None
        has_order = False  # an OBR (or SPM) seen since the message / patient group began
        filler = placer = order_status = None
        obr_collected = None
        obr_collected_bad = False
        gid = -1  # current group row

        for j in range(1, len(segs)):
            seg = segs[j]
            tag = seg[:3]
            if len(seg) > 3 and seg[3] != fs:
                raise MalformedMessage(f"segment s{j}: id is not 3 upper-case letters/digits")
            if tag == "OBX":
                if not has_order:
                    raise MalformedMessage(f"segment s{j}: OBX with no OBR before it")
                f = seg.split(fs)
                if len(f) < 18:
                    f.extend(_PAD[: 18 - len(f)])
                code = f[3]
                c = code.split(cs)
                if ec in code:
                    c = [unescape(x, enc) for x in c]
                if len(c) < 6:
                    c.extend(_PAD[: 6 - len(c)])
                vtype = f[2].strip()
                original, num, comp, text, error = _value(vtype, f[5], enc)
                observed = None
                obs_bad = False
                ob = f[14]
                if ob:
                    if cs in ob or rs in ob or ec in ob:
                        ob = first_component(ob, enc)
                    try:
                        observed = parse_dtm_us(ob, tz)
                    except BadTimestamp:
                        obs_bad = True
                collected = obr_collected if obr_collected is not None else observed
                if collected is None and (obr_collected_bad or obs_bad) and error is None:
                    error = "collection time (OBR-7, else OBX-14) is not a valid HL7 timestamp"
                if error is not None or patient_key is None:
                    position = f"m{mi}/s{j}"
                    excerpt = _obx_excerpt(c[0], vtype, original)
                    if patient_key is None:
                        reject = Reject(
                            position,
                            MISSING_PATIENT_ID,
                            "PID-3 (patient identifier) is empty or there is no PID",
                            excerpt,
                            control_id,
                        )
                    else:
                        reject = Reject(position, UNPARSEABLE_VALUE, error, excerpt, control_id)
                    self.rejects.append(reject)
                    continue
                if gid < 0:
                    gid = len(groups)
                    groups.append(
                        (app, patient_key, control_id, facility, version, message_at, mi,
                         filler, placer, order_status, birth_year, sex)
                    )  # fmt: skip
                unit = f[6]
                if unit:
                    u = unit.split(cs, 2)
                    unit = u[0] or (u[1] if len(u) > 1 else "")
                    if ec in unit:
                        unit = unescape(unit, enc)
                sub, rr, flags, method = f[4], f[7], f[8], f[17]
                if ec in sub:
                    sub = unescape(sub, enc)
                if ec in rr:
                    rr = unescape(rr, enc)
                if cs in flags or ec in flags or (rs in flags and rs != "~"):
                    flags = _flags(flags, enc)
                if method:
                    method = _coded_text(method, enc)
                rows.append(
                    (gid, j, collected, observed, c[0] or None, c[1] or None, c[2] or None,
                     c[3] or None, c[4] or None, c[5] or None, sub or None, vtype or None,
                     original, unit or None, num, comp, text, rr or None, flags or None,
                     f[11].strip() or None, method or None)
                )  # fmt: skip
            elif tag == "OBR":
                f = seg.split(fs)
                if len(f) < 26:
                    f.extend(_PAD[: 26 - len(f)])
                has_order = True
                placer = first_component(f[2], enc) or None
                filler = first_component(f[3], enc) or None
                order_status = first_component(f[25], enc) or None
                try:
                    obr_collected = parse_dtm_us(first_component(f[7], enc), tz)
                    obr_collected_bad = False
                except BadTimestamp:
                    obr_collected, obr_collected_bad = None, True
                gid = -1
            elif tag == "PID":
                has_order = False
                filler = placer = order_status = obr_collected = None
                obr_collected_bad = False
                patient_key, birth_year, sex = self._patient(seg, enc, facility or app)
                gid = -1
            elif tag == "SPM":  # OUL^R2x specimen observations follow SPM, not OBR
                has_order = True
            elif tag not in valid_ids:
                if not SEGMENT_ID.match(tag):
                    raise MalformedMessage(f"segment s{j}: id is not 3 upper-case letters/digits")
                valid_ids.add(tag)

    def _patient(self, seg: str, enc: Encoding, fallback: str):
        """PID → (patient_key, birth_year, sex); every PID-3 repetition to the identities.

        ``fallback``: the namespace when PID-3.4 is empty (MSH-4, else MSH-3).
        """
        cache = self.state.patients
        hit = cache.get((seg, fallback))
        if hit is None:
            if len(cache) >= PATIENT_CACHE_SIZE:
                cache.clear()
            hit = cache[(seg, fallback)] = _read_patient(
                seg, enc, fallback, self.state.pseudonymize
            )
        identities = self.identities
        for identity in hit[3]:
            if identity not in identities:
                identities[identity] = None
                self._new_identities.append(identity)
        return hit[0], hit[1], hit[2]

    # -- the chunk's result ------------------------------------------------------------
    def _spill(self) -> None:
        """Turn the row tuples into a polars frame (keeps Python-object memory small)."""
        if self.rows:
            raw = {n: (pl.Int64 if n in TIMESTAMP_COLUMNS else SCHEMA[n]) for n in SCHEMA}
            group_cols = list(zip(*self.groups, strict=True))
            groups = pl.DataFrame(
                {name: group_cols[i] for i, name in enumerate(GROUP_COLUMNS)},
                schema={name: raw[name] for name in GROUP_COLUMNS},
            )
            obx_cols = list(zip(*self.rows, strict=True))
            idx = pl.Series("_g", obx_cols[0], dtype=pl.UInt32)
            obx = pl.DataFrame(
                {name: obx_cols[i + 1] for i, name in enumerate(OBX_COLUMNS)},
                schema={name: raw[name] for name in OBX_COLUMNS},
            )
            spread = groups.select(pl.all().gather(idx))
            self.frames.append(pl.concat([spread, obx], how="horizontal"))
        self.groups.clear()
        self.rows.clear()

    def frame(self) -> pl.DataFrame:
        """Staged columns before normalization (normalization fills loinc_code … method)."""
        self._spill()
        if self.frames:
            df = pl.concat(self.frames, how="vertical")
        else:
            df = pl.DataFrame(schema={n: SCHEMA[n] for n in (*GROUP_COLUMNS, *OBX_COLUMNS)})
        self.frames = []
        return df.with_columns(
            pl.lit(self.state.file_sha256, dtype=pl.String).alias("file_sha256"),
            pl.format("m{}/s{}", "message_index", "segment_index").alias("position"),
            pl.col("source_system").alias("sending_application"),
            pl.lit(None, dtype=pl.String).alias("loinc_code"),
            pl.lit(None, dtype=pl.String).alias("analyte"),
            pl.lit(False).alias("is_mapped"),
            pl.lit(None, dtype=pl.Float64).alias("value"),
            pl.lit(None, dtype=pl.String).alias("unit"),
            pl.lit(None, dtype=pl.Float64).alias("detection_limit"),
        ).select([pl.col(name).cast(dtype) for name, dtype in SCHEMA.items()])

    def result(self) -> ParseResult:
        df = self.frame()
        rejects = list(self.rejects)
        state = self.state
        if state.config is not None or len(self.apps) <= 1:
            app = next(iter(self.apps), "")
            df, unit_rejects = normalize_lab_results(
                df, local_codes=state.config_for(app).local_codes, catalog=state.catalog
            )
            rejects.extend(unit_rejects)
        else:  # several sending applications in one chunk: each with its own code map
            df = df.with_row_index("_order")
            parts = []
            for (app,), part in df.partition_by(
                "sending_application", maintain_order=True, as_dict=True
            ).items():
                out, unit_rejects = normalize_lab_results(
                    part, local_codes=state.config_for(app).local_codes, catalog=state.catalog
                )
                parts.append(out)
                rejects.extend(unit_rejects)
            df = pl.concat(parts).sort("_order").drop("_order")
        rejects.sort(key=_position_key)
        return ParseResult(
            rows=df.select(list(SCHEMA)),
            rejects=rejects,
            identities=[Identity(*fields) for fields in self.identities],
        )


def _read_patient(seg: str, enc: Encoding, fallback: str, pseudonymize) -> tuple:
    f = seg.split(enc.fs)
    if len(f) < 9:
        f.extend(_PAD[: 9 - len(f)])
    reps = []
    for rep in f[3].split(enc.rs):
        c = rep.split(enc.cs)
        if len(c) < 5:
            c.extend(_PAD[: 5 - len(c)])
        ident = unescape(c[0], enc).strip()
        if ident:
            reps.append((ident, hd_name(c[3], enc, ss=True), unescape(c[4], enc).strip()))
    birth_year, birth_date = birth_year_and_date(first_component(f[7], enc))
    sex = first_component(f[8], enc).strip() or None
    if not reps:
        return None, birth_year, sex, ()
    primary = next((r for r in reps if r[2].upper() == "MR"), reps[0])
    key = pseudonymize(primary[1] or fallback, primary[0])
    name = components(f[5].split(enc.rs, 1)[0], enc, 2)
    family = name[0].split(enc.ss, 1)[0] or None
    given = name[1] or None
    # Identity fields in order, as plain tuples (made into Identity once per chunk)
    identities = tuple(
        (key, authority or fallback, ident, id_type or None, family, given, birth_date)
        for ident, authority, id_type in reps
    )
    return key, birth_year, sex, identities


def _position_key(reject: Reject) -> tuple[int, int]:
    m, _, s = reject.position[1:].partition("/s")
    return int(m), int(s) if s else -1
