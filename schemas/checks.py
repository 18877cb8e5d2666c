"""Table-level validation of warehouse tables against their Pandera models.

``validate_table`` is what the Dagster asset checks call (pipelines/checks.py). It reports
counts and check names only: Pandera's failure cases hold the failing *values* (whole rows
for frame-wide checks, patient keys for uniqueness), so they are counted and dropped here,
never returned, logged or stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.polars as pa
import polars as pl

from schemas.dictionary import table_models
from warehouse.quality_queries import table_exists

# tables that are Dagster assets get a check; it blocks downstream assets for core and marts
CHECKED_SCHEMAS = ("staging", "core", "marts")
BLOCKING_SCHEMAS = ("core", "marts")


@dataclass(frozen=True)
class CheckSpec:
    table: str  # schema.table
    blocking: bool
    description: str


def asset_check_specs() -> list[CheckSpec]:
    """One schema check per modelled asset table; blocking for core and marts."""
    specs = []
    for table, model in table_models().items():
        if table.split(".")[0] not in CHECKED_SCHEMAS:
            continue
        grain = " ".join((model.to_schema().description or "").split())
        specs.append(
            CheckSpec(
                table=table,
                blocking=table.split(".")[0] in BLOCKING_SCHEMAS,
                description=f"Pandera contract {model.__name__}: {grain}",
            )
        )
    return specs


def _failure_key(column, check, model_name: str = "") -> str:
    """``column:check``; a table-level failure is named by its check alone (arguments of a
    frame-wide coercion, which list the whole schema, are cut)."""
    if not column or column in (check, model_name):
        return str(check).split("(", 1)[0]
    return f"{column}:{check}"


def validate_frame(
    model: type[pa.DataFrameModel], frame: pl.DataFrame
) -> tuple[bool, int, dict[str, int], int]:
    """(passed, n_failures, failures_by_check, n_failing_rows) — no values are returned."""
    schema = model.to_schema()
    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:  # Pandera's coercion cannot run on a frame without a contracted column
        return False, len(missing), {f"{c}:column_in_dataframe": 1 for c in missing}, 0
    try:
        model.validate(frame, lazy=True)
        return True, 0, {}, 0
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases.select("column", "check", "index")
    except pa.errors.SchemaError as err:  # a schema-level error raised eagerly
        return False, 1, {_failure_key(None, type(err).__name__): 1}, 0
    by_check: dict[str, int] = {}
    for column, check, _ in cases.iter_rows():
        key = _failure_key(column, check, model.__name__)
        by_check[key] = by_check.get(key, 0) + 1
    rows = cases.filter(pl.col("index").is_not_null())["index"].n_unique()
    return False, cases.height, dict(sorted(by_check.items())), rows


def validate_table(con, table: str) -> tuple[bool, int, dict[str, int], dict]:
    """Pull ``table`` from DuckDB as polars and run its model.

    Returns ``(passed, n_failures, failures_by_check, metadata)``; ``failures_by_check`` maps
    ``column:check`` (or the table rule's name) to a count. A missing table fails.
    """
    models = table_models()
    if table not in models:
        raise KeyError(f"no model for table {table!r}")
    model = models[table]
    meta: dict = {"model": model.__name__}
    if not table_exists(con, table):
        return False, 1, {"table_exists": 1}, {**meta, "rows": 0}
    # identifier validated above: it is a key of the model registry (cannot be bound)
    frame = con.execute("SELECT * FROM " + table).pl()  # noqa: S608
    passed, n_failures, by_check, n_rows = validate_frame(model, frame)
    meta.update({"rows": frame.height, "columns": frame.width, "failing_rows": n_rows})
    return passed, n_failures, by_check, meta


def blocking_failures(con) -> dict[str, dict[str, int]]:
    """Every blocking (core, marts) table that fails its contract → its failures by check;
    empty when all pass. What the Dagster asset checks decide, for paths that publish
    without them (reprocess, quarantine release)."""
    failures = {}
    for spec in asset_check_specs():
        if spec.blocking:
            passed, _, by_check, _ = validate_table(con, spec.table)
            if not passed:
                failures[spec.table] = by_check
    return failures
