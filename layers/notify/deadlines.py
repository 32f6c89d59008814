"""Deadlines turning yellow and red: one outbox event per issue and colour, announced once.

The traffic light (SQL ``issue_traffic_light``) moves with the clock, so no change to a table
announces it; the worker's ``deadline-lights`` job runs :func:`announce` every minute. What
was announced is kept in ``deadline_notice`` (migration 0020): a colour is announced when the
light reaches it from a lower one (green, or nothing announced yet: ``issue.due_soon`` for
yellow, ``issue.overdue`` for red; an issue found already red is told red only), never twice;
an extension that moves the light back to green forgets the notice, so the next yellow and red
are announced again, and one that moves red back to yellow lowers it silently, so the next red
is announced again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from layers.db.settings import Settings

# One statement, set-based: the lights now, the notices moved to them (upserted), the notices
# of issues no longer yellow or red (deleted), and the outbox rows of the colours newly
# reached. As the triggers of 0018, no outbox row is written while nobody subscribes, but the
# notices are kept, so a first subscription is not flooded with every issue already late.
_ANNOUNCE = """
WITH lit AS (
    SELECT i.id, i.lead_unit_id,
           issue_traffic_light(i.status, i.reported_at, i.deadline) AS light
    FROM issue i
    WHERE issue_is_open(i.status) AND i.deadline IS NOT NULL
), late AS (
    SELECT * FROM lit WHERE light IN ('yellow', 'red')
), moved AS (
    SELECT late.*, n.light AS was
    FROM late LEFT JOIN deadline_notice n ON n.issue_id = late.id
    WHERE n.light IS DISTINCT FROM late.light
), noted AS (
    INSERT INTO deadline_notice (issue_id, light)
    SELECT id, light FROM moved
    ON CONFLICT (issue_id) DO UPDATE SET light = excluded.light, noticed_at = now()
), cleared AS (
    DELETE FROM deadline_notice n
    WHERE NOT EXISTS (SELECT 1 FROM late WHERE late.id = n.issue_id)
), told AS (
    SELECT moved.*,
           CASE light WHEN 'red' THEN 'issue.overdue' ELSE 'issue.due_soon' END AS kind
    FROM moved
    WHERE was IS NULL OR light = 'red'
)
INSERT INTO outbox (kind, unit_id, payload)
SELECT kind, lead_unit_id,
       notify_issue_payload(id, jsonb_build_object('event', kind, 'light', light, 'at', now()))
FROM told
WHERE EXISTS (SELECT 1 FROM subscription)
ORDER BY id
RETURNING kind
"""


@dataclass(frozen=True)
class Announced:
    """How many issues were newly announced as due soon (yellow) and as overdue (red)."""

    due_soon: int
    overdue: int


def announce(conn: psycopg.Connection[Any]) -> Announced:
    """Write one outbox event per issue whose light newly turned yellow or red, and note it.

    Runs in the caller's transaction: its lock holds until the commit, so a second run
    started meanwhile (a slot overrun, a hand-run) waits and then sees these notices.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('sitewatch.deadline-lights'))")
        kinds = [row[0] for row in conn.execute(_ANNOUNCE).fetchall()]
    return Announced(kinds.count("issue.due_soon"), kinds.count("issue.overdue"))


def lights_job(conn: psycopg.Connection[Any], settings: Settings, now: datetime) -> str:
    """The worker's ``deadline-lights`` job: :func:`announce`, summarised in one line."""
    done = announce(conn)
    return f"{done.due_soon} due soon, {done.overdue} overdue announced"
