"""The field pages on a phone: headless Chromium at 360 px, a real uvicorn, no internet.

/report: sign in, the phone's position, the nearest market's categories first, a photo, a
note; the server's answer is lost on the way back and "send again" still makes one issue.
/units/{unit}/work: nearest deadline first with traffic lights and photos; a stale version is
reloaded; rectify with an after photo; sign for an order and open its printable page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Page,
    Route,
    ViewportSize,
    expect,
)

from layers.auth import tokens
from layers.db.settings import Settings
from layers.supervision import orders
from tests.api.test_field_pages import first_market

PHONE: ViewportSize = {"width": 360, "height": 740}
# The phone is in the district: its clock shows the district's zone (the settings name it).
ZONE = Settings().timezone


@pytest.fixture
def phone(browser: Browser, server: str) -> Iterator[tuple[BrowserContext, list[str]]]:
    """A phone-sized context that may only reach our server; the list gets blocked URLs."""
    blocked: list[str] = []
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, locale="zh-CN",
                                  timezone_id=ZONE)

    def offline(route: Route) -> None:
        if route.request.url.startswith((server, "blob:", "data:")):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    try:
        yield context, blocked
    finally:
        context.close()


def watch(page: Page) -> list[str]:
    """Uncaught script errors and console errors of ``page``."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" else None)
    return problems


def sign_in(page: Page, token: str) -> None:
    page.locator("#token").fill(token)
    page.locator("#signin button").click()


def fits_the_screen(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_report_at_a_market_is_assigned_once_though_the_first_answer_is_lost(
        server: str, demo_dsn: str, phone: tuple[BrowserContext, list[str]],
        artifacts: Path, jpeg: Callable[..., bytes]) -> None:
    with psycopg.connect(demo_dsn) as conn:
        token = tokens.create(conn, role="inspector", name="巡查员 小李")
        market, market_name, lon, lat = first_market(conn)
    context, blocked = phone
    context.grant_permissions(["geolocation"], origin=server)
    context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 12})
    page = context.new_page()
    problems = watch(page)
    keys: list[str | None] = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.header_value("idempotency-key"))
        if len(keys) == 1:
            answer = route.fetch()  # the server stores the issue ...
            assert answer.status == 201
            route.abort("connectionreset")  # ... and the phone never hears about it
        else:
            route.continue_()

    page.route(f"{server}/api/v1/issues", lose_the_first_answer)
    page.goto(f"{server}/report")
    sign_in(page, token)

    expect(page.locator("#site")).to_contain_text(market_name)
    first_group = page.locator("#category optgroup").first
    expect(first_group).to_have_attribute("label", "本点位常见问题")
    # Then the campaign's five rectification actions (the market's own are all above).
    labels = page.locator("#category optgroup").evaluate_all("gs => gs.map(g => g.label)")
    assert labels == ["本点位常见问题", "建筑工地", "市容环境", "社区环境", "市民文明行为"]
    offered = first_group.locator("option").evaluate_all("os => os.map(o => o.value)")
    assert offered and all(code.startswith("MKT-") for code in offered)
    page.locator("#category").select_option(offered[0])
    page.locator("#photo").set_input_files(files=[FilePayload(
        name="before.jpg", mimeType="image/jpeg", buffer=jpeg(lon=lon, lat=lat))])
    note = "市场北门外占道经营，三个摊位"
    page.locator("#note").fill(note)
    page.screenshot(path=str(artifacts / "report-form.png"), full_page=True)
    page.locator("#submit").click()

    # Not confirmed: kept in the phone's queue, waiting, and sent again with the same key.
    expect(page.locator("#queue-title")).to_have_text("待发送 1")
    expect(page.locator("#queue-items li.waiting")).to_contain_text("等待网络")
    page.screenshot(path=str(artifacts / "report-not-confirmed.png"), full_page=True)
    page.locator("#send-now").click()

    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#r-site")).to_have_text(market_name)
    with psycopg.connect(demo_dsn) as conn:
        stored = conn.execute("""
            SELECT i.public_id, s.code, u.name, i.photos, c.name, i.category_code
            FROM issue i LEFT JOIN site s ON s.id = i.site_id
            LEFT JOIN unit u ON u.id = i.lead_unit_id
            LEFT JOIN unit c ON c.id = i.territorial_unit_id
            WHERE i.description = %s""", [note]).fetchall()
    assert len(stored) == 1  # two requests reached the server; one issue exists
    public_id, site, lead_unit, photos, community, category = stored[0]
    assert (site, category) == (market, offered[0])
    assert len(photos) == 1 and photos[0].startswith("sha256:")
    expect(page.locator("#r-id")).to_have_text(public_id)
    expect(page.locator("#r-unit")).to_have_text(lead_unit)
    expect(page.locator("#r-community")).to_have_text(community)
    expect(page.locator("#r-deadline")).to_have_text(re.compile(r"\d{4}/\d{2}/\d{2}"))
    expect(page.locator("#result-title")).to_contain_text("合并")  # the replay was noticed
    page.screenshot(path=str(artifacts / "report-assigned.png"), full_page=True)

    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]
    assert fits_the_screen(page)
    assert blocked == []
    # The one console error is Chromium reporting the answer we cut off on purpose.
    assert [p for p in problems if "ERR_CONNECTION_RESET" not in p] == []


def _unit_with_few_assigned_issues(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("""
        SELECT u.code FROM unit u JOIN issue i ON u.id IN (i.lead_unit_id,
            i.territorial_unit_id, i.functional_unit_id)
        WHERE u.kind = 'territorial' AND i.status = 'assigned'
        GROUP BY u.code HAVING count(*) >= 3 ORDER BY count(*), u.code LIMIT 1""").fetchone()
    assert row is not None
    return str(row[0])


def test_unit_rectifies_with_an_after_photo_and_signs_for_its_order(
        server: str, demo_dsn: str, phone: tuple[BrowserContext, list[str]],
        artifacts: Path, jpeg: Callable[..., bytes]) -> None:
    with psycopg.connect(demo_dsn) as conn:
        unit = _unit_with_few_assigned_issues(conn)
        token = tokens.create(conn, role="unit", unit_code=unit, name="社区 小王")
        inspector = tokens.create(conn, role="inspector", name="测试")
        code = orders.issue_orders(conn, orders.Issuer("督查组", "supervisor"),
                                   unit=unit)[0].code
    auth = {"Authorization": f"Bearer {token}"}
    listed = httpx.get(f"{server}/api/v1/issues", headers=auth, params={
        "unit": unit, "status": "assigned", "limit": 1000}).json()["features"]
    lights = {f["id"]: f["properties"]["traffic_light"] for f in listed}
    # One issue carries a photo, and a description that would run script if parsed as HTML.
    before = httpx.post(f"{server}/api/v1/evidence", headers={
        "Authorization": f"Bearer {inspector}"}, files={
        "file": ("before.jpg", jpeg(colour=(30, 90, 200)), "image/jpeg")}).json()["ref"]
    hostile = '<img src=x onerror="window.pwned=1">垃圾未清<script>window.pwned=2</script>'
    pictured = listed[-1]["id"]
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE issue SET photos = jsonb_build_array(%s::text), description = %s"
                     " WHERE public_id = %s", [before, hostile, pictured])

    context, blocked = phone
    page = context.new_page()
    problems = watch(page)
    page.goto(f"{server}/units/{unit}/work")
    sign_in(page, token)
    expect(page.locator("#work")).to_be_visible()

    cards = page.locator("#issues > li")
    expect(cards).to_have_count(len(listed))
    shown = cards.evaluate_all("cs => cs.map(c => c.dataset.id)")
    with psycopg.connect(demo_dsn) as conn:
        deadlines: dict[str, datetime] = dict(conn.execute(
            "SELECT public_id, deadline FROM issue WHERE public_id = ANY(%s)",
            [shown]).fetchall())
    assert [deadlines[i] for i in shown] == sorted(deadlines[i] for i in shown)
    for issue_id in shown:
        light = page.locator(f'li[data-id="{issue_id}"] .light')
        expect(light).to_have_class(f"light {lights[issue_id]}")
    photo = page.locator(f'li[data-id="{pictured}"] img.photo')
    expect(photo).to_have_attribute("src", re.compile("^blob:"))
    assert photo.evaluate("img => img.decode().then(() => img.naturalWidth)") == 64
    expect(page.locator(f'li[data-id="{pictured}"] .desc')).to_have_text(hostile)
    page.screenshot(path=str(artifacts / "work-list.png"), full_page=True)

    # Someone else changed the first issue since the list was read: the rectification leaves
    # the list for the phone's queue, comes back refused (409) with the reason, and "fix"
    # sends it at the issue's new version.
    first = cards.first
    first_id = shown[0]
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE issue SET version = version + 1 WHERE public_id = %s", [first_id])
    first.locator("input[type=file]").set_input_files(files=[FilePayload(
        name="after.jpg", mimeType="image/jpeg", buffer=jpeg(colour=(40, 160, 60)))])
    first.locator("button.rectify").click()
    expect(page.locator(f'#issues li[data-id="{first_id}"]')).to_have_count(0)
    refused = page.locator("#queue-items li.refused")
    expect(refused).to_contain_text("已被他人更新")
    expect(refused).to_contain_text(first_id)
    page.screenshot(path=str(artifacts / "work-refused.png"), full_page=True)
    refused.locator("button.fix").click()
    expect(page.locator("#queue")).to_be_hidden()
    expect(page.locator("#message")).to_contain_text("已提交整改")
    expect(cards).to_have_count(len(listed) - 1)
    with psycopg.connect(demo_dsn) as conn:
        status, evidence = conn.execute("""
            SELECT i.status, e.evidence FROM issue i JOIN issue_event e ON e.issue_id = i.id
            WHERE i.public_id = %s AND e.action = 'rectify'""", [first_id]).fetchone() or ("", [])
    assert status == "rectified" and len(evidence) == 1

    order = page.locator(f'#orders li[data-code="{code}"]')
    order.locator("button.acknowledge").click()
    expect(order.locator(".acknowledged")).to_contain_text("已签收")
    with psycopg.connect(demo_dsn) as conn:
        signed = conn.execute("SELECT acknowledged_at FROM supervision_order WHERE code = %s",
                              [code]).fetchone()
    assert signed is not None and signed[0] is not None
    page.screenshot(path=str(artifacts / "work-after.png"), full_page=True)

    with page.expect_popup() as opened:
        order.locator("button.print").click()
    printable = opened.value
    printable.wait_for_url(re.compile("^blob:"))
    expect(printable.locator("h1")).to_have_text("督办单")
    printable.screenshot(path=str(artifacts / "order-from-work-page.png"))

    assert page.evaluate("window.pwned") is None
    assert fits_the_screen(page)
    assert blocked == []
    # The one console error is Chromium reporting the deliberate stale version's 409.
    assert [p for p in problems if "409 (Conflict)" not in p] == []


def test_field_pages_in_english_at_360_px(server: str, phone: tuple[BrowserContext, list[str]],
                                          artifacts: Path) -> None:
    context, blocked = phone
    page = context.new_page()
    problems = watch(page)
    for path, name in (("/report?lang=en", "report-en"), ("/units/SQ01/work?lang=en",
                                                          "work-en")):
        page.goto(server + path)
        expect(page.locator("#signin")).to_be_visible()
        text = page.locator("body").inner_text()
        assert re.findall(r"[\u3000-\u9fff\uff00-\uffef]+", text) == ["中文"], path
        assert fits_the_screen(page)
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    assert blocked == []
    assert problems == []
