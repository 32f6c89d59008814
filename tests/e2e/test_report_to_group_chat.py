"""Issue 15's whole path, as its users live it: an inspector reports on the phone page of a
real ``sitewatch serve`` (web and its worker child); the responsible unit's 企业微信 group
robot (a loopback receiver) gets the hand-over within seconds, @mentioning the unit's person;
the link in it opens the unit's work page, on the phone that person signed in on, with the
new issue listed."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, FilePayload, expect

from layers.auth import tokens
from tests.api.test_field_pages import first_market
from tests.e2e.test_field_pages import PHONE, ZONE, sign_in, watch
from tests.loopback import Answer, eventually, receiving

# Seconds a message may take, at most, before the test calls it lost: the worker's default
# round of 5 s, its start, and a loaded test machine (a bound on a hang, not a figure;
# bench/notify.py measures the time).
PATIENCE = 60


@pytest.mark.slow  # a real server with its worker, and Chromium
def test_a_phone_report_reaches_the_units_group_chat_and_its_link_opens_the_work_page(
        demo_dsn: str, tmp_path: Path, serving: Callable[..., Any], browser: Browser,
        artifacts: Path, jpeg: Callable[..., bytes]) -> None:
    arrived: dict[str, list[dict[str, object]]] = {}
    lock = threading.Lock()

    def robot(request: BaseHTTPRequestHandler, body: bytes) -> Answer:
        with lock:
            arrived.setdefault(request.path, []).append(json.loads(body))
        return Answer(200, b'{"errcode":0,"errmsg":"ok"}')

    with receiving(robot) as robots, psycopg.connect(demo_dsn, autocommit=True) as conn:
        market, _, lon, lat = first_market(conn)
        # Every unit's group has its own robot; the message must reach one: the lead's.
        # Each unit's person has a phone number of their own, to be @mentioned by it.
        units = [code for (code,) in conn.execute("SELECT code FROM unit ORDER BY code")]
        people: dict[str, tuple[str, str]] = {}
        for n, code in enumerate(units):
            conn.execute("INSERT INTO subscription (unit_id, channel, target, events,"
                         " created_by) SELECT id, 'wecom', %s, '{issue.assigned}', 'test'"
                         " FROM unit WHERE code = %s", [f"{robots}/robot/{code}", code])
            mobile = f"139{n:08d}"
            people[code] = (mobile, tokens.create(conn, role="unit", unit_code=code,
                                                  name=f"{code} 联络员", mobile=mobile))
        inspector = tokens.create(conn, role="inspector", name="巡查员 小李")
        env = {"DATABASE_URL": demo_dsn, "SITEWATCH_DATA_DIR": str(tmp_path),
               "SITEWATCH_WEBHOOK_ALLOW_PRIVATE": "1"}
        with serving(["api.cli.main", "serve"], env, tmp_path) as (server, _):
            context = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN",
                                          timezone_id=ZONE)
            context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
            context.grant_permissions(["geolocation"], origin=server)
            context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 10})
            try:
                page = context.new_page()
                problems = watch(page)
                page.goto(f"{server}/report")
                sign_in(page, inspector)
                note = "市场东门外堆放建筑垃圾"
                offered = page.locator("#category optgroup").first.locator("option")
                expect(offered.first).to_be_attached()
                page.locator("#category").select_option(offered.first.get_attribute("value"))
                page.locator("#photo").set_input_files(files=[FilePayload(
                    name="before.jpg", mimeType="image/jpeg", buffer=jpeg(lon=lon, lat=lat))])
                page.locator("#note").fill(note)
                page.locator("#submit").click()
                expect(page.locator("#result")).to_be_visible()
                sent = time.monotonic()
                public_id = page.locator("#r-id").inner_text()
                row = conn.execute(
                    "SELECT u.code FROM issue i JOIN unit u ON u.id = i.lead_unit_id"
                    " WHERE i.public_id = %s AND i.site_id = (SELECT id FROM site WHERE"
                    " code = %s)", [public_id, market]).fetchone()
                assert row is not None
                lead = str(row[0])
                mobile, person = people[lead]

                def told() -> list[dict[str, object]]:
                    with lock:
                        return list(arrived.get(f"/robot/{lead}", []))

                [message] = eventually(told, PATIENCE)
                took = time.monotonic() - sent
                with lock:
                    assert set(arrived) == {f"/robot/{lead}"}  # no other unit's group
                assert message["msgtype"] == "text"  # @mentions ride on text messages
                text = message["text"]
                assert isinstance(text, dict)
                # The unit's contact (the demo gives each a mobile), then its person.
                contact = conn.execute("SELECT contact FROM unit WHERE code = %s",
                                       [lead]).fetchone()
                assert contact is not None and re.fullmatch(r"1[3-9]\d{9}", contact[0])
                assert text["mentioned_mobile_list"] == [contact[0], mobile]
                content = str(text["content"])
                assert content.startswith("新问题交办") and public_id in content
                assert note in content and "整改期限" in content
                link = content.rsplit(": ", 1)[-1]
                assert link == f"{server}/units/{lead}/work"

                # The unit's person signed in on their phone once, by their link ...
                page.goto(f"{server}/units/{lead}/work#token={person}")
                expect(page.locator("#work")).to_be_visible()
                # ... and later follows the one in the group chat.
                page.goto(link)
                expect(page.locator(f'#issues > li[data-id="{public_id}"]')).to_be_visible()
                page.screenshot(path=str(artifacts / "work-page-from-the-chat.png"),
                                full_page=True)
                assert problems == []
            finally:
                context.close()
    # Within seconds: said, not asserted as a figure (bench/notify.py measures it).
    print(f"report to group chat: {took:.1f} s")
