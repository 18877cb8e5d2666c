"""Where everything lives: ``$LABWH_HOME`` (default ``./data``) and its folders."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

KEY_ENV = "LABWH_HMAC_KEY"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls, root: str | os.PathLike | None = None) -> Home:
        base = root or os.environ.get("LABWH_HOME") or "./data"
        return cls(Path(base).resolve())

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def published(self) -> Path:
        return self.root / "published" / "analytics.duckdb"

    @property
    def identity_dir(self) -> Path:
        return self.root / "restricted"

    @property
    def identity_db(self) -> Path:
        return self.identity_dir / "identity.duckdb"

    @property
    def key_file(self) -> Path:
        return self.identity_dir / "hmac.key"

    @property
    def run_lock(self) -> Path:
        """Held by the one run writing the warehouse (warehouse/locks.py ``run_lock``)."""
        return self.root / "run.lock"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def ensure(self) -> Home:
        # not the landing folder: where deliveries arrive is the sender's (often a mounted
        # share); made here, a missing or unmounted one would read as an empty delivery
        for d in (self.root, self.published.parent, self.reports, self.archive):
            d.mkdir(parents=True, exist_ok=True)
        # identifiers live in the received bytes and the identity store: owner-only
        for private in (self.identity_dir, self.archive):
            private.mkdir(parents=True, exist_ok=True)
            os.chmod(private, 0o700)
        return self

    def hmac_key(self) -> bytes:
        """The pseudonymization key: ``$LABWH_HMAC_KEY``, else a generated local key file.

        The key file sits in the restricted folder (owner-only), outside the warehouse, so a
        copy of the warehouse or the published snapshot cannot re-identify anybody.
        """
        env = os.environ.get(KEY_ENV)
        if env:
            return env.encode()
        self.ensure()
        if not self.key_file.exists():
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return self.key_file.read_text().strip().encode()
