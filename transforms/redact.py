"""How a cell may appear in a quarantine reason or excerpt (which quality teams read).

A rejected record is exactly where an identifier may sit in the wrong cell (a name typed into
a date, a shifted row), so cells are shown by rule, never verbatim by default:

- ``shape``: letters → ``a``, digits → ``9`` (``Müller`` → ``aaaaaa``, ``31/02/2023`` →
  ``99/99/9999``): says what was wrong without the text;
- ``shown``: numbers and comparators as they are, anything else (dates, ``123-45-6789``) by its
  shape;
- ``token``: short one-word codes and units as they are (``pg/mL``, ``E2SENS``, ``puff``) so a mapping
  can be fixed, but a long all-letter word (a name) or an MRN-like letters+digits run by its
  shape. A heuristic: it is the second line of defence behind never quoting identity cells.
"""

from __future__ import annotations

import re

# a number as labs write it: an optional comparator and sign, then digits with spaces, dots or
# commas (`<5`, `0 .07`, `-1.2`, `1,364`); a hyphen or slash between digit groups is not data
# but may be a birth date, a phone or a social security number (`1958-03-12`, `123-45-6789`)
_DATA_LIKE = re.compile(r"^\s*(?:<=|>=|<|>|=)?\s*[+\-]?[0-9.,][0-9\s.,]*$|^\s*$")
_TOKEN = re.compile(r"^[A-Za-z0-9/\[\]%.*^_-]{1,12}$")  # one word: no spaces
_NAME_LIKE = re.compile(r"^[A-Za-z]{5,}$|[A-Za-z]{5,}\s+[A-Za-z]{2,}")
_ID_LIKE = re.compile(r"^[A-Za-z]{1,4}\d{5,}$|^\d{6,}$")
# what no lab writes as one number but a date or a phone is: two or more dots or commas
# (`12.03.1958`, `12,03,58`; `1.364.000` goes with them: its shape still says what it is),
# three or more digit groups split by spaces (`555 867 5309`), or more than six digits
# without a decimal separator (`5550102`); a decimal (`0.0001234`, `12345.67`) is a value
_SPLIT_LIKE = re.compile(r"[.,].*[.,]|\d\s+\d+\s+\d")
_DECIMAL = re.compile(r"^\s*(?:<=|>=|<|>|=)?\s*[+\-]?\d*[.,]\d+\s*$")


def shape(cell: str | None, limit: int = 24) -> str:
    if cell is None:
        return "(empty)"
    out = "".join("a" if ch.isalpha() else "9" if ch.isdigit() else ch for ch in cell)
    return out[:limit] + ("…" if len(out) > limit else "")


def shown(cell: str | None) -> str:
    if cell is None:
        return ""
    number_like = (
        _DATA_LIKE.match(cell)
        and not _ID_LIKE.match(cell.strip())
        and not _SPLIT_LIKE.search(cell)
        and (sum(ch.isdigit() for ch in cell) <= 6 or _DECIMAL.match(cell))
    )
    return cell if number_like else shape(cell)


def token(cell: str | None) -> str:
    if cell is None:
        return ""
    text = cell.strip()
    if _TOKEN.match(text) and not _NAME_LIKE.search(text) and not _ID_LIKE.match(text):
        return text
    return shape(text)
