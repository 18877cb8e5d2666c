"""Pseudonymous patient keys: HMAC-SHA256 of namespace + identifier under a secret key."""

from __future__ import annotations

import hashlib
import hmac

from transforms.textio import whole_number

KEY_HEX_CHARS = 20


def canonical_identifier(identifier: str) -> str:
    """The identifier the key is made of: stripped, and ``1234.0`` read as ``1234``."""
    return whole_number(identifier.strip())


def make_pseudonymizer(secret: bytes):
    """Return ``f(namespace, identifier) -> patient_key`` (stable for a given secret)."""
    cache: dict[tuple[str, str], str] = {}

    def pseudonymize(namespace: str, identifier: str) -> str:
        k = (namespace, identifier)
        hit = cache.get(k)
        if hit is None:
            msg = f"{namespace.strip().upper()}|{canonical_identifier(identifier)}".encode()
            hit = "pk_" + hmac.new(secret, msg, hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]
            cache[k] = hit
        return hit

    return pseudonymize
