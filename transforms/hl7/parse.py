"""HL7 v2 encoding characters, escape sequences, components and repetitions.

Encoding characters are read from each message's MSH-1 (field separator) and MSH-2
(component, repetition, escape, subcomponent [, truncation]); nothing assumes ``|^~\\&``.
Only text that contains the escape character goes through ``unescape``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SEGMENT_ID = re.compile(r"[A-Z0-9]{3}\Z")


class MalformedMessage(ValueError):
    """A message that cannot be parsed. The text says why, and never quotes field content."""


@dataclass(frozen=True, slots=True)
class Encoding:
    fs: str  # field separator (MSH-1)
    cs: str  # component separator
    rs: str  # repetition separator
    ec: str  # escape character
    ss: str  # subcomponent separator


DEFAULT_ENCODING = Encoding("|", "^", "~", "\\", "&")


def read_encoding(msh: str) -> Encoding:
    """Encoding characters of a message from its MSH segment text."""
    if len(msh) < 8 or not msh.startswith("MSH"):
        raise MalformedMessage("MSH segment is missing or too short")
    fs = msh[3]
    end = msh.find(fs, 4)
    chars = msh[4:] if end < 0 else msh[4:end]
    if len(chars) not in (4, 5):
        raise MalformedMessage(f"MSH-2 holds {len(chars)} encoding characters, expected 4 or 5")
    if chars == "^~\\&" and fs == "|":
        return DEFAULT_ENCODING
    every = fs + chars
    if len(set(every)) != len(every) or any(c.isalnum() or c.isspace() for c in every):
        raise MalformedMessage(
            "MSH-1/MSH-2 encoding characters must be distinct and not letters, digits or spaces"
        )
    return Encoding(fs, chars[0], chars[1], chars[2], chars[3])


def _escape_value(seq: str, enc: Encoding) -> str:
    if seq == "F":
        return enc.fs
    if seq == "S":
        return enc.cs
    if seq == "T":
        return enc.ss
    if seq == "R":
        return enc.rs
    if seq == "E":
        return enc.ec
    if seq == ".br" or seq == ".sp":
        return "\n"
    if seq[:1] == "X" and len(seq) > 1:
        try:
            raw = bytes.fromhex(seq[1:])
        except ValueError:
            return enc.ec + seq + enc.ec
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("latin-1")
    if seq in ("H", "N") or seq[:1] in ("C", "M") or seq[:1] == ".":
        return ""  # highlighting, character-set switches, other formatting: no text
    return enc.ec + seq + enc.ec  # unknown escape: keep the text as sent


def unescape(text: str, enc: Encoding) -> str:
    """Replace escape sequences (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xdd..\\ \\.br\\ …) in one value."""
    ec = enc.ec
    if ec not in text:
        return text
    parts = text.split(ec)
    out = [parts[0]]
    i, n = 1, len(parts)
    while i < n:
        if i + 1 < n:  # a closed sequence: parts[i] is its body
            out.append(_escape_value(parts[i], enc))
            out.append(parts[i + 1])
            i += 2
        else:  # an escape character without its closing one: literal
            out.append(ec + parts[i])
            i += 1
    return "".join(out)


def components(field: str, enc: Encoding, n: int) -> list[str]:
    """The first ``n`` components of a field, unescaped, padded with ''."""
    comps = field.split(enc.cs)
    if enc.ec in field:
        comps = [unescape(c, enc) for c in comps]
    if len(comps) < n:
        comps.extend([""] * (n - len(comps)))
    return comps


def valued(text: str) -> str | None:
    """A field's text, or None when it is empty or the HL7 null ``""`` ("no value"), which
    must never become an identifier (every patient sent with ``""`` would be one)."""
    return None if text in ("", '""') else text


def first_component(field: str, enc: Encoding) -> str:
    """Component 1 of the first repetition, unescaped."""
    if enc.cs in field or enc.rs in field:
        field = field.split(enc.rs, 1)[0].split(enc.cs, 1)[0]
    return unescape(field, enc) if enc.ec in field else field


def hd_name(field: str, enc: Encoding, ss: bool = False) -> str:
    """Name of a hierarchic designator (HD): namespace id, else universal id.

    ``ss=True`` when the HD sits inside a component (PID-3.4), so its parts are subcomponents.
    """
    sep = enc.ss if ss else enc.cs
    parts = field.split(sep)
    name = parts[0] or (parts[1] if len(parts) > 1 else "")
    return unescape(name, enc).strip()


def segment_shape(segments: list[str], enc: Encoding | None, limit: int = 30) -> str:
    """De-identified excerpt of a message: segment ids and field counts only."""
    fs = enc.fs if enc else "|"
    shown = []
    for seg in segments[:limit]:
        sid = seg[:3]
        sid = sid if SEGMENT_ID.match(sid) else "???"
        shown.append(f"{sid}({seg.count(fs)})")
    more = len(segments) - limit
    return " ".join(shown) + (f" … +{more} segments" if more > 0 else "")
