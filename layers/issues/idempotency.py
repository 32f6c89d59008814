"""Idempotency keys: the same key from the same token creates at most one issue."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import psycopg

from layers.errors import ValidationFailed


def request_hash(body: Any) -> bytes:
    """A stable digest of a request body (keys sorted), to tell a retry from a reuse."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).digest()


def claim(conn: psycopg.Connection[Any], token_id: int, key: str, digest: bytes) -> str | None:
    """Claim ``key`` for this request inside the caller's transaction.

    Returns None when the key is new (go ahead, then :func:`remember`), or the public id of
    the issue an earlier request with this key created. A concurrent request with the same key
    waits here until the first commits. The same key with a different body is an error.
    """
    if not 1 <= len(key) <= 200:
        raise ValidationFailed("Idempotency-Key must be 1 to 200 characters")
    inserted = conn.execute(
        "INSERT INTO idempotency_key (token_id, key, request_hash) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING RETURNING 1", [token_id, key, digest]).fetchone()
    if inserted:
        return None
    row = conn.execute("SELECT request_hash, public_id FROM idempotency_key"
                       " WHERE token_id = %s AND key = %s", [token_id, key]).fetchone()
    if row is None or bytes(row[0]) != digest:
        raise ValidationFailed("this Idempotency-Key was already used for a different request")
    return str(row[1])


def remember(conn: psycopg.Connection[Any], token_id: int, key: str, public_id: str) -> None:
    """Record which issue the key created (same transaction as the issue)."""
    conn.execute("UPDATE idempotency_key SET public_id = %s WHERE token_id = %s AND key = %s",
                 [public_id, token_id, key])
