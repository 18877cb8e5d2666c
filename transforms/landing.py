"""Finding landing files and telling which feed (and source / vendor) each belongs to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from transforms.catalog import CONFIG_DIR

FEEDS = ("hl7", "lab_csv", "dexa", "meds")
SUFFIXES = {
    "hl7": frozenset({".hl7", ".txt", ".mllp", ".hl7v2", ".msg"}),
    "lab_csv": frozenset({".csv", ".txt", ".tsv"}),
    "dexa": frozenset({".csv", ".txt", ".tsv"}),
    "meds": frozenset({".csv", ".txt"}),
}
COMPRESSED = frozenset({".gz", ".zip", ".bz2", ".xz", ".zst", ".7z"})
DEXA_VENDORS = frozenset({"hologic", "lunar"})


@dataclass(frozen=True)
class LandingFile:
    feed: str
    source: str | None  # lab source or dexa vendor; None for hl7 / meds
    name: str  # path relative to the landing folder, '/'-separated
    path: Path


def classify(landing: Path, path: Path) -> LandingFile | None:
    """Feed and source of one file under ``landing``; None outside the feed folders.

    Every file in a feed folder is received (hidden files aside), even one no parser can
    read: that one is put aside with a reason (``unsupported_reason``), never ignored.
    """
    rel = path.relative_to(landing)
    parts = rel.parts
    if len(parts) < 2 or path.name.startswith(".") or parts[0] not in FEEDS:
        return None
    feed = parts[0]
    source = parts[1] if feed in ("lab_csv", "dexa") and len(parts) >= 3 else None
    return LandingFile(feed, source, rel.as_posix(), path)


def unsupported_reason(
    feed: str, source: str | None, name: str, config_dir: Path | None = None
) -> str | None:
    """Why no parser of ``feed`` can take this file, or None when one can."""
    suffix = Path(name).suffix.lower()
    if suffix in COMPRESSED:
        return f"compressed files ({suffix}) are not accepted: deliver the file uncompressed"
    if suffix not in SUFFIXES[feed]:
        shown = suffix or "(no extension)"
        return f"a {feed} file must end in {', '.join(sorted(SUFFIXES[feed]))}, not {shown}"
    if feed == "lab_csv":
        if source is None:
            return "lab CSV files must sit in a source folder: landing/lab_csv/<source>/"
        cfg = (config_dir or CONFIG_DIR) / "sources" / "lab_csv" / f"{source}.yaml"
        if not cfg.exists():
            return f"no mapping for lab source {source!r} (config/sources/lab_csv/{source}.yaml)"
    if feed == "dexa" and (source or "").lower() not in DEXA_VENDORS:
        return f"DXA files must sit in a vendor folder: {', '.join(sorted(DEXA_VENDORS))}"
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
