"""Optional: parse a big file's chunks in worker processes (``workers > 1``).

The parent reads and frames the file (message indexes stay those of the whole file) and
hands chunks of messages to spawned workers, at most ``workers + 1`` chunks in flight, so
memory stays flat. Workers cannot receive the caller's pseudonymizer (a closure holding the
secret key, and not picklable), so they return a token for (namespace, identifier) in
``patient_key`` and the parent replaces it with the real key before yielding; the tokens
never leave this module. Results are yielded in file order and equal the single-process ones.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from typing import BinaryIO

import polars as pl

from transforms.catalog import Catalog
from transforms.hl7.config import Hl7Config
from transforms.hl7.framing import RawMessage, iter_messages
from transforms.hl7.rows import ChunkParser, FileState
from transforms.records import ParseResult

_STATE: FileState | None = None  # the worker's, set by _start_worker


def _token(namespace: str, identifier: str) -> str:
    return json.dumps([namespace, identifier])


def _start_worker(file_sha256: str, catalog: Catalog, config: Hl7Config | None) -> None:
    global _STATE
    _STATE = FileState(file_sha256, _token, catalog, config)


def _parse_chunk(chunk: list[tuple[int, list[str], bool]]) -> ParseResult:
    parser = ChunkParser(_STATE)
    for index, segments, orphan in chunk:
        parser.add(RawMessage(index, segments, orphan))
    return parser.result()


def _with_keys(result: ParseResult, pseudonymize: Callable[[str, str], str]) -> ParseResult:
    tokens = set(result.rows["patient_key"].drop_nulls().unique().to_list())
    tokens.update(i.patient_key for i in result.identities)
    keys = {t: pseudonymize(*json.loads(t)) for t in tokens}
    rows = result.rows.with_columns(
        pl.col("patient_key").replace_strict(keys, default=None, return_dtype=pl.String)
    )
    identities = [
        dataclasses.replace(i, patient_key=keys[i.patient_key]) for i in result.identities
    ]
    return ParseResult(rows=rows, rejects=result.rejects, identities=identities)


def iter_parse_parallel(
    source: bytes | BinaryIO | str | os.PathLike,
    state: FileState,
    chunk_messages: int,
    workers: int,
) -> Iterator[ParseResult]:
    """Chunks of ``source`` parsed by ``workers`` processes with ``state``'s settings."""
    pseudonymize = state.pseudonymize  # stays in this process
    ctx = multiprocessing.get_context("spawn")  # fork would copy polars' thread pool state
    worker_args = (state.file_sha256, state.catalog, state.config)
    with ctx.Pool(workers, _start_worker, worker_args) as pool:
        pending: deque = deque()
        chunk: list[tuple[int, list[str], bool]] = []
        for msg in iter_messages(source):
            chunk.append((msg.index, msg.segments, msg.orphan))
            if len(chunk) >= chunk_messages:
                pending.append(pool.apply_async(_parse_chunk, (chunk,)))
                chunk = []
                if len(pending) > workers:
                    yield _with_keys(pending.popleft().get(), pseudonymize)
        if chunk:
            pending.append(pool.apply_async(_parse_chunk, (chunk,)))
        while pending:
            yield _with_keys(pending.popleft().get(), pseudonymize)
