"""The map of an import's preview, kept for a day (``line_preview``, migration 0027).

A preview stores no line and no issue (:mod:`layers.preview`), yet its map is a page of its
own (``/maps/revisions/preview/{token}``), opened after the answer. What the page draws is
kept here under a random token (256 bits: unguessable, as the page is also behind a role),
for :data:`LIFETIME`, at most :data:`MAX_PAYLOAD_BYTES` of it (the moving issues are already
capped by :data:`layers.preview.MAX_MOVES_DRAWN`, the counts complete). Every save purges
what expired and all but the newest :data:`MAX_KEPT`, so the table stays bounded.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from layers import revisions
from layers.errors import NotFound
from layers.preview import Drawing, Line, Move, Preview

LIFETIME = timedelta(hours=24)
#: A preview whose map would be larger is answered without one (its counts still are).
MAX_PAYLOAD_BYTES = 4 * 2**20
#: At most this many maps are kept at once (the newest): with MAX_PAYLOAD_BYTES, 200 MB.
MAX_KEPT = 50
#: What a token looks like (secrets.token_urlsafe(32)); the route refuses anything else.
PREVIEW_ID = r"^[A-Za-z0-9_-]{43}$"


@dataclass(frozen=True)
class StoredPreview:
    """A preview's map as kept: who made it, of what file, when; its counts and drawing."""

    token: str
    created_at: datetime
    expires_at: datetime
    created_by: str
    source: str
    table: str
    examined: int
    changed: int
    lead_changed: int
    points_moved: float
    units: list[revisions.UnitBalance]
    drawing: Drawing


def save(conn: psycopg.Connection[Any], shown: Preview, *, source: str, actor: str
         ) -> str | None:
    """Keep the map of ``shown`` (the preview of the file named ``source``) for a day; its
    token, or None when the preview has no drawing or its map would be too large."""
    if shown.drawing is None:
        return None
    payload = json.dumps({
        "source": source, "table": shown.table, "examined": shown.examined,
        "changed": shown.changed, "lead_changed": shown.lead_changed,
        "points_moved": shown.points_moved, "units": [asdict(u) for u in shown.units],
        "drawing": asdict(shown.drawing)}, ensure_ascii=False)
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        return None
    token = secrets.token_urlsafe(32)
    with conn.transaction():
        purge(conn, keep=MAX_KEPT - 1)
        conn.execute("INSERT INTO line_preview (token, created_by, payload, expires_at)"
                     " VALUES (%s, %s, %s::jsonb, now() + %s)",
                     [token, actor, payload, LIFETIME])
    return token


def purge(conn: psycopg.Connection[Any], *, keep: int = MAX_KEPT) -> int:
    """Delete the previews that expired, and all but the newest ``keep``; how many."""
    return conn.execute(
        "DELETE FROM line_preview WHERE expires_at <= now() OR token IN (SELECT token FROM"
        " line_preview ORDER BY created_at DESC, token OFFSET %s)", [keep]).rowcount


def load(conn: psycopg.Connection[Any], token: str) -> StoredPreview:
    """The preview kept under ``token``; NotFound when there is none or it expired."""
    row = None
    if re.fullmatch(PREVIEW_ID, token):
        row = conn.execute("SELECT created_at, expires_at, created_by, payload"
                           " FROM line_preview WHERE token = %s AND expires_at > now()",
                           [token]).fetchone()
    if row is None:
        raise NotFound("预览不存在或已过期（保留 24 小时）/ no such preview, or it expired "
                       "(previews are kept for 24 hours)")
    created_at, expires_at, created_by, payload = row
    drawing = payload["drawing"]
    return StoredPreview(
        token=token, created_at=created_at, expires_at=expires_at, created_by=created_by,
        source=payload["source"], table=payload["table"], examined=payload["examined"],
        changed=payload["changed"], lead_changed=payload["lead_changed"],
        points_moved=payload["points_moved"],
        units=[revisions.UnitBalance(**u) for u in payload["units"]],
        drawing=Drawing([Line(**x) for x in drawing["old_lines"]],
                        [Line(**x) for x in drawing["new_lines"]],
                        [Move(**x) for x in drawing["moves"]], drawing["unit_names"]))

