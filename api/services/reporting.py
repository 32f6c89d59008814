"""Reporting one issue from any client (REST, Open311): assigned on the way in, and
idempotent when the client sends an ``Idempotency-Key``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import Request

from layers.assignment import AssignerCache
from layers.auth import access
from layers.auth.tokens import Principal
from layers.errors import ValidationFailed
from layers.issues import idempotency, records


def report(conn: psycopg.Connection[Any], request: Request, caller: Principal,
           new: records.NewIssue, fingerprint: Any) -> tuple[str, bool]:
    """Store ``new`` (validated, assigned, audited); its public id and whether it was a replay.

    What the caller may claim is checked first (:func:`layers.issues.records.check_report`), and a
    photo from our store must be one the caller (or its unit) uploaded: naming another's photo
    would hand it to the units of the new issue.

    With an ``Idempotency-Key`` header, a retry carrying the same key and the same request
    (``fingerprint``, any JSON-able value) returns the first issue instead of a second one;
    the same key with a different request is a conflict.
    """
    records.check_report(new, caller.role, datetime.now(UTC))
    access.require_own_evidence(conn, caller, uploaded_photos(new.photos))
    cache: AssignerCache = request.app.state.assigner_cache
    key = request.headers.get("idempotency-key")
    with conn.transaction():
        earlier = None
        if key is not None:
            earlier = idempotency.claim(conn, caller.token_id, key,
                                        idempotency.request_hash(fingerprint))
        if earlier is not None:
            return earlier, True
        public_id = _create(conn, cache, new, caller)
        if key is not None:
            idempotency.remember(conn, caller.token_id, key, public_id)
    return public_id, False


def uploaded_photos(photos: Sequence[str]) -> list[str]:
    """The references to our own photo store among a report's photos (the rest are URLs)."""
    return [p for p in photos if p.startswith("sha256:")]


def _create(conn: psycopg.Connection[Any], cache: AssignerCache, new: records.NewIssue,
            caller: Principal) -> str:
    try:
        [public_id] = records.create_many(conn, cache.get(conn), [new],
                                         actor=caller.actor,
                                         actor_role=caller.role)
    except ValidationFailed as exc:
        # One issue: report the fields, not list positions.
        details = exc.details if isinstance(exc.details, list) else []
        raise ValidationFailed(exc.message.replace("some issues are", "the issue is"),
                               details=[{k: v for k, v in d.items() if k != "index"}
                                        for d in details]) from None
    return public_id
