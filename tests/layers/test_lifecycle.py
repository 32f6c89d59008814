"""The lifecycle state machine: every action x role x status, locking, particulars, audit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from layers.auth import tokens
from layers.auth.tokens import Principal
from layers.db.settings import Settings
from layers.errors import Conflict, DomainError, Forbidden, ValidationFailed
from layers.issues import evidence, lifecycle
from layers.issues.lifecycle import RULES, Transition
from layers.vocab import ROLES

STATUSES = ("reported", "assigned", "rectified", "verified", "rejected", "duplicate")
CLOSED = ("verified", "rejected", "duplicate")
DEADLINE = datetime.fromisoformat("2026-06-01T12:00:00+08:00")
# The contract (DESIGN.md lifecycle; issue 4), written out independently of layers.issues.lifecycle:
# action -> (statuses it starts from, status it leads to, roles that may take it).
SPEC: dict[str, tuple[set[str], str | None, set[str]]] = {
    "assign": ({"reported"}, "assigned", {"admin", "supervisor"}),
    "rectify": ({"assigned"}, "rectified", {"unit", "admin"}),
    "verify": ({"rectified"}, "verified", {"supervisor"}),
    "reopen": ({"rectified"}, "assigned", {"supervisor"}),
    "reject": ({"reported", "assigned"}, "rejected", {"admin", "supervisor"}),
    "mark_duplicate": ({"reported", "assigned"}, "duplicate", {"admin", "supervisor"}),
    "extend_deadline": ({"reported", "assigned", "rectified"}, None, {"supervisor"}),
}


def _setup(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Two community units; return their ids."""
    ids = [conn.execute("INSERT INTO unit (code, name, kind) VALUES (%s, %s, 'territorial')"
                        " RETURNING id", [c, n]).fetchone() for c, n in
           (("C01", "湖东社区"), ("C02", "湖西社区"))]
    assert ids[0] is not None and ids[1] is not None
    return int(ids[0][0]), int(ids[1][0])


def _issue(conn: psycopg.Connection[Any], status: str, lead: int) -> str:
    row = conn.execute(
        "INSERT INTO issue (category_code, geom, description, source, status, deadline,"
        " lead_unit_id, territorial_unit_id, reported_at, closed_at, duplicate_of)"
        " VALUES ('CTY-05', ST_SetSRID(ST_MakePoint(120.7, 31.3), 4326), '暴露垃圾',"
        " 'self_inspection', %(s)s, %(d)s, %(u)s, %(u)s, %(r)s,"
        " CASE WHEN %(s)s IN ('verified', 'rejected', 'duplicate') THEN now() END,"
        " CASE WHEN %(s)s = 'duplicate' THEN (SELECT min(id) FROM issue) END)"
        " RETURNING public_id",
        {"s": status, "d": DEADLINE, "u": lead, "r": DEADLINE - timedelta(days=2)}).fetchone()
    assert row is not None
    return str(row[0])


def _request(action: str, original: str, photo: str) -> Transition:
    """A complete request for ``action`` (the particulars each action needs)."""
    return Transition(action=action, version=1, note="备注", unit="C01",
                      duplicate_of=original, deadline=DEADLINE + timedelta(days=3),
                      evidence=(photo,))


def _token(conn: psycopg.Connection[Any]) -> int:
    """The id of a new token (the callers below are built by hand around it)."""
    tokens.create(conn, role="admin", name="uploader")
    row = conn.execute("SELECT max(id) FROM api_token").fetchone()
    assert row is not None
    return int(row[0])


def _photo(conn: psycopg.Connection[Any], root: Path, jpeg: Callable[..., bytes],
           caller: Principal) -> str:
    """A photo uploaded by ``caller``: transitions take only the caller's own uploads."""
    return evidence.save(conn, root, jpeg(), zone=Settings().zone,
                         uploader=evidence.Uploader(caller.token_id, caller.unit_id)).ref


def test_every_action_role_and_status(conn: psycopg.Connection[Any], tmp_path: Path,
        jpeg: Callable[..., bytes]) -> None:
    own, _ = _setup(conn)
    original = _issue(conn, "assigned", own)
    uploader = _token(conn)
    photo = _photo(conn, tmp_path, jpeg, Principal(uploader, "uploader", "admin", None))
    mismatches = []
    assert set(RULES) == set(SPEC)
    for action, (sources, target, roles) in SPEC.items():
        for role in ROLES:
            caller = Principal(token_id=uploader, name=f"{role}-1", role=role,
                               unit_id=own if role == "unit" else None)
            for status in STATUSES:
                public_id = _issue(conn, status, own)
                if role not in roles:
                    expected: type[Exception] | None = Forbidden
                elif status not in sources:
                    expected = Conflict
                else:
                    expected = None
                try:
                    lifecycle.apply(conn, public_id, _request(action, original, photo), caller)
                    got: type[Exception] | None = None
                except DomainError as exc:
                    got = type(exc)
                if got is not expected:
                    mismatches.append((action, role, status, expected, got))
                after = conn.execute("SELECT status, version FROM issue WHERE public_id = %s",
                                     [public_id]).fetchone()
                events = conn.execute(
                    "SELECT count(*) FROM issue_event e JOIN issue i ON i.id = e.issue_id"
                    " WHERE i.public_id = %s", [public_id]).fetchone()
                if expected is None:
                    assert after == ((target or status), 2)
                    assert events == (1,)
                else:
                    assert after == (status, 1)  # nothing written
                    assert events == (0,)
    assert mismatches == []


def test_a_unit_acts_only_on_its_own_issues(conn: psycopg.Connection[Any],
                                            tmp_path: Path,
        jpeg: Callable[..., bytes]) -> None:
    own, other = _setup(conn)
    mine, theirs = _issue(conn, "assigned", own), _issue(conn, "assigned", other)
    unit = Principal(token_id=_token(conn), name="湖东", role="unit", unit_id=own)
    rectify = Transition(action="rectify", version=1,
                         evidence=(_photo(conn, tmp_path, jpeg, unit),))
    lifecycle.apply(conn, mine, rectify, unit)
    with pytest.raises(Forbidden, match="responsible"):
        lifecycle.apply(conn, theirs, rectify, unit)


def test_stale_version_is_refused_with_the_current_state(conn: psycopg.Connection[Any],
                                                         tmp_path: Path,
        jpeg: Callable[..., bytes]) -> None:
    own, _ = _setup(conn)
    public_id = _issue(conn, "assigned", own)
    admin = Principal(token_id=_token(conn), name="a", role="admin", unit_id=None)
    lifecycle.apply(conn, public_id, Transition(
        "rectify", 1, evidence=(_photo(conn, tmp_path, jpeg, admin),)), admin)
    with pytest.raises(Conflict) as caught:
        lifecycle.apply(conn, public_id, Transition("reject", 1), admin)
    assert caught.value.details == {"status": "rectified", "version": 2}


def test_concurrent_transitions_exactly_one_wins(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        own, _ = _setup(conn)
        public_id = _issue(conn, "rectified", own)
    supervisor = Principal(token_id=1, name="s", role="supervisor", unit_id=None)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def act(action: str) -> None:
        with psycopg.connect(dsn) as conn:
            barrier.wait()
            try:
                lifecycle.apply(conn, public_id, Transition(action, 1, note="并发"), supervisor)
                outcomes.append("won")
            except Conflict:
                outcomes.append("conflict")

    threads = [threading.Thread(target=act, args=(a,)) for a in ("verify", "reopen")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "won"]
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT version FROM issue WHERE public_id = %s",
                            [public_id]).fetchone() == (2,)
        assert conn.execute("SELECT count(*) FROM issue_event").fetchone() == (1,)


def test_particulars(conn: psycopg.Connection[Any], tmp_path: Path,
        jpeg: Callable[..., bytes]) -> None:
    own, _ = _setup(conn)
    supervisor = Principal(token_id=1, name="s", role="supervisor", unit_id=None)
    admin = Principal(token_id=_token(conn), name="a", role="admin", unit_id=None)
    photo = _photo(conn, tmp_path, jpeg, admin)
    a = _issue(conn, "assigned", own)
    with pytest.raises(ValidationFailed, match="photo"):
        lifecycle.apply(conn, a, Transition("rectify", 1), admin)
    lifecycle.apply(conn, a, Transition("rectify", 1, evidence=(photo,)), admin)
    with pytest.raises(ValidationFailed, match="why"):
        lifecycle.apply(conn, a, Transition("reopen", 2), supervisor)
    lifecycle.apply(conn, a, Transition("reopen", 2, note="仍未清理"), supervisor)
    lifecycle.apply(conn, a, Transition("rectify", 3, evidence=(photo,)), admin)
    lifecycle.apply(conn, a, Transition("verify", 4), supervisor)
    row = conn.execute("SELECT status, rework_count, closed_at IS NOT NULL FROM issue"
                       " WHERE public_id = %s", [a]).fetchone()
    assert row == ("verified", 1, True)

    b = _issue(conn, "assigned", own)
    with pytest.raises(ValidationFailed, match="later"):
        lifecycle.apply(conn, b, Transition("extend_deadline", 1, deadline=DEADLINE), supervisor)
    later = DEADLINE + timedelta(days=2)
    lifecycle.apply(conn, b, Transition("extend_deadline", 1, deadline=later), supervisor)
    assert conn.execute("SELECT deadline, status FROM issue WHERE public_id = %s",
                        [b]).fetchone() == (later, "assigned")
    with pytest.raises(ValidationFailed, match="another existing issue"):
        lifecycle.apply(conn, b, Transition("mark_duplicate", 2, duplicate_of=b), supervisor)
    lifecycle.apply(conn, b, Transition("mark_duplicate", 2, duplicate_of=a), supervisor)
    trail = conn.execute(
        "SELECT action, from_status, to_status FROM issue_event e JOIN issue i"
        " ON i.id = e.issue_id WHERE i.public_id = %s ORDER BY e.id", [b]).fetchall()
    assert trail == [("extend_deadline", "assigned", "assigned"),
                     ("mark_duplicate", "assigned", "duplicate")]
