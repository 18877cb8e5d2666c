"""The restricted identity store: the only place MRNs, names and birth dates are kept.

Its own DuckDB file under ``$LABWH_HOME/restricted/`` (owner-only folder and file), never
attached to the analyst warehouse and never published.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from transforms.records import Identity
from transforms.reporting import masking
from warehouse import locks

_DDL = """
CREATE TABLE IF NOT EXISTS patient_identifier (
    patient_key      VARCHAR NOT NULL,
    namespace        VARCHAR NOT NULL,
    identifier       VARCHAR NOT NULL,
    identifier_type  VARCHAR,
    family_name      VARCHAR,
    given_name       VARCHAR,
    birth_date       VARCHAR,
    PRIMARY KEY (namespace, identifier)
)
"""


_COLUMNS = {
    c: pl.String
    for c in (
        "patient_key",
        "namespace",
        "identifier",
        "identifier_type",
        "family_name",
        "given_name",
        "birth_date",
    )
}


_NAMES_AND_IDENTIFIERS = "SELECT family_name, given_name, identifier FROM patient_identifier"
_KEYED_IDENTIFIERS = "SELECT patient_key, identifier FROM patient_identifier"


def _store_rows(path: Path, query: str) -> list[tuple]:
    """The rows of ``query`` on the store at ``path`` (none when it does not exist yet)."""
    if not Path(path).exists():
        return []
    con = locks.connect(Path(path), read_only=True)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def known_words(path: Path) -> frozenset[str]:
    """The words of every name and identifier in the store at ``path`` (none when it does
    not exist yet): what masking hides in free text such as landing file names."""
    rows = _store_rows(path, _NAMES_AND_IDENTIFIERS)
    return masking.known_words(v for row in rows for v in row)


def patient_identifiers(path: Path) -> pl.DataFrame:
    """(patient_key, identifier) for every identifier of the store at ``path`` in
    ``masking.identifier_spelling`` (none when it does not exist yet): what masking looks for
    in the ids a sender chose for that patient's records (order numbers, message ids)."""
    rows = _store_rows(path, _KEYED_IDENTIFIERS)
    pairs = {(k, s) for k, i in rows if (s := masking.identifier_spelling(i))}
    return pl.DataFrame(
        sorted(pairs), schema={"patient_key": pl.String, "identifier": pl.String}, orient="row"
    )


class IdentityStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        self.con = locks.connect(self.path)
        self.con.execute(_DDL)
        os.chmod(self.path, 0o600)

    def add(self, identities: Iterable[Identity]) -> int:
        unique = {(i.namespace, i.identifier): i for i in identities}
        if not unique:
            return 0
        frame = pl.DataFrame(
            [
                (
                    i.patient_key,
                    i.namespace,
                    i.identifier,
                    i.identifier_type,
                    i.family_name,
                    i.given_name,
                    i.birth_date,
                )
                for i in unique.values()
            ],
            schema=_COLUMNS,
            orient="row",
        )
        self.con.register("_identities", frame.to_arrow())
        try:
            self.con.execute("INSERT OR IGNORE INTO patient_identifier SELECT * FROM _identities")
        finally:
            self.con.unregister("_identities")
        return len(unique)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> IdentityStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
