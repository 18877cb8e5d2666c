"""Messages → staged lab rows (one per OBX), rejects and identities, one chunk at a time.

The loop touches each segment once: it dispatches on the first three characters and splits
only MSH, PID and OBR into fields; an OBX is kept as text (with its group) and read later,
20,000 at a time, by ``transforms.hl7.obx`` (polars, and ``read_obx`` for what the batch
leaves). Values that repeat for every OBX of a group (message, patient, order) are kept once
per group and spread over the rows by polars, so a chunk becomes one DataFrame built from
plain Python lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from schemas.staging import StgLabResult, columns_of
from transforms import redact
from transforms.catalog import Catalog
from transforms.hl7.config import Hl7Config, load_hl7_config
from transforms.hl7.framing import RawMessage
from transforms.hl7.obx import CONTEXT_SCHEMA, OBX_FIELDS, read_obx, read_obx_batch
from transforms.hl7.parse import (
    DEFAULT_ENCODING,
    SEGMENT_ID,
    Encoding,
    MalformedMessage,
    components,
    first_component,
    hd_name,
    read_encoding,
    segment_shape,
    unescape,
    valued,
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
_PAD = [""] * 32
PATIENT_CACHE_SIZE = 20_000  # recent PID segments; bounded so memory stays flat
HEADER_CACHE_SIZE = 1_000  # distinct MSH-3/4/9/12 combinations
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
# a group in ChunkParser.groups: GROUP_COLUMNS, then its OBR-7 (µs, unreadable?, text as read),
# the message's time zone and encoding (None: the default one)
GROUP_WIDTH = len(GROUP_COLUMNS) + 5
OBX_COLUMNS = ("segment_index", *OBX_FIELDS)


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
    headers: dict[tuple, tuple] = field(default_factory=dict)  # MSH-3/4/9/12 → ChunkParser._header

    def config_for(self, sending_application: str) -> Hl7Config:
        if self.config is not None:
            return self.config
        cfg = self._configs.get(sending_application)
        if cfg is None:
            cfg = self._configs[sending_application] = load_hl7_config(sending_application)
        return cfg


class ChunkParser:
    """Parses messages one by one (``add``); ``result()`` makes the chunk's ParseResult."""

    def __init__(self, state: FileState) -> None:
        self.state = state
        # Flat lists of atomic values (no tuple per row: cheaper, and nothing for the
        # garbage collector to track). A group is GROUP_WIDTH values: GROUP_COLUMNS, then
        # what reading its OBX needs; an OBX is 3: group number, segment index, segment.
        self.groups: list = []
        self.rows: list = []
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
            if len(self.rows) >= 3 * SPILL_ROWS:
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
        fs = enc.fs
        segs = msg.segments
        h = segs[0].split(fs)
        if len(h) < 12:
            h.extend(_PAD[: 12 - len(h)])
        control_id = self._control_id = first_component(h[9], enc) or None
        # what MSH-3/4/9/12 give is the same for every message of a sender: read it once
        header = (h[2], h[3], h[8], h[11], enc)
        known = self.state.headers.get(header)
        if known is None:
            if len(self.state.headers) >= HEADER_CACHE_SIZE:
                self.state.headers.clear()
            known = self.state.headers[header] = self._header(h, enc)
        app, facility, cfg, version, type_error, specimen_first = known
        if type_error:
            raise MalformedMessage(type_error)
        tz = cfg.timezone
        msh_time = first_component(h[6], enc)  # an OBR-7 with the same text: the same time
        try:
            message_at = parse_dtm_us(msh_time, tz)
        except BadTimestamp:
            raise MalformedMessage("MSH-7 is not a valid HL7 timestamp") from None
        if message_at is None:
            raise MalformedMessage("MSH-7 (message date/time) is empty")
        self.apps.add(app)

        groups = self.groups
        rows = self.rows
        own_enc = None if enc is DEFAULT_ENCODING else enc  # atomic values in the common case
        valid_ids = self.state.segment_ids
        mi = msg.index

        patient_key: str | None = None
        birth_year: int | None = None
        sex: str | None = None
        has_order = False  # an OBR (or SPM) seen since the message / patient group began
        obr_seen = False  # an OBR seen since then (an SPM after it keeps the order's context)
        filler = placer = order_status = None
        obr_collected = None
        obr_collected_bad = False
        obr_text = ""  # OBR-7 as read: an OBX-14 with the same text has the same time
        spm_text = ""  # SPM-17 of the specimen whose orders follow: an empty OBR-7 takes it
        gid = -1  # current group row

        for j in range(1, len(segs)):
            seg = segs[j]
            tag = seg[:3]
            if len(seg) > 3 and seg[3] != fs:
                raise MalformedMessage(f"segment s{j}: id is not 3 upper-case letters/digits")
            if tag == "OBX":
                if not has_order:
                    raise MalformedMessage(f"segment s{j}: OBX with no OBR before it")
                if patient_key is None:
                    _, _, excerpt = read_obx(seg, enc, tz, obr_collected, obr_collected_bad)
                    self.rejects.append(
                        Reject(
                            f"m{mi}/s{j}",
                            MISSING_PATIENT_ID,
                            "PID-3 (patient identifier) is empty or there is no PID",
                            excerpt,
                            control_id,
                        )
                    )
                    continue
                if gid < 0:
                    gid = len(groups) // GROUP_WIDTH
                    groups.extend(
                        (app, patient_key, control_id, facility, version, message_at, mi,
                         filler, placer, order_status, birth_year, sex,
                         obr_collected, obr_collected_bad, obr_text, tz, own_enc)
                    )  # fmt: skip
                rows.extend((gid, j, seg))  # read per batch in _spill (transforms.hl7.obx)
            elif tag == "OBR":
                f = seg.split(fs)
                if len(f) < 26:
                    f.extend(_PAD[: 26 - len(f)])
                has_order = obr_seen = True
                placer = valued(first_component(f[2], enc))
                filler = valued(first_component(f[3], enc))
                order_status = first_component(f[25], enc) or None
                obr_text = first_component(f[7], enc) or spm_text
                obr_collected, obr_collected_bad = _order_time(obr_text, msh_time, message_at, tz)
                gid = -1
            elif tag == "PID":
                has_order = obr_seen = False
                filler = placer = order_status = obr_collected = None
                obr_collected_bad = False
                obr_text = spm_text = ""
                patient_key, birth_year, sex = self._patient(seg, enc, facility or app)
                gid = -1
            elif tag == "SPM":
                # in ORU (and OUL^R24, order first) an SPM before any OBR opens nothing its
                # OBX could belong to: they stay "OBX with no OBR before it"
                has_order = has_order or specimen_first or obr_seen
                if not obr_seen or specimen_first:
                    # OUL^R22/R23: an SPM opens a specimen group (its own OBX, then its orders);
                    # the collection time is SPM-17 (a range: start, component 1), for the
                    # orders too when their OBR-7 is empty. In ORU^R01 2.5.1 (OBR, OBX…,
                    # SPM, OBX…) an SPM after an OBR belongs to that order: its numbers and
                    # OBR-7 stay.
                    f = seg.split(fs)
                    # SPM-17 is a DR whose start is a TS: from 2.5 its own parts are
                    # subcomponents (`20230105081500&S^…`, the deprecated precision after &)
                    start = first_component(f[17], enc) if len(f) > 17 else ""
                    obr_text = spm_text = start.split(enc.ss, 1)[0]
                    obr_collected, obr_collected_bad = _order_time(
                        obr_text, msh_time, message_at, tz
                    )
                    if obr_seen:  # the previous specimen's order numbers are not this one's
                        filler = placer = order_status = None
                    gid = -1
            elif tag not in valid_ids:
                if not SEGMENT_ID.match(tag):
                    raise MalformedMessage(f"segment s{j}: id is not 3 upper-case letters/digits")
                valid_ids.add(tag)

    def _header(self, h: list[str], enc: Encoding) -> tuple:
        """MSH fields → (sending application, facility, its config, version, type error,
        whether an SPM opens a specimen group whose orders follow it: OUL^R22 and R23,
        specimen first; OUL^R24 is order first, its SPM belongs to the OBR before it)."""
        app = hd_name(h[2], enc)
        facility = hd_name(h[3], enc)
        cfg = self.state.config_for(app)
        mtype = h[8].split(enc.cs)
        code = mtype[0].strip()
        trigger = mtype[1].strip() if len(mtype) > 1 else ""
        error = None
        if f"{code}^{trigger}" not in cfg.message_types and not (code == "ORU" and not trigger):
            error = (
                f"message type {redact.token(code)}^{redact.token(trigger)} is not a result "
                "message this feed accepts"
            )
        version = first_component(h[11], enc) or None
        return app, facility, cfg, version, error, code == "OUL" and trigger in ("R22", "R23")

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
        """Read the held OBX segments as one batch and make them a polars frame (keeps
        Python-object memory small): ``read_obx_batch``, and ``read_obx`` for the segments
        the batch leaves to Python (escapes, other encodings, rejects, rare value forms)."""
        if self.rows:
            raw = {n: (pl.Int64 if n in TIMESTAMP_COLUMNS else SCHEMA[n]) for n in SCHEMA}
            group_cols = [self.groups[i::GROUP_WIDTH] for i in range(GROUP_WIDTH)]
            groups = pl.DataFrame(
                {name: group_cols[i] for i, name in enumerate(GROUP_COLUMNS)},
                schema={name: raw[name] for name in GROUP_COLUMNS},
            )
            n = len(GROUP_COLUMNS)
            context = pl.DataFrame(
                {
                    "_obr_collected": group_cols[n],
                    "_obr_bad": group_cols[n + 1],
                    "_obr_text": group_cols[n + 2],
                    "_tz": group_cols[n + 3],
                    "_default_enc": [e is None for e in group_cols[n + 4]],
                },
                schema=CONTEXT_SCHEMA,
            )
            gids, js, segs = self.rows[0::3], self.rows[1::3], self.rows[2::3]
            idx = pl.Series("_g", gids, dtype=pl.UInt32)
            obx = read_obx_batch(segs, js, context.select(pl.all().gather(idx)))
            obx = obx.with_columns(idx)
            leftover = obx["_py"].arg_true().to_list()
            if leftover:
                obx = self._read_leftover(obx, leftover, gids, js, segs)
            spread = groups.select(pl.all().gather(obx["_g"]))
            obx = obx.select(OBX_COLUMNS).cast({c: raw[c] for c in OBX_COLUMNS})
            self.frames.append(pl.concat([spread, obx], how="horizontal"))
        self.groups.clear()
        self.rows.clear()

    def _read_leftover(self, obx: pl.DataFrame, leftover: list[int], gids, js, segs):
        """Rows the batch did not read: ``read_obx`` each; errors become rejects."""
        kept: list[tuple] = []
        for i in leftover:
            start = gids[i] * GROUP_WIDTH
            group = self.groups[start : start + GROUP_WIDTH]
            obr_collected, obr_bad, _, tz, enc = group[len(GROUP_COLUMNS) :]
            enc = enc or DEFAULT_ENCODING
            fields, error, excerpt = read_obx(segs[i], enc, tz, obr_collected, obr_bad)
            if error is None:
                kept.append((i, gids[i], js[i], *fields))
            else:
                position = f"m{group[6]}/s{js[i]}"
                self.rejects.append(Reject(position, UNPARSEABLE_VALUE, error, excerpt, group[2]))
        columns = ("_row", "_g", "segment_index", *OBX_FIELDS)
        types = {"_row": pl.UInt32, "_g": pl.UInt32, "segment_index": pl.Int64}
        types.update({c: pl.Int64 if c in TIMESTAMP_COLUMNS else SCHEMA[c] for c in OBX_FIELDS})
        python = pl.DataFrame(kept, schema=types, orient="row")
        batch = obx.with_row_index("_row").filter(~pl.col("_py")).select(columns)
        return pl.concat([batch, python.select(columns)]).sort("_row")

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
        if state.config is not None or len(self.apps) <= 1 or df.height == 0:
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


def _order_time(text: str, msh_time: str, message_at: int, tz: str) -> tuple[int | None, bool]:
    """OBR-7 (or SPM-17.1) → (µs facility-local or None, sent but unreadable?); the same
    text as MSH-7 is the message's time."""
    try:
        return (message_at if text == msh_time else parse_dtm_us(text, tz)), False
    except BadTimestamp:
        return None, True


def _read_patient(seg: str, enc: Encoding, fallback: str, pseudonymize) -> tuple:
    f = seg.split(enc.fs)
    if len(f) < 9:
        f.extend(_PAD[: 9 - len(f)])
    reps = []
    for rep in f[3].split(enc.rs):
        c = rep.split(enc.cs)
        if len(c) < 5:
            c.extend(_PAD[: 5 - len(c)])
        ident = valued(unescape(c[0], enc).strip())
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
