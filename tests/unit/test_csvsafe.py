import csv
import io

import duckdb

from pipelines.cli import _print_table
from transforms.csvsafe import safe_cell


def test_formula_triggers_are_neutralized_numbers_are_not():
    assert safe_cell('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert safe_cell("+1") == "'+1" and safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("-2+3") == "'-2+3"
    assert safe_cell(-2.5) == -2.5 and safe_cell("pg/mL") == "pg/mL" and safe_cell(None) is None


def test_sql_csv_output_is_safe_to_open_in_a_spreadsheet():
    con = duckdb.connect()
    out = io.StringIO()
    _print_table(con.execute("SELECT '=1+1' AS a, -3 AS b, 'ok' AS c"), True, out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["a", "b", "c"], ["'=1+1", "-3", "ok"]]
