"""bench/bench_features.py --write: a new row replaces the same cohort size only in the table
that ends at the marker; the earlier machines' tables keep their rows."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "bench_features", ROOT / "bench" / "bench_features.py"
)
bench_features = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_features)

DOC = """# Benchmark
| patients | s | date |
|---|---|---|
| 10,000 | 0.5 | new machine |
<!-- results: bench_features.py --write adds rows above this line -->

Earlier machine:

| patients | s | date |
|---|---|---|
| 10,000 | 0.4 | old machine |
"""


def written(tmp_path, row: str, patients: int) -> str:
    """The doc above after ``write_doc(row, patients)``."""
    doc = tmp_path / "bench.md"
    doc.write_text(DOC, encoding="utf-8")
    bench_features.write_doc(row, patients, doc)
    return doc.read_text(encoding="utf-8")


def test_write_doc_replaces_the_row_of_the_results_table_only(tmp_path):
    text = written(tmp_path, "| 10,000 | 0.6 | rerun |", 10_000)
    assert "| 10,000 | 0.6 | rerun |\n<!-- results" in text
    assert "| 10,000 | 0.5 | new machine |" not in text
    assert text.endswith("| 10,000 | 0.4 | old machine |\n")


def test_write_doc_adds_a_new_size_above_the_marker(tmp_path):
    text = written(tmp_path, "| 1,000,000 | 40 | new |", 1_000_000)
    assert "| 10,000 | 0.5 | new machine |\n| 1,000,000 | 40 | new |\n<!-- results" in text
    assert text.count("1,000,000") == 1
