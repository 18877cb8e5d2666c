"""The one reader of the YAML configuration files.

A run stages hundreds of files and each parser asks for its feed's configuration; parsing the
same YAML per file cost 20-50 ms each (pure-Python loader). Here a file is parsed once per
version (path, device and inode, modification and change times, size), with libyaml's loader
when PyYAML has it, and every caller gets its own deep copy, so nothing a caller does reaches
another. The generator reads the same files through it.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path | str) -> Any:
    """The parsed document of ``path`` (``None`` for an empty file)."""
    p = Path(path).resolve()
    st = p.stat()
    # a file put in place by rename (os.replace, rsync, tar) may keep the old one's mtime and
    # size: its inode and change time differ
    version = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    return copy.deepcopy(_parsed(str(p), version))


@lru_cache(maxsize=64)
def _parsed(path: str, version: tuple[int, ...]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_LOADER)  # noqa: S506 - a safe loader (C or Python)
