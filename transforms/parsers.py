"""One entry point per feed: bytes of a landing file → ``ParseResult``.

The loader calls ``parse_file``; which parser and which source configuration apply is decided
here from the feed and source (folder) names, never from file contents alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from transforms.records import ParseResult, Pseudonymizer

# staged table and validation kind per feed
STAGED_TABLE = {
    "hl7": "staging.stg_hl7__lab_result",
    "lab_csv": "staging.stg_lab_csv__lab_result",
    "dexa": "staging.stg_dexa__scan",
    "meds": "staging.stg_meds__medication",
}
RECORD_KIND = {
    "hl7": "lab_result",
    "lab_csv": "lab_result",
    "dexa": "dexa_scan",
    "meds": "medication",
}


def iter_parse_file(
    feed: str,
    source: str | None,
    name: str,
    path: Path,
    *,
    file_sha256: str,
    pseudonymize: Pseudonymizer,
) -> Iterator[ParseResult]:
    """Parse one file, in chunks where the format allows streaming (HL7)."""
    if feed == "hl7":
        from transforms.hl7 import iter_parse_hl7_file

        yield from iter_parse_hl7_file(path, file_sha256=file_sha256, pseudonymize=pseudonymize)
        return
    data = Path(path).read_bytes()
    if feed == "lab_csv":
        from transforms.csv_labs import load_lab_csv_config, parse_lab_csv

        cfg = load_lab_csv_config(source or "")
        yield parse_lab_csv(
            data, file_sha256=file_sha256, source_config=cfg, pseudonymize=pseudonymize
        )
    elif feed == "dexa":
        from transforms.dexa import parse_dexa_file

        yield parse_dexa_file(
            data,
            file_sha256=file_sha256,
            vendor=(source or "").lower(),
            file_name=Path(name).name,
            pseudonymize=pseudonymize,
        )
    elif feed == "meds":
        from transforms.meds import parse_meds_csv

        yield parse_meds_csv(data, file_sha256=file_sha256, pseudonymize=pseudonymize)
    else:
        raise ValueError(f"unknown feed {feed!r}")
