"""Defensive masking of identifier-like text before it reaches a quality report.

Quarantine excerpts are de-identified by the parsers already; this is the second line of
defence for anything shown to quality teams (excerpts, reasons, file names): whole HL7
patient segments, HL7 person names (``FAMILY^GIVEN``), identifier-like tokens (``MRN0042``,
long digit runs such as ``19580312``) and full dates (kept to the year). Catalogued codes
that look like identifiers (RxNorm RxCUIs of config/medications.csv, e.g. ``199224``) stay.

Patterns cannot tell a name from a word (``SMITH_JOHN_labs.csv``), but the warehouse knows
the names and identifiers of its patients: given ``known`` (``known_words`` of the identity
store's names and identifiers), every word of the text that is one of them is masked too.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from transforms.catalog import CONFIG_DIR

MASK = "▒"

# HL7 segments that carry patient / next-of-kin / guarantor / insurance identity
_PATIENT_SEGMENTS = re.compile(r"\b(PID|PD1|NK1|GT1|IN1|IN2|MRG)\|[^\r\n]*")
# an HL7 XPN name as feeds send it: FAMILY^GIVEN[^…] in capitals
_XPN = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Z'-]+\^[A-Z][A-Z'-]+(?:\^[^|\r\n]*)?")
# letters then four or more digits: MRN0042, PAT12345, FIL000123 (also inside file names)
_PREFIXED_ID = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{1,8}[-#:]?\d{4,}(?![0-9])")
# a run of six or more digits not part of a decimal number: 19580312, 5551234567
_LONG_NUMBER = re.compile(r"(?<![\d.,])\d{6,}(?![\d]|[.,]\d)")
# full dates (ISO, US, European): the year is kept
_ISO_DATE = re.compile(r"(?<![0-9])((?:19|20|21|29)\d{2})-(\d{1,2})-(\d{1,2})(?![0-9])")
_DMY_DATE = re.compile(r"(?<![0-9])(\d{1,2})[/.](\d{1,2})[/.]((?:19|20)\d{2})(?![0-9])")


@lru_cache(maxsize=1)
def catalogued_codes() -> frozenset[str]:
    """Codes of the configuration that are not identifiers although they look like them."""
    with open(CONFIG_DIR / "medications.csv", newline="", encoding="utf-8") as fh:
        return frozenset(r["rxnorm_code"].strip() for r in csv.DictReader(fh))


def _unless_catalogued(match: re.Match) -> str:
    token = match.group(0)
    return token if token in catalogued_codes() else MASK * 3


# a word: a run of letters or digits of any script (underscores and punctuation split words)
_WORD = re.compile(r"[^\W_]+")


_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "ø": "oe"})


def _folded(word: str) -> set[str]:
    """The spellings a name is written in: case-folded, without accents (García → garcia),
    and German-transliterated (Müller → mueller)."""
    folded = unicodedata.normalize("NFC", word.casefold())
    bare = "".join(
        ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch)
    )
    return {folded, bare, folded.translate(_TRANSLIT)}


def known_words(values: Iterable[str | None]) -> frozenset[str]:
    """The spellings (``_folded``) of the words, two characters or more, of names and
    identifiers."""
    return frozenset(
        spelling
        for v in values
        if v
        for w in _WORD.findall(unicodedata.normalize("NFC", v))
        if len(w) >= 2
        for spelling in _folded(w)
    )


def _is_known(word: str, known: frozenset[str]) -> bool:
    if not _folded(word).isdisjoint(known):
        return True
    parts = _joined_parts(word)
    return len(parts) > 1 and any(not _folded(p).isdisjoint(known) for p in parts)


def _joined_parts(word: str) -> list[str]:
    """The parts of a joined word (any script): JohnSmith, OBrien, SMITHJohn, MüllerGarcía,
    Smith2 — a new part at a lower → upper case step, before the last capital of a capital
    run followed by a lower-case letter, and between letters and digits."""
    parts, start = [], 0
    for i in range(1, len(word)):
        prev, ch = word[i - 1], word[i]
        nxt = word[i + 1] if i + 1 < len(word) else ""
        if (
            (prev.islower() and ch.isupper())
            or (prev.isupper() and ch.isupper() and nxt.islower())
            or (prev.isdigit() != ch.isdigit())
        ):
            parts.append(word[start:i])
            start = i
    parts.append(word[start:])
    return parts


# identifiers shorter than this (`42`, `ID`) would mask ordinary ids by chance
MIN_IDENTIFIER_LENGTH = 4


def identifier_spelling(identifier: str | None) -> str | None:
    """How an identifier is looked for inside an id a sender chose: NFC, lower-case; None when
    shorter than ``MIN_IDENTIFIER_LENGTH``."""
    if not identifier:
        return None
    spelled = unicodedata.normalize("NFC", identifier).lower()
    return spelled if len(spelled) >= MIN_IDENTIFIER_LENGTH else None


def mask_identifiers_in(text: str | None, identifiers: Iterable[str]) -> str | None:
    """An id a sender chose (order number, message id) with every occurrence of the given
    identifiers (``identifier_spelling``s), in any case, replaced by ``▒▒▒``: the MRN inside
    `LGZKXXR5_20200323151748`, `ORDLGZKXXR5` or `LGZKXXR520200323`."""
    if not text:
        return text
    spelled = sorted({i for i in identifiers if i}, key=len, reverse=True)
    if not spelled:
        return text
    pattern = re.compile("|".join(re.escape(i) for i in spelled), re.IGNORECASE)
    return pattern.sub(MASK * 3, unicodedata.normalize("NFC", text))


def mask_known_words(text: str, known: frozenset[str]) -> str:
    """``text`` with every word that is (or joins) a ``known`` word replaced by ``▒▒▒``."""
    return _WORD.sub(
        lambda m: MASK * 3 if _is_known(m.group(0), known) else m.group(0),
        unicodedata.normalize("NFC", text),
    )


def mask_identifiers(text: str | None, known: frozenset[str] = frozenset()) -> str:
    """``text`` with identifier-like parts and ``known`` words replaced by ``▒`` marks
    (None → '')."""
    if not text:
        return ""
    out = mask_known_words(text, known) if known else text
    out = _PATIENT_SEGMENTS.sub(lambda m: m.group(1) + "|" + MASK * 3, out)
    out = _XPN.sub(MASK * 3, out)
    out = _ISO_DATE.sub(lambda m: f"{m.group(1)}-{MASK * 2}-{MASK * 2}", out)
    out = _DMY_DATE.sub(lambda m: f"{MASK * 2}/{MASK * 2}/{m.group(3)}", out)
    out = _PREFIXED_ID.sub(MASK * 3, out)
    out = _LONG_NUMBER.sub(_unless_catalogued, out)
    return out
