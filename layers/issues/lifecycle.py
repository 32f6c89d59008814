"""The issue lifecycle: one state machine, checked against the caller, audited in the same
transaction, with optimistic locking.

``reported -> assigned -> rectified -> verified (closed)``; ``rectified -> assigned`` when
verification fails (返工, counted); ``reported|assigned -> rejected|duplicate (closed)``.
Deadlines can be extended by a supervisor while the issue is open. Overdue is never stored: it
is derived from the deadline whenever an issue is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from layers.auth import access
from layers.auth.roles import Permission
from layers.auth.tokens import Principal
from layers.db import partitions
from layers.errors import Conflict, Forbidden, NotFound, ValidationFailed
from layers.issues import evidence
from layers.vocab import ACTIONS, AWAITING_UNIT_STATUSES, OPEN_STATUSES, Status


@dataclass(frozen=True)
class Rule:
    """Where an action may start, where it leads, and the permission it takes (who holds it,
    and whether a unit holds it for its own issues only, is the table of layers.auth.roles)."""

    sources: tuple[Status, ...]
    target: Status | None  # None: the status stays (deadline extension)
    permission: Permission


# One rule per action of layers.vocab.ACTIONS (tests/layers/test_vocab.py holds them equal).
RULES: dict[str, Rule] = {
    "assign": Rule(("reported",), "assigned", "assign"),
    "rectify": Rule(("assigned",), "rectified", "rectify"),
    "verify": Rule(("rectified",), "verified", "verify"),
    "reopen": Rule(("rectified",), "assigned", "reopen"),
    "reject": Rule(AWAITING_UNIT_STATUSES, "rejected", "reject"),
    "mark_duplicate": Rule(AWAITING_UNIT_STATUSES, "duplicate", "mark_duplicate"),
    "extend_deadline": Rule(OPEN_STATUSES, None, "extend_deadline"),
}


@dataclass(frozen=True)
class Transition:
    """A requested change: the action, the version the caller saw, and its particulars."""

    action: str
    version: int
    note: str | None = None
    unit: str | None = None  # assign: the lead unit (code), when the engine found none
    duplicate_of: str | None = None  # mark_duplicate: the public id of the original
    deadline: datetime | None = None  # extend_deadline: the new, later deadline
    evidence: Sequence[str] = ()  # rectify: "sha256:..." references of uploaded photos


@dataclass(frozen=True)
class _Locked:
    """The issue as a transition finds it, locked until the transaction ends."""

    id: int
    reported_at: datetime  # the partition key: the update reads one partition
    status: Status
    version: int
    deadline: datetime | None
    lead_unit_id: int | None
    territorial_unit_id: int | None
    functional_unit_id: int | None


@dataclass(frozen=True)
class _Updates:
    """The columns a transition changes besides status and version (None: unchanged)."""

    rework: int = 0
    lead: int | None = None
    deadline: datetime | None = None
    duplicate_of: int | None = None  # the original's id; reset on any other action


def apply(conn: psycopg.Connection[Any], public_id: str, change: Transition,
          caller: Principal) -> int:
    """Take ``change`` on the issue for ``caller``; return the new version.

    Raises NotFound, Forbidden (role or unit), Conflict (stale version, or the action is not
    possible from the current status; ``details`` carries the current status and version) or
    ValidationFailed (missing particulars). Nothing is written unless everything holds.
    """
    rule = RULES.get(change.action)
    if rule is None:
        raise ValidationFailed(f"unknown action {change.action!r}; one of {', '.join(ACTIONS)}")
    with conn.transaction():
        with conn.cursor(row_factory=class_row(_Locked)) as cur:
            issue = cur.execute(
                sql.SQL("SELECT id, reported_at, status, version, deadline, lead_unit_id,"
                        " territorial_unit_id, functional_unit_id FROM issue i WHERE {}"
                        " FOR UPDATE").format(partitions.ISSUE_BY_PUBLIC_ID),
                [public_id]).fetchone()
        if issue is None:
            raise NotFound(f"no issue {public_id!r}")
        current = {"status": issue.status, "version": issue.version}
        access.require(caller, rule.permission)
        if not access.holds(caller, rule.permission, (
                issue.lead_unit_id, issue.territorial_unit_id, issue.functional_unit_id)):
            raise Forbidden("a unit may act only on the issues it is responsible for")
        if issue.version != change.version:
            raise Conflict("the issue changed since you read it; reload and retry",
                           details=current)
        if issue.status not in rule.sources:
            raise Conflict(f"cannot {change.action} an issue that is {issue.status}",
                           details=current)
        updates, data = _particulars(conn, change, issue)
        if change.action == "rectify":
            # Only the caller's own uploads: naming a photo seen on another unit's issue would
            # otherwise attach it here, and this unit could then download it.
            access.require_own_evidence(conn, caller, list(change.evidence))
            # What the verifier will look at: when each photo was taken and how far from the
            # issue (EXIF), next to the photo itself.
            data["evidence"] = [p.as_json() for p in
                                evidence.describe(conn, list(change.evidence), issue.id)]
        target = rule.target or issue.status
        conn.execute(
            "UPDATE issue SET status = %(target)s, version = version + 1, updated_at = now(),"
            " closed_at = CASE WHEN %(target)s IN ('verified', 'rejected', 'duplicate')"
            "   THEN now() END,"
            " rework_count = rework_count + %(rework)s,"
            " lead_unit_id = coalesce(%(lead)s, lead_unit_id),"
            " deadline = coalesce(%(deadline)s, deadline),"
            " duplicate_of = %(duplicate_of)s"
            " WHERE id = %(id)s AND reported_at = %(reported_at)s",
            {"target": target, "id": issue.id, "reported_at": issue.reported_at,
             "rework": updates.rework, "lead": updates.lead,
             "deadline": updates.deadline, "duplicate_of": updates.duplicate_of})
        conn.execute(
            "INSERT INTO issue_event (issue_id, actor, actor_role, action, from_status,"
            " to_status, note, evidence, data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [issue.id, caller.actor, caller.role,
             change.action, issue.status, target, change.note,
             Jsonb(list(change.evidence)), Jsonb(data)])
        return issue.version + 1


def _particulars(conn: psycopg.Connection[Any], change: Transition, issue: _Locked
                 ) -> tuple[_Updates, dict[str, Any]]:
    """Check what each action needs; return the column updates and the event's data (JSON)."""
    data: dict[str, Any] = {}
    if change.action == "assign":
        if change.unit:
            row = conn.execute("SELECT id FROM unit WHERE code = %s", [change.unit]).fetchone()
            if row is None:
                raise ValidationFailed(f"no unit {change.unit!r}")
            data["lead_unit"] = change.unit
            return _Updates(lead=row[0]), data
        if issue.lead_unit_id is None:
            raise ValidationFailed("this issue has no lead unit yet: give 'unit'")
    elif change.action == "rectify":
        if not change.evidence:
            raise ValidationFailed("rectification needs at least one 'after' photo (evidence)")
    elif change.action == "reopen":
        if not change.note:
            raise ValidationFailed("say why verification failed (note)")
        return _Updates(rework=1), data
    elif change.action == "mark_duplicate":
        # Through the issue: a street-scoped caller names only its street's issues.
        row = conn.execute(sql.SQL("SELECT i.id FROM issue i WHERE {} AND i.id <> %s").format(
            partitions.ISSUE_BY_PUBLIC_ID), [change.duplicate_of, issue.id]).fetchone()
        if row is None:
            raise ValidationFailed("'duplicate_of' must name another existing issue")
        data["duplicate_of"] = change.duplicate_of
        return _Updates(duplicate_of=row[0]), data
    elif change.action == "extend_deadline":
        if change.deadline is None or change.deadline.tzinfo is None:
            raise ValidationFailed("give the new 'deadline' with a time zone")
        if issue.deadline is not None and change.deadline <= issue.deadline:
            raise ValidationFailed("the new deadline must be later than the current one")
        data["deadline"] = {"from": issue.deadline.isoformat() if issue.deadline else None,
                            "to": change.deadline.isoformat()}
        return _Updates(deadline=change.deadline), data
    return _Updates(), data
