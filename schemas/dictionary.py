"""The data dictionary, generated from the Pandera models (the one schema source).

- ``table_models()``: every documented table (staged, core, marts) → its model.
- ``apply_comments(con)``: DuckDB ``COMMENT ON TABLE / COLUMN`` from the models' docstrings
  and field descriptions, for the tables that exist in ``con`` (writer or published copy).
- ``render_data_dictionary()``: the analysts' markdown page ``docs/data_dictionary.md``.
  Regenerate it after changing a model::

      .venv/bin/python -m schemas.dictionary > docs/data_dictionary.md

  (tests/unit/test_data_dictionary.py fails when the page drifts from the code).
"""

from __future__ import annotations

import re
import sys

import pandera.polars as pa
import polars as pl

from schemas.core import CORE_MODELS
from schemas.quality import QUALITY_MODELS

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")

_DUCKDB_TYPES = {
    pl.String: "VARCHAR",
    pl.Float64: "DOUBLE",
    pl.Int64: "BIGINT",
    pl.Int32: "INTEGER",
    pl.Boolean: "BOOLEAN",
    pl.Date: "DATE",
    pl.Datetime: "TIMESTAMP",
}


def table_models() -> dict[str, type[pa.DataFrameModel]]:
    """Table name (``schema.table``) → Pandera model: staged, core, marts, then bookkeeping."""
    from warehouse.ingest import MODELS as STAGED_MODELS  # the loader's own table → model map

    return {**STAGED_MODELS, **CORE_MODELS, **QUALITY_MODELS}


def sql_literal(text: str) -> str:
    """The one audited place where text becomes a SQL string literal.

    DuckDB cannot bind a parameter in ``COMMENT ON … IS``, so the comment text (our own model
    descriptions, never data) is quoted here: single quotes doubled, NUL refused.
    """
    if "\x00" in text:
        raise ValueError("comment text contains NUL")
    return "'" + text.replace("'", "''") + "'"


def _identifier(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def comment_statements(con) -> list[str]:
    """``COMMENT ON`` statements for every modelled table and column present in ``con``."""
    present = {
        (s, t, c)
        for s, t, c in con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database()"
        ).fetchall()
    }
    tables = {(s, t) for s, t, _ in present}
    out: list[str] = []
    for name, model in table_models().items():
        schema_name, table = name.split(".")
        if (schema_name, table) not in tables:
            continue
        qualified = _identifier(schema_name) + "." + _identifier(table)
        schema = model.to_schema()
        out.append(f"COMMENT ON TABLE {qualified} IS {sql_literal(_one_line(schema.description))}")
        for col_name, col in schema.columns.items():
            if (schema_name, table, col_name) in present and col.description:
                out.append(
                    f"COMMENT ON COLUMN {qualified}.{_identifier(col_name)} "
                    f"IS {sql_literal(_one_line(col.description))}"
                )
    return out


def apply_comments(con) -> int:
    """Apply the comments (e.g. ``publish(home, comment_hook=apply_comments)``); returns count."""
    statements = comment_statements(con)
    for stmt in statements:
        con.execute(stmt)
    return len(statements)


def duckdb_type(dtype) -> str:
    base = dtype if isinstance(dtype, type) else type(dtype)
    return _DUCKDB_TYPES.get(base, str(dtype))


def _check_text(check) -> str:
    stats = check.statistics or {}
    name = check.name
    if name == "isin":
        return "in {" + ", ".join(str(v) for v in stats.get("allowed_values", [])) + "}"
    if name == "in_range":
        return f"between {stats.get('min_value')} and {stats.get('max_value')}"
    symbols = {
        "greater_than_or_equal_to": ">=",
        "greater_than": ">",
        "less_than_or_equal_to": "<=",
        "less_than": "<",
    }
    if name in symbols:
        (value,) = stats.values()
        return f"{symbols[name]} {value}"
    if name == "str_matches":
        return f"matches `{stats.get('pattern')}`"
    return name


def _md(text: str) -> str:
    return _one_line(text).replace("|", "\\|")


def render_table(name: str, model: type[pa.DataFrameModel]) -> str:
    schema = model.to_schema()
    lines = [f"### `{name}`", "", _one_line(schema.description), ""]
    if schema.unique:
        lines += [f"Unique key: ({', '.join(schema.unique)}).", ""]
    frame_checks = [c.name for c in schema.checks]
    if frame_checks:
        lines += ["Table rules: " + ", ".join(f"`{c}`" for c in frame_checks) + ".", ""]
    lines += ["| column | type | nullable | rule | description |", "|---|---|---|---|---|"]
    for col_name, col in schema.columns.items():
        rules = [_check_text(c) for c in col.checks]
        if col.unique:
            rules.append("unique")
        lines.append(
            f"| `{col_name}` | {duckdb_type(col.dtype.type)} | {'yes' if col.nullable else 'no'} "
            f"| {_md('; '.join(rules))} | {_md(col.description or '')} |"
        )
    return "\n".join(lines) + "\n"


def render_data_dictionary() -> str:
    """The analysts' data dictionary (markdown), one section per schema."""
    out = [
        "# Data dictionary",
        "",
        "Generated from the Pandera models in `schemas/` — do not edit by hand. Regenerate with",
        "`.venv/bin/python -m schemas.dictionary > docs/data_dictionary.md`.",
        "The same descriptions are the DuckDB column comments (`SELECT * FROM duckdb_columns()`).",
        "",
    ]
    current = None
    for name, model in table_models().items():
        schema_name = name.split(".")[0]
        if schema_name != current:
            out += [f"## Schema `{schema_name}`", ""]
            current = schema_name
        out.append(render_table(name, model))
    return "\n".join(out).rstrip("\n") + "\n"


def main() -> None:
    sys.stdout.write(render_data_dictionary())


if __name__ == "__main__":
    main()
