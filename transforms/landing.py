"""Finding landing files and telling which feed (and source / vendor) each belongs to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

FEEDS = ("hl7", "lab_csv", "dexa", "meds")
_HL7_SUFFIXES = {".hl7", ".txt", ".mllp", ".hl7v2", ".msg"}


@dataclass(frozen=True)
class LandingFile:
    feed: str
    source: str | None  # lab source or dexa vendor; None for hl7 / meds
    name: str  # path relative to the landing folder, '/'-separated
    path: Path


def classify(landing: Path, path: Path) -> LandingFile | None:
    """Feed and source of one file under ``landing``; None for files no feed takes."""
    rel = path.relative_to(landing)
    parts = rel.parts
    if len(parts) < 2 or path.name.startswith("."):
        return None
    feed = parts[0]
    if feed == "hl7" and path.suffix.lower() in _HL7_SUFFIXES:
        return LandingFile("hl7", None, rel.as_posix(), path)
    if feed in ("lab_csv", "dexa") and len(parts) >= 3:
        return LandingFile(feed, parts[1], rel.as_posix(), path)
    if feed == "meds" and path.suffix.lower() == ".csv":
        return LandingFile("meds", None, rel.as_posix(), path)
    return None


def discover(landing: Path, feeds: tuple[str, ...] = FEEDS) -> list[LandingFile]:
    """Every landing file of the given feeds, in a stable order (feed, then name)."""
    landing = Path(landing)
    found: list[LandingFile] = []
    for feed in feeds:
        root = landing / feed
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if p.is_file() and not p.is_symlink():
                lf = classify(landing, p)
                if lf is not None:
                    found.append(lf)
    return found


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
