"""The one reader of the YAML configuration files.

A run stages hundreds of files and each parser asks for its feed's configuration; parsing the
same YAML per file cost 20-50 ms each (pure-Python loader). Here a file is parsed once per
version (path, modification time, size), with libyaml's loader when PyYAML has it, and every
caller gets its own deep copy, so nothing a caller does reaches another.
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
    return copy.deepcopy(_parsed(str(p), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=64)
def _parsed(path: str, mtime_ns: int, size: int) -> Any:
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_LOADER)  # noqa: S506 - a safe loader (C or Python)
