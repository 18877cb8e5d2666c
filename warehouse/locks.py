"""Opening a DuckDB file that another process may hold, and one writing run at a time.

DuckDB lets one process write a database file, or any number of processes read it, never
both at once: a ``labwh report`` reading the warehouse while a run's step opens it for
writing makes that open fail at once. Every connection of the project goes through
``connect``, which waits for the other process to let go (with backoff, up to a bound) and
then raises ``WarehouseBusy`` with a message that says who holds the file. Steps hold the
writer's connection only for their own work, so a waiting reader gets in between two steps
and a waiting step gets in once the reader is done.

A run is many steps, each opening the writer's connection on its own, so the file lock
alone would let two runs interleave their steps. ``run_lock`` is held for a whole writing
run (a Dagster run, a quarantine release, a rekey): a second one waits for it, then says
which process holds it.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

log = logging.getLogger("labwh.locks")

WAIT_ENV = "LABWH_LOCK_WAIT_S"
DEFAULT_WAIT_S = 120.0
_HOLDER = re.compile(r"\(PID (\d+)\)")


class WarehouseBusy(RuntimeError):
    """Another process kept the database file locked for longer than the wait bound.
    ``held`` says what is locked by whom, without the advice that follows it."""

    def __init__(self, message: str, held: str = ""):
        super().__init__(message)
        self.held = held or message


class BadSetting(ValueError):
    """``$LABWH_LOCK_WAIT_S`` is not a number of seconds."""


def wait_bound() -> float:
    """Seconds to wait for a lock: ``$LABWH_LOCK_WAIT_S``, else 120 (``inf``: no bound)."""
    raw = os.environ.get(WAIT_ENV, "")
    try:
        value = float(raw) if raw.strip() else DEFAULT_WAIT_S
    except ValueError:
        raise BadSetting(f"{WAIT_ENV} must be a number of seconds, not {raw!r}") from None
    if not value >= 0:  # NaN too
        raise BadSetting(f"{WAIT_ENV} must be a number of seconds >= 0, not {raw!r}")
    return value


def is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


def connect(
    path: Path, *, read_only: bool = False, wait_s: float | None = None
) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect(path)``, waiting while another process holds a conflicting lock."""

    def attempt() -> tuple[duckdb.DuckDBPyConnection | None, str]:
        try:
            return duckdb.connect(str(path), read_only=read_only), ""
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc):
                raise
            holder = _HOLDER.search(str(exc))
            return None, f"process {holder.group(1)}" if holder else "another process"

    mode = "read" if read_only else "write"
    return _wait_for(attempt, wait_s, f"{path.name} is locked by {{who}} (opening it to {mode})")


def _wait_for(attempt, wait_s: float | None, what: str):
    """Call ``attempt`` until it returns a value (not None) or the wait bound runs out.

    ``attempt`` returns ``(value, who)``: who holds the lock when value is None."""
    bound = wait_bound() if wait_s is None else wait_s
    deadline = time.monotonic() + bound
    delay = 0.05
    announced = False
    while True:
        value, who = attempt()
        if value is not None:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            raise WarehouseBusy(
                f"{what.format(who=who)}: waited {bound:g}s. Another labwh run, report, "
                f"quarantine or dagster process is using it: try again when it ends, or "
                f"raise ${WAIT_ENV}.",
                held=what.format(who=who),
            )
        if not announced:
            log.warning("%s: waiting up to %gs", what.format(who=who), bound)
            announced = True
        time.sleep(min(delay, left))
        delay = min(delay * 2, 2.0)


_held: dict[Path, int] = {}


def holds(lock_file: Path) -> bool:
    """Whether this process holds ``run_lock(lock_file)``."""
    return bool(_held.get(Path(lock_file).resolve()))


@contextmanager
def run_lock(lock_file: Path, *, wait_s: float | None = None) -> Iterator[None]:
    """Hold ``lock_file`` (an advisory ``flock``) for one writing run; re-entrant in-process."""
    key = Path(lock_file).resolve()
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    key.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o600)

    def attempt() -> tuple[bool | None, str]:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True, ""
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return None, f"process {holder}" if holder.isdigit() else "another process"

    try:
        _wait_for(attempt, wait_s, "another run ({who}) is writing the warehouse")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
