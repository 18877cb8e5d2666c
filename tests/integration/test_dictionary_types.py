"""The data dictionary's column types are the warehouse's: every contracted column of every
table a build creates has, in DuckDB, the type the dictionary (docs/data_dictionary.md,
generated from the Pandera models) states."""

from __future__ import annotations

import duckdb
import pytest
import quality_fixture as qf

from schemas.dictionary import duckdb_type, table_models

pytestmark = pytest.mark.integration


def test_every_documented_type_is_the_type_in_the_warehouse(home):
    qf.build_quality_warehouse(home, with_bad_rows=True)
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        actual = {
            (f"{schema}.{table}", column): data_type
            for schema, table, column, data_type in con.execute(
                "SELECT table_schema, table_name, column_name, data_type "
                "FROM information_schema.columns"
            ).fetchall()
        }
    finally:
        con.close()
    compared, wrong = 0, []
    for table, model in table_models().items():
        for column, col_schema in model.to_schema().columns.items():
            if (table, column) not in actual:
                continue  # a table this build does not create (checked elsewhere)
            compared += 1
            documented = duckdb_type(col_schema.dtype.type)
            if documented != actual[(table, column)]:
                wrong.append(
                    f"{table}.{column}: documented {documented}, is {actual[(table, column)]}"
                )
    assert compared > 150
    assert wrong == []
