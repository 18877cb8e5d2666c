"""CSV cells that a spreadsheet cannot execute (CSV / formula injection, OWASP).

Text cells starting with ``= + - @`` or a tab / carriage return are prefixed with a single
quote so that Excel, LibreOffice or Sheets show them as text. Numbers are left alone (a
negative number is data, not a formula).
"""

from __future__ import annotations

from typing import Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_TRIGGERS):
        return "'" + value
    return value


def safe_row(row) -> list:
    return [safe_cell(v) for v in row]
