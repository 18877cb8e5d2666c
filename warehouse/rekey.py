"""Rotating the pseudonymization key: every patient_key re-derived by replaying the archive.

``patient_key = HMAC(key, namespace | identifier)`` is in every staged, core and mart table
and in the restricted identity store. A rotation must leave no value derived from the old
key anywhere (including ids hashed from the key, such as derived DXA scan ids), so it is not
an in-place UPDATE: the received bytes (``archive/``, kept whole) are re-staged with the new
key, the identity store is rebuilt from them, core and the marts are rebuilt in full, and a
new snapshot is published (the old one is replaced atomically).

Procedure (docs/threat_model.md, "Rotating the HMAC key"):
1. Stop the schedules and sensors (one writer at a time).
2. Put the new key in place: ``rekey(home, new_key=…)`` writes ``restricted/hmac.key``
   (0600); with ``$LABWH_HMAC_KEY`` the operator sets the new value in the environment /
   secret store first and calls ``rekey(home)``.
3. ``rekey`` moves the old identity store aside (``identity.pre-rekey-<time>.duckdb``,
   owner-only), re-stages every received file, rebuilds core, marts (full), OMOP views and
   publishes. Interrupted? Run it again: every step is idempotent and it always re-stages all.
4. Check, then destroy the old identity store copy and every copy of the old key.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

from transforms.landing import FEEDS
from warehouse import ingest, params, steps
from warehouse.home import KEY_ENV, Home
from warehouse.publish import publish_run


def write_key_file(home: Home, new_key: bytes) -> Path:
    """Replace ``restricted/hmac.key`` atomically with an owner-only file."""
    if os.environ.get(KEY_ENV):
        raise RuntimeError(
            f"${KEY_ENV} is set and wins over the key file: set the new key there instead"
        )
    if len(new_key) < 32:
        raise ValueError("an HMAC key needs at least 32 bytes (64 hex characters recommended)")
    home.ensure()
    tmp = home.key_file.with_name(f".hmac.key.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(new_key)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, home.key_file)
    return home.key_file


def _set_identity_store_aside(home: Home, stamp: str) -> Path | None:
    if not home.identity_db.exists():
        return None
    aside = home.identity_dir / f"identity.pre-rekey-{stamp}.duckdb"
    for suffix in ("", ".wal"):
        src = Path(str(home.identity_db) + suffix)
        if src.exists():
            dst = Path(str(aside) + suffix)
            os.replace(src, dst)
            os.chmod(dst, 0o600)
    return aside


def rekey(home: Home, *, new_key: bytes | None = None) -> dict:
    """Re-derive every pseudonymous key with the current (or the given new) key."""
    if new_key is not None:
        write_key_file(home, new_key)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    run_id = f"rekey-{stamp}-{uuid.uuid4().hex[:8]}"
    aside = _set_identity_store_aside(home, stamp)
    with steps.writer(home) as con:
        shas = [r[0] for r in con.execute("SELECT file_sha256 FROM raw.files").fetchall()]
        ingest.mark_for_restage(con, shas)
        con.execute("DELETE FROM raw.touched_patients")  # old keys: nothing to refresh by them
    steps.start_run(home, run_id, home.landing, {"rekey": True})
    staged = {feed: steps.stage(home, feed, run_id) for feed in FEEDS}
    steps.build_core(home, params.core_params())
    steps.build_features(home, params.feature_params(), run_id, full=True)
    with steps.writer(home) as con:  # re-staging records the replaced rows' (old) keys too
        con.execute("DELETE FROM raw.touched_patients WHERE run_id = $r", {"r": run_id})
    steps.build_omop(home)
    publish_run(home, run_id)
    return {
        "run_id": run_id,
        "files_restaged": sum(s.files for s in staged.values()),
        "old_identity_store": str(aside) if aside else None,
    }
