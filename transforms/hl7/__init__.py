"""HL7 v2 ORU^R01 ingestion: file bytes → staged lab rows, rejects and identities.

```python
result = parse_hl7_file(data, file_sha256=sha, pseudonymize=pseudo)
for chunk in iter_parse_hl7_file(path, file_sha256=sha, pseudonymize=pseudo):
    ...  # one ParseResult per ``chunk_messages`` messages, memory flat in file size
```
What is accepted and how: docs/hl7.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import BinaryIO

import polars as pl

from transforms.catalog import Catalog, load_catalog
from transforms.hl7.config import Hl7Config, load_hl7_config
from transforms.hl7.framing import iter_messages
from transforms.hl7.parallel import iter_parse_parallel
from transforms.hl7.rows import SCHEMA, ChunkParser, FileState
from transforms.records import ParseResult

__all__ = ["Hl7Config", "iter_parse_hl7_file", "load_hl7_config", "parse_hl7_file"]

DEFAULT_CHUNK_MESSAGES = 50_000


def iter_parse_hl7_file(
    source: bytes | BinaryIO | str | os.PathLike,
    *,
    file_sha256: str,
    pseudonymize: Callable[[str, str], str],
    config: Hl7Config | None = None,
    catalog: Catalog | None = None,
    chunk_messages: int = DEFAULT_CHUNK_MESSAGES,
    workers: int = 1,
) -> Iterator[ParseResult]:
    """Parse a file (bytes, binary file object or path) chunk by chunk, streaming.

    Each ParseResult covers up to ``chunk_messages`` consecutive messages; message indexes
    and positions are those of the whole file. ``config=None`` resolves the configuration of
    each message's sending application (MSH-3) with ``load_hl7_config``. ``workers > 1``
    parses chunks in that many spawned processes (worth it for files of several chunks;
    the results are the same).
    """
    state = FileState(file_sha256, pseudonymize, catalog or load_catalog(), config)
    if workers > 1:
        yield from iter_parse_parallel(source, state, chunk_messages, workers)
        return
    parser = ChunkParser(state)
    for msg in iter_messages(source):
        parser.add(msg)
        if parser.messages >= chunk_messages:
            yield parser.result()
            parser = ChunkParser(state)
    if parser.messages:
        yield parser.result()


def parse_hl7_file(
    data: bytes,
    *,
    file_sha256: str,
    pseudonymize: Callable[[str, str], str],
    config: Hl7Config | None = None,
    catalog: Catalog | None = None,
) -> ParseResult:
    """Parse a whole HL7 file held in memory (same code as ``iter_parse_hl7_file``)."""
    frames: list[pl.DataFrame] = []
    out = ParseResult(rows=pl.DataFrame(schema=SCHEMA))
    identities: dict = {}
    for part in iter_parse_hl7_file(
        data, file_sha256=file_sha256, pseudonymize=pseudonymize, config=config, catalog=catalog
    ):
        frames.append(part.rows)
        out.rejects.extend(part.rejects)
        identities.update(dict.fromkeys(part.identities))
    if frames:
        out.rows = pl.concat(frames, how="vertical")
    out.identities = list(identities)
    return out
