"""Notifications: the outbox written with its event, signed deliveries to real loopback
receivers (an HTTP server and an SMTP server in threads), retries, dead letters, refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from layers.assignment import load_assigner, reassign
from layers.auth import tokens
from layers.auth.tokens import Principal
from layers.db.settings import Settings
from layers.errors import ValidationFailed
from layers.issues import lifecycle
from layers.issues.lifecycle import Transition
from layers.notify import channels, deliveries, outbox, targets
from layers.notify.deliveries import deliver_due
from layers.supervision import orders
from layers.supervision.orders import Issuer
from layers.worker import jobs, runner
from tests.loopback import Answer, Inbox, receiving, smtp_inbox

ADMIN = Principal(0, "创建办 李四", "admin", None)
SECRET = "s3cret-键"
DEADLINE = datetime.fromisoformat("2026-06-01T12:00:00+08:00")


@dataclass
class Receiver:
    """A loopback HTTP receiver answering each POST with the next status of ``statuses``
    (the last one repeats); it keeps what it was sent."""

    statuses: list[int] = field(default_factory=lambda: [200])
    body: bytes = b'{"errcode":0}'
    delay: float = 0.0
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def answer(self) -> int:
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    def answer(request: BaseHTTPRequestHandler, body: bytes) -> Answer:
        time.sleep(state.delay)
        with lock:
            state.requests.append((request.path, dict(request.headers), body))
            status = state.answer()
        moved = {"Location": state.url + "/elsewhere"} if status in (301, 302) else {}
        return Answer(status, state.body, moved)

    with receiving(answer) as url:
        state.url = url
        yield state


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, str]]:
    with smtp_inbox() as found:
        yield found


def _settings(smtp_url: str = "", allow_private: bool = True) -> Settings:
    return Settings(smtp_url=smtp_url, webhook_allow_private=allow_private,
                    public_url="https://sw.example.cn")


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to a database with two community units (C01, C02)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('C01', '湖东社区',"
                     " 'territorial'), ('C02', '湖西社区', 'territorial')")
        yield conn


def _issue(conn: psycopg.Connection[Any], status: str = "reported",
           source: str = "self_inspection") -> str:
    row = conn.execute(
        "INSERT INTO issue (category_code, geom, description, source, status, deadline,"
        " reported_at) VALUES ('CTY-05', ST_SetSRID(ST_MakePoint(120.7, 31.3), 4326),"
        " '暴露垃圾', %s, %s, %s, %s) RETURNING public_id",
        [source, status, DEADLINE, DEADLINE - timedelta(days=2)]).fetchone()
    assert row is not None
    return str(row[0])


def _assign(conn: psycopg.Connection[Any], unit: str = "C01") -> str:
    public_id = _issue(conn)
    lifecycle.apply(conn, public_id, Transition("assign", 1, unit=unit), ADMIN)
    return public_id


def _subscribe(conn: psycopg.Connection[Any], target: str, *, unit: str | None = "C01",
               channel: str = "webhook", secret: str | None = SECRET,
               events: list[str] | None = None) -> outbox.Subscription:
    return outbox.add(conn, unit=unit, channel=channel, target=target, secret=secret,
                      events=events or [], created_by="创建办")


def _until_settled(conn: psycopg.Connection[Any], settings: Settings, steps: int = 40
                   ) -> list[deliveries.Outcome]:
    """Run deliver_due at later and later times (past any backoff) until nothing is pending."""
    now = datetime.now().astimezone()
    outcomes = []
    for _ in range(steps):
        now += timedelta(hours=2)
        outcomes.append(deliver_due(conn, settings, now=now))
        if not deliveries.list_deliveries(conn, "pending"):
            break
    return outcomes


def test_event_kinds_are_the_outbox_tables(db: psycopg.Connection[Any]) -> None:
    row = db.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                     " WHERE conrelid = 'outbox'::regclass AND contype = 'c'"
                     " AND pg_get_constraintdef(oid) LIKE '%kind%'").fetchone()
    assert row is not None
    named = set(str(row[0]).split("'")[1::2])
    assert named == set(outbox.EVENT_KINDS)


def test_an_assignment_sends_one_signed_webhook_and_one_email(
        db: psycopg.Connection[Any], receiver: Receiver, smtp: tuple[Inbox, str]) -> None:
    inbox, smtp_url = smtp
    _subscribe(db, receiver.url + "/hook")
    _subscribe(db, "office@example.cn", unit=None, channel="email", secret=None)
    _subscribe(db, receiver.url + "/other", unit="C02")  # another unit's: not told
    public_id = _assign(db)
    settings = _settings(smtp_url)

    assert deliver_due(db, settings) == deliveries.Outcome(delivered=2)
    assert deliver_due(db, settings) == deliveries.Outcome()

    [(path, headers, body)] = receiver.requests
    assert path == "/hook"
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Sitewatch-Signature"], expected)
    assert headers["X-Sitewatch-Event"] == "issue.assigned"
    sent = json.loads(body)
    assert sent["id"] == headers["X-Sitewatch-Delivery"]
    assert sent["data"]["issue"] == public_id
    assert sent["data"]["unit"] == "C01"
    assert sent["link"] == "https://sw.example.cn/units/C01/work"
    assert sent["text"].startswith("新问题交办")

    [(recipients, mail)] = inbox.mails
    assert recipients == ["office@example.cn"]
    assert public_id in str(mail["Subject"])
    text = mail.get_payload(decode=True)
    assert isinstance(text, bytes)
    content = text.decode()
    assert "整改期限 Deadline: 2026-06-01 12:00" in content
    assert "湖东社区" in content
    assert "https://sw.example.cn/units/C01/work" in content


def test_a_receiver_failing_n_times_gets_it_on_retry_n_plus_1(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    receiver.statuses = [500, 502, 429, 200]
    _subscribe(db, receiver.url)
    _assign(db)
    _until_settled(db, _settings())
    ids = {h["X-Sitewatch-Delivery"] for _, h, _ in receiver.requests}
    assert len(receiver.requests) == 4 and len(ids) == 1
    [done] = deliveries.list_deliveries(db, "delivered")
    assert done.attempts == 4 and done.id in ids


def test_a_receiver_always_failing_ends_dead_listed_and_retryable(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    receiver.statuses = [503]
    _subscribe(db, receiver.url)
    _assign(db)
    outcomes = _until_settled(db, _settings())
    assert outcomes[-1].dead == 1
    # 24 h of retries, each at least 2 h apart here: about a dozen attempts, not forever.
    assert 10 <= len(receiver.requests) <= 14
    [dead] = deliveries.list_deliveries(db, "dead")
    assert dead.last_error is not None and dead.last_error.startswith("HTTP 503")
    receiver.statuses = [200]
    assert deliveries.retry(db, dead.id).state == "pending"
    assert deliver_due(db, _settings()).delivered == 1


@pytest.mark.parametrize("status", [404, 410, 301])
def test_a_4xx_or_a_redirect_goes_dead_at_once(
        db: psycopg.Connection[Any], receiver: Receiver, status: int) -> None:
    receiver.statuses = [status]
    _subscribe(db, receiver.url)
    _assign(db)
    assert deliver_due(db, _settings()) == deliveries.Outcome(dead=1)
    assert len(receiver.requests) == 1  # the redirect was not followed


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x",
                                 "http://169.254.169.254/latest", "http://10.1.2.3/",
                                 "http://[::1]/", "http://[::ffff:192.168.1.1]/",
                                 "ftp://example.cn/", "http://user:pw@example.cn/"])
def test_private_and_odd_targets_are_refused(url: str) -> None:
    with pytest.raises(ValidationFailed):
        targets.check_url(url, allow_private=False)


def test_a_private_receiver_gets_nothing_without_the_setting(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    _subscribe(db, receiver.url)
    _assign(db)
    assert deliver_due(db, _settings(allow_private=False)) == deliveries.Outcome(dead=1)
    assert receiver.requests == []
    [dead] = deliveries.list_deliveries(db, "dead")
    assert dead.last_error is not None and "SITEWATCH_WEBHOOK_ALLOW_PRIVATE" in dead.last_error


def test_two_workers_never_send_the_same_delivery_twice(
        dsn: str, db: psycopg.Connection[Any], receiver: Receiver) -> None:
    receiver.delay = 0.005
    _subscribe(db, receiver.url)
    for _ in range(40):
        _assign(db)

    def work() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            deliver_due(conn, _settings(), limit=100)

    workers = [threading.Thread(target=work) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    ids = [h["X-Sitewatch-Delivery"] for _, h, _ in receiver.requests]
    assert len(ids) == len(set(ids)) == 40
    assert len(deliveries.list_deliveries(db, "delivered")) == 40


def test_group_robots_get_their_markdown_and_dingtalk_is_signed(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    _subscribe(db, receiver.url + "/wecom?key=k", channel="wecom", secret=None)
    _subscribe(db, receiver.url + "/ding?access_token=t", channel="dingtalk")
    _assign(db)
    assert deliver_due(db, _settings()).delivered == 2
    sent = {urlsplit(p).path: (parse_qs(urlsplit(p).query), json.loads(b))
            for p, _, b in receiver.requests}
    _, wecom = sent["/wecom"]
    assert wecom["msgtype"] == "markdown"
    assert "新问题交办" in wecom["markdown"]["content"]
    query, ding = sent["/ding"]
    assert ding["msgtype"] == "markdown" and ding["markdown"]["text"].startswith("### 新问题交办")
    stamp = query["timestamp"][0]
    digest = hmac.new(SECRET.encode(), f"{stamp}\n{SECRET}".encode(), hashlib.sha256).digest()
    assert query["sign"][0] == base64.b64encode(digest).decode()
    assert query["access_token"] == ["t"]


def test_a_units_robot_mentions_its_contact_and_people_by_mobile(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    db.execute("UPDATE unit SET contact = '王主任 138-0000-1111' WHERE code = 'C01'")
    tokens.create(db, name="赵六", role="unit", unit_code="C01", mobile="13900002222")
    tokens.create(db, name="钱七", role="unit", unit_code="C01", mobile="13700003333")
    db.execute("UPDATE api_token SET revoked_at = now() WHERE name = '钱七'")
    tokens.create(db, name="孙八", role="unit", unit_code="C02", mobile="13600004444")
    _subscribe(db, receiver.url + "/wecom", channel="wecom", secret=None)
    _subscribe(db, receiver.url + "/ding", channel="dingtalk", secret=None)
    _subscribe(db, receiver.url + "/office", unit=None, channel="wecom", secret=None)
    _assign(db)
    assert deliver_due(db, _settings()).delivered == 3
    sent = {urlsplit(p).path: json.loads(b) for p, _, b in receiver.requests}
    mentioned = ["13800001111", "13900002222"]
    # 企业微信 takes mobile numbers only in a text message.
    assert sent["/wecom"]["msgtype"] == "text"
    assert sent["/wecom"]["text"]["mentioned_mobile_list"] == mentioned
    assert "新问题交办" in sent["/wecom"]["text"]["content"]
    # 钉钉 takes them beside markdown, and shows only those written in the text as @number.
    assert sent["/ding"]["at"] == {"atMobiles": mentioned, "isAtAll": False}
    assert sent["/ding"]["markdown"]["text"].endswith("@13800001111 @13900002222")
    # The office's group is told every unit's events and pings none of their people.
    assert sent["/office"]["msgtype"] == "markdown"


def test_a_verification_mentions_nobody(db: psycopg.Connection[Any],
                                        receiver: Receiver) -> None:
    tokens.create(db, name="赵六", role="unit", unit_code="C01", mobile="13900002222")
    _subscribe(db, receiver.url, channel="dingtalk", secret=None, events=["issue.verified"])
    public_id = _assign(db)
    db.execute("UPDATE issue SET status = 'rectified', version = version + 1"
               " WHERE public_id = %s", [public_id])
    version = db.execute("SELECT version FROM issue WHERE public_id = %s",
                         [public_id]).fetchone()
    assert version is not None
    lifecycle.apply(db, public_id, Transition("verify", version[0]),
                    Principal(0, "督查组 张三", "supervisor", None))
    assert deliver_due(db, _settings()).delivered == 1
    (_, _, body), = receiver.requests
    assert json.loads(body)["at"]["atMobiles"] == []


def test_a_long_description_is_cut_to_what_the_robot_takes(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    _subscribe(db, receiver.url, channel="wecom", secret=None)
    public_id = _assign(db)
    db.execute("UPDATE outbox SET payload = payload || jsonb_build_object('description',"
               " repeat('垃圾', 3000))")
    assert deliver_due(db, _settings()).delivered == 1
    (_, _, body), = receiver.requests
    content = json.loads(body)["markdown"]["content"]
    assert content.startswith("### 新问题交办") and public_id in content
    assert content.endswith("…") and len(content.encode()) <= channels.WECOM_MARKDOWN_BYTES


def test_a_robot_errcode_is_a_failure(db: psycopg.Connection[Any], receiver: Receiver) -> None:
    receiver.body = b'{"errcode":310000,"errmsg":"sign not match"}'
    _subscribe(db, receiver.url, channel="dingtalk")
    _assign(db)
    assert deliver_due(db, _settings()) == deliveries.Outcome(retrying=1)


def test_orders_reworks_verifications_and_findings_reach_the_outbox(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    _subscribe(db, receiver.url, unit=None)
    public_id = _assign(db)
    orders.issue_orders(db, Issuer("督查组 张三", "supervisor"))
    supervisor = Principal(0, "督查组 张三", "supervisor", None)
    for action in ("reopen", "verify"):
        # Rectified by the unit (its evidence is another test's business).
        row = db.execute("UPDATE issue SET status = 'rectified', version = version + 1"
                         " WHERE public_id = %s RETURNING version", [public_id]).fetchone()
        assert row is not None
        lifecycle.apply(db, public_id, Transition(action, row[0], note="围挡仍未封闭"),
                        supervisor)
    # A new assessor finding, as layers.issues.records.store writes its report event.
    finding = _issue(db, source="external_assessment")
    db.execute("INSERT INTO issue_event (issue_id, actor, action, to_status) SELECT id,"
               " '测评组', 'report', 'reported' FROM issue WHERE public_id = %s", [finding])
    kinds = [k for (k,) in db.execute("SELECT kind FROM outbox ORDER BY id").fetchall()]
    assert kinds == ["issue.assigned", "order.issued", "issue.reworked", "issue.verified",
                     "finding.new"]
    order = db.execute("SELECT payload FROM outbox WHERE kind = 'order.issued'").fetchone()
    assert order is not None and order[0]["unit"] == "C01" and order[0]["issues"] == 1
    assert db.execute("SELECT count(*) FROM delivery").fetchone() == (5,)


def test_events_filter_and_no_outbox_without_subscriptions(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    _assign(db)
    assert db.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
    _subscribe(db, receiver.url, events=["order.issued"])
    _assign(db)
    assert db.execute("SELECT count(*) FROM outbox").fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM delivery").fetchone() == (0,)


def test_a_test_message_goes_to_its_subscription_only(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    first = _subscribe(db, receiver.url + "/a")
    _subscribe(db, receiver.url + "/b", unit=None)
    delivery = outbox.test(db, first.id)
    assert deliver_due(db, _settings()).delivered == 1
    [(path, headers, _)] = receiver.requests
    assert path == "/a" and headers["X-Sitewatch-Delivery"] == delivery


def test_the_workers_deliver_job_sends_and_commits_each(
        dsn: str, db: psycopg.Connection[Any], receiver: Receiver) -> None:
    _subscribe(db, receiver.url)
    _assign(db)
    deliver = [j for j in jobs.JOBS if j.name == "deliver"]
    settings = Settings(database_url=dsn, webhook_allow_private=True)
    [(name, _, result)] = runner.run_due(db, deliver, settings, "w1")
    assert (name, result) == ("deliver", "1 delivered, 0 to retry, 0 dead")
    assert len(receiver.requests) == 1
    assert len(deliveries.list_deliveries(db, "delivered")) == 1


def test_the_deliver_job_drains_a_backlog_beyond_one_batch(
        dsn: str, db: psycopg.Connection[Any], receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deliveries, "BATCH", 3)
    _subscribe(db, receiver.url)
    for _ in range(7):
        _assign(db)
    deliver = [j for j in jobs.JOBS if j.name == "deliver"]
    settings = Settings(database_url=dsn, webhook_allow_private=True)
    [(_, _, result)] = runner.run_due(db, deliver, settings, "w1")
    assert result == "7 delivered, 0 to retry, 0 dead"
    assert len(receiver.requests) == 7


def test_a_bulk_reassignment_tells_each_new_lead_unit_once(demo_dsn: str,
                                                           receiver: Receiver) -> None:
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        _subscribe(conn, receiver.url, unit=None, events=["issue.reassigned"])
        # One community's ground handed to another unit: its issues change territorial unit,
        # and those it led change lead unit.
        conn.execute("""
            UPDATE jurisdiction SET unit_id = (SELECT id FROM unit WHERE kind = 'territorial'
                                               ORDER BY code DESC LIMIT 1)
            WHERE unit_id = (SELECT id FROM unit WHERE kind = 'territorial'
                             ORDER BY code LIMIT 1)""")
        with conn.transaction():
            reassign(conn, load_assigner(conn), actor="test")
        moved = conn.execute("SELECT array_agg(issue_id ORDER BY issue_id) FROM issue_trail"
                             " WHERE action = 'reassign' AND data ? 'lead_unit_id'"
                             ).fetchone()
        told = conn.execute("SELECT array_agg(i.id ORDER BY i.id), bool_and(o.unit_id ="
                            " i.lead_unit_id) FROM outbox o JOIN issue i"
                            " ON i.public_id = o.payload->>'issue'"
                            " WHERE o.kind = 'issue.reassigned'").fetchone()
        assert moved is not None and told is not None
        assert moved[0] and told[0] == moved[0] and told[1] is True
        assert conn.execute("SELECT count(*) FROM delivery").fetchone() == (len(moved[0]),)


def test_a_delivery_that_cannot_be_sent_does_not_block_the_others(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    # Stored before the checks existed, say: a URL the HTTP client rejects.
    db.execute("INSERT INTO subscription (unit_id, channel, target, created_by) SELECT id,"
               " 'webhook', 'http://a' || chr(1) || 'b/', 'old' FROM unit WHERE code = 'C01'")
    _assign(db)
    _subscribe(db, receiver.url)
    _assign(db)
    # The broken subscription's two deliveries (each issue's) go dead; the good one arrives.
    assert deliver_due(db, _settings()) == deliveries.Outcome(delivered=1, dead=2)
    dead = deliveries.list_deliveries(db, "dead")
    assert [(d.last_error or "").startswith("invalid URL") for d in dead] == [True, True]
    assert len(receiver.requests) == 1


def test_a_payload_the_renderer_trips_on_is_recorded_not_stuck(
        db: psycopg.Connection[Any], receiver: Receiver) -> None:
    first = _subscribe(db, receiver.url)
    db.execute("WITH o AS (INSERT INTO outbox (kind, payload) VALUES ('test',"
               " '{\"deadline\": \"soon\"}') RETURNING id)"
               " INSERT INTO delivery (outbox_id, subscription_id) SELECT id, %s FROM o",
               [first.id])
    outbox.test(db, first.id)
    assert deliver_due(db, _settings()) == deliveries.Outcome(delivered=1, retrying=1)
    [stuck] = deliveries.list_deliveries(db, "pending")
    assert stuck.attempts == 1 and (stuck.last_error or "").startswith("ValueError")
