"""The daily digest (每日通报): what the database says, per subscribed unit and once for the
office, at the configured local time, once a day per unit however many workers run."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import psycopg
import pytest

from layers.analysis import tallies
from layers.db.settings import Settings
from layers.notify import deliveries, digest, messages, outbox
from layers.supervision import orders, scores
from layers.views import mapviews
from layers.worker import jobs, runner
from tests.loopback import Answer, receiving

HOUR = timedelta(hours=1)
ZONE = Settings().timezone  # the district's zone: the settings name it


@pytest.fixture
def db(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """Units C01 and C02 with issues of every light, an unsigned order of C01's, a webhook
    subscription for each unit and one for the office."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO unit (code, name, kind) VALUES ('C01', '湖东社区',"
                     " 'territorial'), ('C02', '湖西社区', 'territorial'),"
                     " ('C03', '湖南社区', 'territorial')")
        for unit, reported_ago, due_in in (("C01", 48, -1), ("C01", 48, 2), ("C01", 1, 48),
                                           ("C01", 1, None), ("C02", 48, -1)):
            conn.execute(
                "INSERT INTO issue (category_code, geom, description, source, status,"
                " deadline, reported_at, lead_unit_id) VALUES ('CTY-05',"
                " ST_SetSRID(ST_MakePoint(120.7, 31.3), 4326), '暴露垃圾', 'self_inspection',"
                " 'assigned', now() + %s, now() - %s, (SELECT id FROM unit WHERE code = %s))",
                [None if due_in is None else due_in * HOUR, reported_ago * HOUR, unit])
        orders.issue_orders(conn, orders.Issuer("督查组 王五", "supervisor"), unit="C01")
        for unit in ("C01", "C02", ""):
            outbox.add(conn, unit=unit or None, channel="webhook",
                       target=f"https://h.example.cn/{unit}", secret=None, events=[],
                       created_by="创建办")
        yield conn


def _digests(conn: psycopg.Connection[Any]) -> dict[str | None, dict[str, Any]]:
    """The digests in the outbox by the unit of the subscription that receives each."""
    rows = conn.execute("SELECT u.code, o.payload FROM delivery d"
                        " JOIN outbox o ON o.id = d.outbox_id AND o.kind = 'digest'"
                        " JOIN subscription s ON s.id = d.subscription_id"
                        " LEFT JOIN unit u ON u.id = s.unit_id").fetchall()
    found: dict[str | None, dict[str, Any]] = {}
    for code, payload in rows:
        assert code not in found, f"two digests for {code}"
        found[code] = payload
    return found


def test_the_digest_lists_what_the_database_says(db: psycopg.Connection[Any]) -> None:
    now = datetime.now(UTC)
    tallies.fold(db, Settings(timezone=ZONE).zone)  # the worker's job: points at risk read them
    assert digest.send(db, Settings(timezone=ZONE), now) == "2 unit digest(s), and the office"
    sent = _digests(db)
    assert set(sent) == {"C01", "C02", None}  # C03 subscribes to nothing
    risk = {s.code: s.points_at_risk for s in scores.ranking(
        db, group="unit", since=datetime(1970, 1, 1, tzinfo=UTC), until=now)}
    for unit in ("C01", "C02"):
        issues = mapviews.unit_issues(db, unit)
        unsigned, total = orders.list_orders(db, orders.OrderFilter(unit=unit,
                                                                    acknowledged=False))
        mine = sent[unit]
        assert mine["open"] == len(issues)
        for light in ("red", "yellow", "green"):
            assert mine["lights"][light] == sum(i.traffic_light == light for i in issues)
        assert mine["overdue"] == [i.public_id for i in issues if i.overdue]
        assert mine["orders_unsigned"] == total
        assert mine["orders"] == [o.code for o in unsigned]
        assert mine["points_at_risk"] == risk[unit]
    assert sent["C01"]["lights"] == {"red": 1, "yellow": 1, "green": 1, "none": 1}
    assert sent["C01"]["orders_unsigned"] == 1 and sent["C02"]["orders_unsigned"] == 0
    office = sent[None]
    assert [u["unit"] for u in office["units"]] == ["C01", "C02"]
    assert office["orders_unsigned"] == 1
    assert office["points_at_risk"] == round(risk["C01"] + risk["C02"], 1)
    text = messages.render("digest", sent["C01"], public_url="https://sw.example.cn",
                           zone=Settings().zone).text
    assert text.startswith("每日通报 Daily digest")
    assert "在办问题 Open issues: 4" in text and sent["C01"]["orders"][0] in text
    assert text.endswith("https://sw.example.cn/units/C01/work")
    office_text = messages.render("digest", office, public_url="", zone=Settings().zone).text
    assert "湖东社区: 在办 open 4，红 red 1，黄 yellow 1" in office_text


def test_the_digest_runs_at_the_local_time_once_a_day_with_two_workers(
        dsn: str, db: psycopg.Connection[Any]) -> None:
    registry = [j for j in jobs.JOBS if j.name == "digest"]
    settings = Settings(database_url=dsn, timezone=ZONE, digest_at=time(8, 30))
    # 08:29 in Shanghai is 00:29 UTC: not yet.
    assert runner.run_due(db, registry, settings, "w",
                          now=datetime(2026, 11, 20, 0, 29, tzinfo=UTC)) == []
    start = threading.Barrier(2)

    def worker(index: int, at: datetime) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            start.wait()
            runner.run_due(conn, registry, settings, f"w{index}", now=at)
            runner.run_due(conn, registry, settings, f"w{index}", now=at + 5 * HOUR)

    threads = [threading.Thread(target=worker,
                                args=(i, datetime(2026, 11, 20, 0, 31, tzinfo=UTC)))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert db.execute("SELECT slot FROM job_run WHERE job = 'digest'").fetchall() == [
        (datetime(2026, 11, 20, 0, 30, tzinfo=UTC),)]
    assert set(_digests(db)) == {"C01", "C02", None}
    assert _digests(db)["C01"]["date"] == "2026-11-20"
    # The next local day, another one each.
    runner.run_due(db, registry, settings, "w", now=datetime(2026, 11, 21, 0, 31, tzinfo=UTC))
    per_unit = db.execute("SELECT unit_id IS NULL, count(*) FROM outbox WHERE kind = 'digest'"
                          " GROUP BY 1 ORDER BY 1").fetchall()
    assert per_unit == [(False, 4), (True, 2)]


def test_the_digest_time_follows_the_zone_and_the_setting() -> None:
    schedule = next(j for j in jobs.JOBS if j.name == "digest").schedule
    berlin = Settings(timezone="Europe/Berlin")
    assert schedule.slot(datetime(2026, 11, 20, 7, 31, tzinfo=UTC), berlin) == datetime(
        2026, 11, 20, 7, 30, tzinfo=UTC)
    assert schedule.slot(datetime(2026, 11, 20, 7, 29, tzinfo=UTC), berlin) is None
    late = Settings(timezone=ZONE, digest_at=time(17, 0))
    assert schedule.slot(datetime(2026, 11, 20, 8, 59, tzinfo=UTC), late) is None
    assert schedule.slot(datetime(2026, 11, 20, 9, 0, tzinfo=UTC), late) == datetime(
        2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture
def robot() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """A loopback 企业微信-style robot answering errcode 0; the (path, body) of each POST."""
    got: list[tuple[str, bytes]] = []

    def keep(request: BaseHTTPRequestHandler, body: bytes) -> Answer:
        got.append((request.path, body))
        return Answer(body=b'{"errcode":0}')

    with receiving(keep) as url:
        yield url, got


def test_each_group_chat_gets_its_one_digest(
        db: psycopg.Connection[Any], robot: tuple[str, list[tuple[str, bytes]]]) -> None:
    url, got = robot
    db.execute("DELETE FROM subscription")
    for unit in ("C01", "C02", ""):
        outbox.add(db, unit=unit or None, channel="wecom", target=f"{url}/{unit or 'office'}",
                   secret=None, events=["digest"], created_by="创建办")
    settings = Settings(timezone=ZONE, webhook_allow_private=True,
                        public_url="https://sw.example.cn")
    now = datetime(2026, 11, 20, 0, 31, tzinfo=UTC)
    digest.send(db, settings, now)
    assert deliveries.deliver_due(db, settings, now=datetime.now(UTC)).delivered == 3
    said = {path: json.loads(body)["markdown"]["content"] for path, body in got}
    assert sorted(said) == ["/C01", "/C02", "/office"]
    assert said["/C01"].startswith("### 每日通报 Daily digest 2026-11-20 · 湖东社区")
    assert "(https://sw.example.cn/units/C01/work)" in said["/C01"]
    assert "湖东社区" in said["/office"] and "湖西社区" in said["/office"]
