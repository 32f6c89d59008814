"""API tokens: shown once at creation, stored only as a sha256 hash."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from layers.errors import NotFound, ValidationFailed
from layers.vocab import ROLES, Role


@dataclass(frozen=True)
class Principal:
    """Who is calling, as resolved from a bearer token."""

    token_id: int
    name: str
    role: str
    unit_id: int | None
    post: str | None = None
    # The street a street-scoped token is confined to (layers.auth.scope); None: the district.
    street_id: int | None = None

    @property
    def actor(self) -> str:
        """Who the audit trail, orders and printed pages say acted: the token's person, with
        their post when known (``张三（城管科科长）``)."""
        return person(self.name, self.post)


def person(name: str, post: str | None) -> str:
    """A token holder as shown to people: the name, and the post in brackets when known.

    >>> person("张三", "城管科科长")
    '张三（城管科科长）'
    >>> person("李四", None)
    '李四'
    """
    return f"{name}（{post}）" if post else name


@dataclass(frozen=True)
class TokenInfo:
    """A token's metadata (never the token: only its hash is stored); ``unit`` is the code of
    the unit a unit token acts for, ``live`` whether it is neither revoked nor expired."""

    id: int
    name: str
    post: str | None
    mobile: str | None
    role: Role
    unit: str | None
    street: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    live: bool


# The metadata of the tokens in ``{}`` (the table or a CTE of its rows), as TokenInfo.
_INFO = sql.SQL(
    "SELECT t.id, t.name, t.post, t.mobile, t.role, u.code AS unit, s.code AS street,"
    " t.created_at, t.expires_at, t.revoked_at, t.last_used_at,"
    " t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) AS live"
    " FROM {} t LEFT JOIN unit u ON u.id = t.unit_id"
    " LEFT JOIN jurisdiction s ON s.id = t.street_id")


def _hash(token: str) -> bytes:
    # Tokens carry 256 bits of randomness, so a fast unsalted hash is enough to make the
    # stored value useless to a reader of the table.
    return hashlib.sha256(token.encode()).digest()


# Digits with an optional leading +: what both group robots take to @mention a person.
_MOBILE = re.compile(r"\+?[0-9]{5,20}")


def create(
    conn: psycopg.Connection[Any],
    *,
    role: str,
    name: str,
    unit_code: str | None = None,
    post: str | None = None,
    mobile: str | None = None,
    expires_at: datetime | None = None,
    street_code: str | None = None,
) -> str:
    """Create a token for the person ``name`` (with their ``post`` and ``mobile`` when given)
    and return it; only its hash is stored. ``street_code`` confines it to one street
    (layers.auth.scope)."""
    name, post = name.strip(), (post or "").strip() or None
    mobile = re.sub(r"[\s-]", "", mobile or "") or None
    if not name:
        raise ValidationFailed("every token names its person: give --name (the holder's name)")
    if len(name) > 100 or (post is not None and len(post) > 100):
        raise ValidationFailed("the name and the post are at most 100 characters each")
    if mobile is not None and not _MOBILE.fullmatch(mobile):
        raise ValidationFailed(f"{mobile!r} is not a mobile number (digits, optional leading +)")
    if role not in ROLES:
        raise ValidationFailed(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if role == "unit" and not unit_code:
        raise ValidationFailed("a unit token needs --unit (the unit's code or name)")
    unit_id = None
    if unit_code:
        row = conn.execute(
            "SELECT id FROM unit WHERE code = %s OR name = %s", [unit_code, unit_code]
        ).fetchone()
        if row is None:
            raise NotFound(f"no unit with code or name {unit_code!r}")
        unit_id = row[0]
    street_id = _street(conn, role, street_code)
    token = "sw_" + secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO api_token (name, post, mobile, token_hash, role, unit_id, expires_at,"
        " street_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        [name, post, mobile, _hash(token), role, unit_id, expires_at, street_id],
    )
    return token


# The roles a street's office hands out. A unit token is scoped by its unit already: a district
# department's token sees its line across every street, a community's its own ground.
STREET_ROLES = ("admin", "supervisor", "inspector", "viewer")


def _street(conn: psycopg.Connection[Any], role: str, street_code: str | None) -> int | None:
    """The id of the street a token is confined to (None: the district), checked."""
    if street_code is None:
        return None
    if role not in STREET_ROLES:
        raise ValidationFailed(f"--street is for the roles {', '.join(STREET_ROLES)}; a unit"
                               " token sees its unit's issues wherever they are")
    row = conn.execute("SELECT id, level FROM jurisdiction WHERE code = %s",
                       [street_code]).fetchone()
    if row is None:
        raise NotFound(f"no jurisdiction with code {street_code!r}")
    if row[1] != "street":
        raise ValidationFailed(f"{street_code!r} is a {row[1]}, not a street (街道)")
    return int(row[0])


def authenticate(conn: psycopg.Connection[Any], token: str, *, touch_use: bool = True
                 ) -> Principal | None:
    """The principal for a live (unexpired, unrevoked) token, or None.

    ``last_used_at`` is refreshed at most once a minute and never waits for the row lock:
    updating it on every request made all requests sharing one token (an Open311 app's key,
    an office's shared inspector token) queue behind each other until each committed.
    The lock is ``FOR NO KEY UPDATE``, the one the UPDATE takes anyway: ``FOR UPDATE`` also
    blocks the key-share lock a foreign-key check takes on the token row (an idempotency
    key names its token), so two requests with one token deadlocked, each holding what the
    other's check waited for.
    """
    with conn.cursor(row_factory=class_row(Principal)) as cur:
        principal = cur.execute(
            "SELECT id AS token_id, name, role, unit_id, post, street_id FROM api_token"
            " WHERE token_hash = %s AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now())",
            [_hash(token)],
        ).fetchone()
    if principal is not None and touch_use:
        touch(conn, principal.token_id)
    return principal


def touch(conn: psycopg.Connection[Any], token_id: int) -> None:
    """Record that the token was used now, unless it was less than a minute ago or another
    request holds its row (see :func:`authenticate`). On the primary: a read answered by a
    replica calls it apart, with ``touch_use=False`` there (api.reads.touch_token)."""
    conn.execute(
        "UPDATE api_token SET last_used_at = now() WHERE id = ("
        " SELECT id FROM api_token WHERE id = %s"
        " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
        " FOR NO KEY UPDATE SKIP LOCKED)", [token_id])


def revoke(conn: psycopg.Connection[Any], token_or_id: str) -> TokenInfo:
    """Revoke a token, named by its id (see ``list_tokens``) or by the token itself.

    Revoking is final and immediate: the next request with it gets 401. Revoking a revoked
    token changes nothing (its first revocation time stands).
    """
    by_id = token_or_id.isdigit()
    query = sql.SQL(
        "WITH revoked AS (UPDATE api_token SET revoked_at = coalesce(revoked_at, now())"
        " WHERE (%(by_id)s AND id = %(id)s) OR (NOT %(by_id)s AND token_hash = %(hash)s)"
        " RETURNING *) ") + _INFO.format(sql.Identifier("revoked"))
    with conn.cursor(row_factory=class_row(TokenInfo)) as cur:
        row = cur.execute(
            query,
            {"by_id": by_id, "id": int(token_or_id) if by_id else None,
             "hash": None if by_id else _hash(token_or_id)}).fetchone()
    if row is None:
        raise NotFound("no such token (give its id from `sitewatch token list`, or the token)")
    return row


def info(conn: psycopg.Connection[Any], token: str) -> TokenInfo:
    """The metadata of ``token`` (live or not)."""
    query = _INFO.format(sql.Identifier("api_token")) + sql.SQL(" WHERE t.token_hash = %s")
    with conn.cursor(row_factory=class_row(TokenInfo)) as cur:
        row = cur.execute(query, [_hash(token)]).fetchone()
    if row is None:
        raise NotFound("no such token")
    return row


def list_tokens(conn: psycopg.Connection[Any]) -> list[TokenInfo]:
    """Every token's metadata, by id."""
    query = _INFO.format(sql.Identifier("api_token")) + sql.SQL(" ORDER BY t.id")
    with conn.cursor(row_factory=class_row(TokenInfo)) as cur:
        return cur.execute(query).fetchall()
