"""Split HL7 files into messages, streaming.

Accepted framing: one or many messages; FHS/BHS … BTS/FTS batches with or without trailers;
MLLP blocks (0x0B … 0x1C 0x0D); segment terminators CR, LF or CRLF (mixed too); a UTF-8
BOM (anywhere a block starts); a DOS end-of-file byte (0x1A) ends a line and lines of NUL
padding are blank. Bytes are decoded as UTF-8; a part that is not valid UTF-8 is
decoded line by line, each line as UTF-8 or else latin-1.

A message starts at an ``MSH`` segment and ends before the next ``MSH`` or batch segment.
Batch segments (FHS, BHS, BTS, FTS) belong to no message. Non-blank lines outside any
message (before the first MSH, after a trailer) form one *orphan* pseudo-message, so that
they are counted and rejected rather than dropped. Blank lines are ignored and not counted.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

BATCH_SEGMENTS = frozenset({"FHS", "BHS", "BTS", "FTS"})
BLOCK_BYTES = 8 << 20
# CR, LF, MLLP start/end, and DOS's end-of-file mark (0x1A) that some exporters append
_LINE_BREAK = re.compile(rb"\r\n|\r|\n|\x0b|\x1c|\x1a")


@dataclass(slots=True)
class RawMessage:
    index: int  # 0-based message number within the file
    segments: list[str]  # non-blank segment texts, MSH first (orphans: whatever was there)
    orphan: bool = False  # lines outside any MSH-started message


def decode_lines(block: bytes) -> list[str]:
    """Bytes (whole lines) → segment texts, terminators and MLLP framing removed."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError:
        return [_decode_line(p) for p in _LINE_BREAK.split(block)]
    if "\x0b" in text or "\x1c" in text or "\x1a" in text:
        text = text.replace("\x0b", "\n").replace("\x1c", "\n").replace("\x1a", "\n")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


def _decode_line(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def iter_lines(source: bytes | BinaryIO, block_bytes: int = BLOCK_BYTES) -> Iterator[list[str]]:
    """Yield lists of lines, reading ``source`` block by block (never split inside a line)."""
    fh = io.BytesIO(source) if isinstance(source, bytes | bytearray | memoryview) else source
    carry = b""
    first = True
    while True:
        block = fh.read(block_bytes)
        if not block:
            break
        if first:
            first = False
            if block.startswith(b"\xef\xbb\xbf"):
                block = block[3:]
        data = carry + block if carry else block
        cut = max(data.rfind(b"\r"), data.rfind(b"\n"), data.rfind(b"\x1c"))
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1 :]
        yield decode_lines(data[: cut + 1])
    if carry:
        yield decode_lines(carry)


def iter_messages(
    source: bytes | BinaryIO | str | os.PathLike, block_bytes: int = BLOCK_BYTES
) -> Iterator[RawMessage]:
    """Yield every message of a file in order, with its 0-based index (paths are opened here)."""
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as fh:
            yield from iter_messages(fh, block_bytes)
        return
    index = 0
    current: list[str] | None = None
    orphan = False
    for lines in iter_lines(source, block_bytes):
        for line in lines:
            if not line:
                continue
            if line[0] <= " " or line[0] == "\ufeff":  # blank, or a BOM before a message
                line = line.lstrip("\ufeff")
                if not line.strip("\x00 \t\f\v"):  # blank, or NUL padding after the data
                    continue
            head = line[:3]
            if head == "MSH":
                if current:
                    yield RawMessage(index, current, orphan)
                    index += 1
                current, orphan = [line], False
            elif head in BATCH_SEGMENTS and (len(line) == 3 or not line[3].isalnum()):
                if current:
                    yield RawMessage(index, current, orphan)
                    index += 1
                current = None
            elif current is None:
                current, orphan = [line], True
            else:
                current.append(line)
    if current:
        yield RawMessage(index, current, orphan)
