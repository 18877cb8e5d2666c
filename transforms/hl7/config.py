"""Per-source HL7 configuration: ``config/sources/hl7/<sending_application>.yaml``.

Keys (all optional):

```yaml
timezone: America/New_York   # IANA zone of the facility; timestamps become naive local time
local_codes:                 # OBX-3.1 local code -> LOINC
  E2SENS: 2243-4
message_types: [ORU^R01, OUL^R22]   # accepted MSH-9 types (default: DEFAULT_MESSAGE_TYPES)
```
A missing file gives the defaults. The sending application comes from the message (MSH-3),
so only names made of letters, digits, spaces and ``_ . -`` are looked up as file names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from transforms.catalog import CONFIG_DIR
from transforms.yamlfile import read_yaml

HL7_CONFIG_DIR = CONFIG_DIR / "sources" / "hl7"
DEFAULT_TIMEZONE = "America/New_York"
# Result messages with the ORU^R01 shape (PID, OBR, OBX…) the feed contract names
# (docs/feeds.md); OUL^R2x (specimen-oriented) only when a source's YAML lists it.
DEFAULT_MESSAGE_TYPES = frozenset({"ORU^R01", "ORU^R30", "ORU^R31", "ORU^R32"})
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_. -]{1,100}$")


@dataclass(frozen=True)
class Hl7Config:
    local_codes: Mapping[str, str] = field(default_factory=dict)
    timezone: str = DEFAULT_TIMEZONE
    message_types: frozenset[str] = DEFAULT_MESSAGE_TYPES

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # fail early on an unknown zone name


def load_hl7_config(sending_application: str, *, config_dir: Path | None = None) -> Hl7Config:
    """The configuration of one sending application (defaults when it has no file)."""
    base = Path(config_dir) if config_dir else HL7_CONFIG_DIR
    name = (sending_application or "").strip()
    if not _SAFE_NAME.match(name) or name.startswith("."):
        return Hl7Config()
    path = base / f"{name}.yaml"
    if not path.is_file():
        return Hl7Config()
    raw = read_yaml(path) or {}
    local = raw.get("local_codes") or {}
    types = raw.get("message_types")
    return Hl7Config(
        local_codes={str(k): str(v) for k, v in local.items()},
        timezone=str(raw.get("timezone") or DEFAULT_TIMEZONE),
        message_types=frozenset(str(t) for t in types) if types else DEFAULT_MESSAGE_TYPES,
    )
