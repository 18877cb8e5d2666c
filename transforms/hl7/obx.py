"""OBX segments → staged row fields: one segment at a time (``read_obx``) or a whole batch
at once with polars string expressions (``read_obx_batch``).

``read_obx`` is the definition: every rule of docs/hl7.md for one OBX. ``read_obx_batch``
does the same work in Rust (polars) for the common case and hands back every segment it
cannot prove it reads identically; the caller runs ``read_obx`` on those. A segment is read
by the batch only when all of this holds (else it goes to ``read_obx``):

- its message uses the default encoding characters ``|^~\\&`` and the segment holds only
  printable ASCII without the escape character ``\\`` (so no escapes, and Python's
  ``str.strip``/``\\s``/``\\d``/``float`` agree with polars' on every character);
- its order's OBR-7 is readable (or empty) and its OBX-14 is readable (or empty);
- its OBX-5 is read by a rule below without ambiguity: ``NM`` empty, blank, repeated, or a
  number with an optional comparator (``_NUMBER``); ``SN`` as ``[comparator]^number``; any
  value of ``ST``, the coded types and the other types.
Anything else (``NM`` like ``1e5``, SN ranges, values that are rejects) takes the Python
path, so results never depend on which path read a segment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import polars as pl

from transforms import redact
from transforms.hl7.parse import Encoding, components, first_component, unescape
from transforms.hl7.timestamps import BadTimestamp, parse_dtm_us

COMPARATORS = frozenset({"<", "<=", ">", ">="})
SN_COMPARATORS = COMPARATORS | {"", "="}  # SN-1 values that leave a plain number
CODED_TYPES = frozenset({"CWE", "CE", "CNE", "CF", "CV"})
_NUM = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_NUMBER = re.compile(rf"\s*(<=|>=|<|>)?\s*({_NUM})\s*")
_PAD = [""] * 32
# a value without OBX-2 is read as ST: its number when it is one (`18.4`, `<5`), else text
_UNTYPED = "ST"
# text types whose whole value, when it is a number with an optional comparator, is read as
# one too (analysers send E2 as TX `< 5.00`)
NUMBER_TEXT_TYPES = frozenset({_UNTYPED, "TX"})

# OBX fields after segment_index, in the order read_obx returns them
OBX_FIELDS = (
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
        if enc.rs in raw:  # repeated SN (`<^5~^30`): no single number, as for NM
            return original, None, None, original, None
        c = components(raw, enc, 4)
        comp, num1, sep, num2 = c[0].strip(), c[1].strip(), c[2].strip(), c[3].strip()
        if sep or num2:  # range or ratio (`^10^-^20`, `^1^:^40`): text
            return original, None, None, f"{comp}{num1}{sep}{num2}", None
        if not num1:
            if not comp:
                return original, None, None, None, None
            # the whole value in SN-1 (`165.6`, `<0.5`: senders that drop the caret); read
            # as the number it unambiguously is, like the same text sent as ST
            num, sent_comp = _number(comp)
            if num is None:
                return original, None, None, None, "OBX-5 of type SN has no number"
            return original, num, sent_comp, None, None
        num, extra = _number(num1)
        if num is None or extra is not None or comp not in SN_COMPARATORS:
            return original, None, None, None, "OBX-5 of type SN is not comparator^number"
        return original, num, comp if comp in COMPARATORS else None, None, None
    if vtype in CODED_TYPES:
        return original, None, None, _coded_text(raw, enc), None
    if vtype in NUMBER_TEXT_TYPES:  # a plain number sent as ST/TX (`<5`) also gets its number
        num, comp = _number(original)
        return original, num, comp, original, None
    return original, None, None, original, None


def _flags(raw: str, enc: Encoding) -> str:
    """OBX-8: component 1 of each repetition, joined with '~'."""
    return "~".join(first_component(r, enc) for r in raw.split(enc.rs))


def _coded_text(raw: str, enc: Encoding) -> str | None:
    """Text of a CE/CWE field (component 2, else 1), first repetition."""
    if not raw:
        return None
    c = components(raw.split(enc.rs, 1)[0], enc, 2)
    return c[1] or c[0] or None


def obx_excerpt(code: str, vtype: str, value: str | None) -> str:
    """What a rejected OBX shows (transforms.redact): the code as a token, the value as it
    is only when it looks like data (`0 .07`), else by its shape (a name typed into it)."""
    return f"OBX-3 {redact.token(code)} | OBX-2 {redact.token(vtype)} | OBX-5 {redact.shown(value)}"


def read_obx(
    seg: str, enc: Encoding, tz: str, obr_collected: int | None, obr_collected_bad: bool
) -> tuple[tuple, str | None, str]:
    """One OBX → (fields in OBX_FIELDS order, error or None, de-identified excerpt).

    ``obr_collected``: the order's OBR-7 (µs, facility-local), ``obr_collected_bad`` when
    OBR-7 was sent but unreadable. An error makes the OBX an ``unparseable_value`` reject.
    """
    fs, cs, rs, ec = enc.fs, enc.cs, enc.rs, enc.ec
    f = seg.split(fs)
    if len(f) < 18:
        f.extend(_PAD[: 18 - len(f)])
    code = f[3]
    c = code.split(cs)
    if ec in code:
        c = [unescape(x, enc) for x in c]
    if len(c) < 6:
        c.extend(_PAD[: 6 - len(c)])
    # OBX-2 and OBX-11 are ID fields, but some senders code them (`NM^^HL70125`,
    # `F^Final results^HL70085`): component 1 is the code
    vtype = first_component(f[2], enc).strip()
    original, num, comp, text, error = _value(vtype or _UNTYPED, f[5], enc)
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
    if collected is None and error is None:
        if obr_collected_bad or obs_bad:
            error = "collection time (OBR-7, else OBX-14) is not a valid HL7 timestamp"
        elif original is not None:  # a value that cannot be placed on the patient's timeline
            error = "no collection time: OBR-7 and OBX-14 are both empty"
        # (an empty placeholder, e.g. status I "results pending", loads without one)
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
    fields = (
        collected, observed, c[0] or None, c[1] or None, c[2] or None, c[3] or None,
        c[4] or None, c[5] or None, sub or None, vtype or None, original, unit or None, num,
        comp, text, rr or None, flags or None, first_component(f[11], enc).strip() or None,
        method or None,
    )  # fmt: skip
    return fields, error, obx_excerpt(c[0], vtype, original)


# -- the batch path ------------------------------------------------------------------------
# what read_obx_batch needs to know of each segment's order and message
CONTEXT_SCHEMA = {
    "_obr_collected": pl.Int64,  # OBR-7, µs facility-local
    "_obr_bad": pl.Boolean,  # OBR-7 sent but unreadable
    "_obr_text": pl.String,  # the OBR-7 text _obr_collected was read from
    "_tz": pl.String,  # the message's time zone
    "_default_enc": pl.Boolean,  # the message uses |^~\\&
}
_PLAIN = r"^[ -\[\]-~]*$"  # printable ASCII without the escape character
# _NUMBER, anchored; ASCII digits and spaces (rows with other characters are not read here)
_ASCII_NUM = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_LOOSE = rf"^ *(<=|>=|<|>)? *({_ASCII_NUM}) *$"
_SN = rf"^(<=|>=|<|>|=)?\^({_ASCII_NUM})$"


def _text(e: pl.Expr) -> pl.Expr:
    """'' → NULL (the Python side's ``x or None``)."""
    return pl.when(e != "").then(e)


def _part(col: str, i: int) -> pl.Expr:
    """Item ``i`` of a list column, '' when absent (Python's padded split)."""
    return pl.col(col).list.get(i, null_on_oob=True).fill_null("")


def _field(i: int) -> pl.Expr:
    """Field ``i`` of the split segment."""
    return _part("_f", i)


def read_obx_batch(
    segments: Sequence[str],
    segment_index: Sequence[int],
    context: pl.DataFrame,
) -> pl.DataFrame:
    """OBX segments → frame: ``segment_index``, OBX_FIELDS and ``_py``.

    ``context`` has one row per segment, columns ``CONTEXT_SCHEMA``. Rows with ``_py`` true
    were not read (their other columns are meaningless): run ``read_obx`` on them.
    """
    df = pl.DataFrame(
        {"_seg": segments, "segment_index": segment_index},
        schema={"_seg": pl.String, "segment_index": pl.Int64},
    ).hstack(context)
    df = df.with_columns(pl.col("_seg").str.split("|").alias("_f")).with_columns(
        _field(2).str.extract(r"^([^~^]*)", 1).str.strip_chars().alias("_vt"),  # comp. 1
        _field(3).str.split("^").alias("_c"),
        _field(4).alias("_sub"),
        _field(5).alias("_raw"),
        _field(6).str.split("^").alias("_u"),
        _field(7).alias("_rr"),
        _field(8).str.replace_all(r"\^[^~]*", "").alias("_flags"),  # comp. 1 of each rep.
        _field(11).str.extract(r"^([^~^]*)", 1).str.strip_chars().alias("_status"),
        _field(14).str.extract(r"^([^~^]*)", 1).alias("_ob"),  # comp. 1 of rep. 1
        _field(17).str.split("~").list.first().str.split("^").alias("_m"),
        (~pl.col("_default_enc") | pl.col("_obr_bad") | ~pl.col("_seg").str.contains(_PLAIN)).alias(
            "_py"
        ),
    )
    raw, vt = pl.col("_raw"), pl.col("_vt")
    loose = raw.str.extract_groups(_LOOSE)
    sn = raw.str.extract_groups(_SN)
    first_rep = raw.str.split("~").list.first().str.split("^")
    is_nm, is_sn, is_st = vt == "NM", vt == "SN", vt.is_in([*NUMBER_TEXT_TYPES, ""])
    is_coded = vt.is_in(list(CODED_TYPES))
    nm_repeated = raw.str.contains("~", literal=True)
    df = df.with_columns(
        loose.struct.field("1").alias("_lcomp"),
        loose.struct.field("2").cast(pl.Float64, strict=False).alias("_lnum"),
        sn.struct.field("1").alias("_scomp"),
        sn.struct.field("2").cast(pl.Float64, strict=False).alias("_snum"),
        first_rep.alias("_v"),
        nm_repeated.alias("_rep"),
    )
    nm_number = is_nm & ~pl.col("_rep")
    unread = (
        (is_nm & (raw != "") & ~pl.col("_rep") & ~raw.str.contains(r"^ *$"))
        & pl.col("_lnum").is_null()
    ) | (is_sn & (raw != "") & pl.col("_snum").is_null())
    coded_text = (
        pl.when(_part("_v", 1) != "").then(_part("_v", 1)).when(_part("_v", 0) != "")
    ).then(_part("_v", 0))
    df = df.with_columns(
        (pl.col("_py") | unread).alias("_py"),
        pl.when(nm_number | is_st)
        .then(pl.col("_lnum"))
        .when(is_sn)
        .then(pl.col("_snum"))
        .alias("value_num_original"),
        pl.when(nm_number | is_st)
        .then(pl.col("_lcomp"))
        .when(is_sn & pl.col("_scomp").is_in(list(COMPARATORS)))
        .then(pl.col("_scomp"))
        .alias("comparator"),
        pl.when(raw == "")
        .then(None)
        .when(is_nm)
        .then(pl.when(pl.col("_rep")).then(raw))
        .when(is_sn)
        .then(None)
        .when(is_coded)
        .then(coded_text)
        .otherwise(raw)
        .alias("value_text"),
    )
    df = _observed(df)
    unit0, unit1 = _part("_u", 0), pl.col("_u").list.get(1, null_on_oob=True)
    m0, m1 = _part("_m", 0), _part("_m", 1)
    return df.select(
        "segment_index",
        pl.coalesce("_obr_collected", "_observed").alias("collected_at"),
        pl.col("_observed").alias("observed_at"),
        *(_text(_part("_c", i)).alias(OBX_FIELDS[2 + i]) for i in range(6)),
        _text(pl.col("_sub")).alias("sub_id"),
        _text(vt).alias("value_type"),
        _text(raw).alias("original_value"),
        _text(pl.when(unit0 != "").then(unit0).otherwise(unit1.fill_null(""))).alias(
            "original_unit"
        ),
        "value_num_original",
        "comparator",
        "value_text",
        _text(pl.col("_rr")).alias("reference_range"),
        _text(pl.col("_flags")).alias("abnormal_flags"),
        _text(pl.col("_status")).alias("result_status"),
        pl.when(m1 != "").then(m1).when(m0 != "").then(m0).alias("method"),
        # a value without any collection time is a reject, which read_obx words
        (
            pl.col("_py")
            | pl.col("_obs_bad")
            | (pl.coalesce("_obr_collected", "_observed").is_null() & (raw != ""))
        ).alias("_py"),
    )


def _observed(df: pl.DataFrame) -> pl.DataFrame:
    """OBX-14 → ``_observed`` (µs) and ``_obs_bad``. The same text as the order's OBR-7
    (usual) is the same time; every other distinct (text, zone) is parsed once by the
    shared ``parse_dtm_us``."""
    as_obr = pl.col("_ob") == pl.col("_obr_text")
    todo = (pl.col("_ob") != "") & ~as_obr & ~pl.col("_py")
    keys = df.filter(todo).select("_ob", "_tz").unique()
    values: list[int | None] = []
    bad: list[bool] = []
    for text, tz in zip(keys["_ob"].to_list(), keys["_tz"].to_list(), strict=True):
        try:
            values.append(parse_dtm_us(text, tz))
            bad.append(False)
        except BadTimestamp:
            values.append(None)
            bad.append(True)
    parsed = keys.with_columns(
        pl.Series("_parsed", values, dtype=pl.Int64),
        pl.Series("_obs_bad", bad, dtype=pl.Boolean),
    )
    return df.join(parsed, on=["_ob", "_tz"], how="left", maintain_order="left").with_columns(
        pl.when(as_obr).then(pl.col("_obr_collected")).otherwise("_parsed").alias("_observed"),
        pl.col("_obs_bad").fill_null(False),
    )
