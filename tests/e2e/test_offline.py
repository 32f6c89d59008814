"""The report page with one bar of signal or none (issue 16), in headless Chromium on a real
uvicorn: reports made offline wait on the phone with their photos, survive a reload made
while still offline (the service worker serves the page), and each arrives once when the
connection returns; a refusal stays on its item until fixed; a slow 3G upload shows progress.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, expect

from layers.auth import tokens
from tests.api.test_field_pages import first_market
from tests.e2e.test_field_pages import PHONE, ZONE, sign_in, watch

# Chrome DevTools' "Slow 3G": 400 kbit/s each way, 2 s round trips.
SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 400 * 1024 / 8,
           "uploadThroughput": 400 * 1024 / 8}


@pytest.fixture
def field(demo_dsn: str) -> tuple[str, str, str, float, float]:
    """An inspector's token and the demo's first market: code, name, lon, lat."""
    with psycopg.connect(demo_dsn) as conn:
        token = tokens.create(conn, role="inspector", name="巡查员 小李")
        market, name, lon, lat = first_market(conn)
    return token, market, name, lon, lat


@pytest.fixture
def phone_at(browser: Browser, server: str, field: tuple[str, str, str, float, float]
             ) -> Iterator[BrowserContext]:
    """A phone standing in the first market, with its position granted."""
    *_, lon, lat = field
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                  locale="zh-CN", timezone_id=ZONE)
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    context.grant_permissions(["geolocation"], origin=server)
    context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 8})
    try:
        yield context
    finally:
        context.close()


def camera_photo(lon: float, lat: float, size: tuple[int, int] = (3000, 2000)) -> bytes:
    """A photo as a phone camera writes it: about 3 MB (smooth light with sensor noise),
    stored sideways with EXIF Orientation 6 (turn 90° clockwise to view), the GPS position
    and the time taken."""
    rng = np.random.default_rng(16)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    light = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)],
                     axis=-1)
    pixels = np.clip(light + rng.integers(-30, 30, (height, width, 3)), 0, 255)
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon)}
    exif[0x8769] = {0x9003: datetime.now().strftime("%Y:%m:%d %H:%M:%S")}
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4)


def open_report(context: BrowserContext, server: str, token: str, market_name: str) -> Page:
    """The report page signed in, positioned at the market, ready to work offline."""
    page = context.new_page()
    page.goto(f"{server}/report")
    sign_in(page, token)
    expect(page.locator("#site")).to_contain_text(market_name)
    # The service worker holds the shell, and the catalog is kept on the phone.
    expect(page.locator("html")).to_have_attribute("data-offline-ready", "true")
    return page


def fill(page: Page, note: str, photo: bytes, category: str | None = None) -> str:
    """Fill the form (the first of the site's categories unless named) and submit it."""
    options = page.locator("#category optgroup").first.locator("option")
    expect(options.first).to_be_attached()
    chosen = category or options.first.get_attribute("value")
    assert chosen
    page.locator("#category").select_option(chosen)
    page.locator("#photo").set_input_files(files=[FilePayload(
        name="IMG_0001.jpg", mimeType="image/jpeg", buffer=photo)])
    page.locator("#note").fill(note)
    page.locator("#submit").click()
    return chosen


def stored(dsn: str, like: str) -> list[tuple[str, str, list[str]]]:
    """(id, category, photos) of the issues whose description starts with ``like``."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT public_id, category_code, photos FROM issue"
                            " WHERE description LIKE %s ORDER BY description",
                            [like + "%"]).fetchall()
    return [(str(a), str(b), list(c)) for a, b, c in rows]


def test_three_reports_made_offline_arrive_once_each_when_the_signal_returns(
        server: str, demo_dsn: str, phone_at: BrowserContext, artifacts: Path,
        field: tuple[str, str, str, float, float]) -> None:
    token, _, market_name, lon, lat = field
    page = open_report(phone_at, server, token, market_name)
    problems = watch(page)

    phone_at.set_offline(True)  # the basement
    expect(page.locator("#net")).to_be_visible()
    for n in (1, 2, 3):
        fill(page, f"地下室离线上报 {n}", camera_photo(lon, lat))
        expect(page.locator("#queue-title")).to_have_text(f"待发送 {n}")
    expect(page.locator("#message")).to_contain_text("已保存在本机")
    page.screenshot(path=str(artifacts / "queue-offline.png"), full_page=True)

    # Still offline, the page is opened again: the service worker serves it, and the
    # queue is still there, with its photos.
    page.reload()
    expect(page.locator("#report")).to_be_visible()
    expect(page.locator("#queue-title")).to_have_text("待发送 3")
    expect(page.locator("#queue-items li.queued")).to_have_count(3)
    expect(page.locator("#queue-items li.queued", has_text="等待网络")).to_have_count(3)
    assert stored(demo_dsn, "地下室离线上报") == []

    phone_at.set_offline(False)  # signal returns: the page sends by itself
    expect(page.locator("#queue-items li.sent")).to_have_count(3, timeout=30_000)
    expect(page.locator("#queue-title")).to_have_text("待发送 0")
    # Online again, the categories are laid out for the nearest site again.
    expect(page.locator("#site")).to_contain_text(market_name)
    page.screenshot(path=str(artifacts / "queue-delivered.png"), full_page=True)

    arrived = stored(demo_dsn, "地下室离线上报")
    assert [len(photos) for _, _, photos in arrived] == [1, 1, 1]
    with psycopg.connect(demo_dsn) as conn:
        kept = conn.execute("SELECT count(*) FROM evidence WHERE 'sha256:' || sha256 = ANY(%s)",
                            [[photos[0] for _, _, photos in arrived]]).fetchone()
    assert kept == (len({photos[0] for _, _, photos in arrived}),)  # each photo is stored
    sent = page.locator("#queue-items li.sent").all_inner_texts()
    assert sorted(t.split("：")[0].split()[-1] for t in sent) == sorted(i for i, _, _ in arrived)
    # Errors are only the failed requests of the offline phone.
    assert [p for p in problems if "ERR_INTERNET_DISCONNECTED" not in p] == []


def test_a_refused_report_stays_on_its_item_until_fixed(
        server: str, demo_dsn: str, phone_at: BrowserContext, artifacts: Path,
        field: tuple[str, str, str, float, float], jpeg: Callable[..., bytes]) -> None:
    token, _, market_name, lon, lat = field
    page = open_report(phone_at, server, token, market_name)
    phone_at.set_offline(True)
    category = fill(page, "退回后修改的上报", jpeg(lon=lon, lat=lat))
    expect(page.locator("#queue-items li.queued")).to_have_count(1)
    # While the phone was away the office withdrew the category it chose.
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE category SET active = false WHERE code = %s", [category])

    phone_at.set_offline(False)
    refused = page.locator("#queue-items li.refused")
    expect(refused).to_contain_text("被退回")
    expect(refused).to_contain_text(category)  # the reason names the category
    page.screenshot(path=str(artifacts / "queue-refused.png"), full_page=True)
    assert stored(demo_dsn, "退回后修改的上报") == []

    refused.locator("button.fix").click()
    expect(page.locator("#note")).to_have_value("退回后修改的上报")
    others = page.locator("#category option:not([value=''])")
    expect(others.first).to_be_attached()
    replacement = next(v for v in others.evaluate_all("os => os.map(o => o.value)")
                       if v != category)
    page.locator("#category").select_option(replacement)
    page.locator("#submit").click()  # the kept photo goes with it

    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#queue-items li.refused")).to_have_count(0)
    [(public_id, stored_category, photos)] = stored(demo_dsn, "退回后修改的上报")
    assert stored_category == replacement and len(photos) == 1
    expect(page.locator("#r-id")).to_have_text(public_id)


def test_a_report_with_a_camera_photo_completes_on_slow_3g_showing_progress(
        server: str, demo_dsn: str, phone_at: BrowserContext, artifacts: Path,
        field: tuple[str, str, str, float, float]) -> None:
    token, _, market_name, lon, lat = field
    page = open_report(phone_at, server, token, market_name)
    devtools = phone_at.new_cdp_session(page)
    devtools.send("Network.enable")
    devtools.send("Network.emulateNetworkConditions", SLOW_3G)
    original = camera_photo(lon, lat)
    sizes: list[int] = []
    page.on("request", lambda r: sizes.append(len(r.post_data_buffer or b""))
            if r.url.endswith("/api/v1/evidence") else None)

    fill(page, "慢速网络带照片上报", original)
    # The page's policy forbids eval, so the test polls rather than wait_for_function.
    expect(page.locator("#progress-box")).to_be_visible(timeout=60_000)
    expect(page.locator("#progress-label")).to_have_text(re.compile(r"正在上传照片 [1-9]\d*%"),
                                                         timeout=60_000)
    page.screenshot(path=str(artifacts / "slow-3g-progress.png"), full_page=True)
    expect(page.locator("#result")).to_be_visible(timeout=120_000)

    [(public_id, _, [ref])] = stored(demo_dsn, "慢速网络带照片上报")
    # Shrunk on the phone: a few hundred kB sent, not the camera's MB.
    assert len(original) > 2_500_000 and sizes and max(sizes) < 600_000
    photo = httpx.get(f"{server}/api/v1/evidence/{ref}",
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
    width, height = Image.open(io.BytesIO(photo.content)).size
    # Upright once (the sideways camera photo is portrait), 1,600 px on its long side.
    assert (width, height) == (1067, 1600)
    # The EXIF position travelled with the shrunk copy: the server read it.
    with psycopg.connect(demo_dsn) as conn:
        row: Any = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM evidence"
                                " WHERE 'sha256:' || sha256 = %s", [ref]).fetchone()
    assert row is not None and abs(row[0] - lon) < 1e-5 and abs(row[1] - lat) < 1e-5
    expect(page.locator("#r-id")).to_have_text(public_id)


def test_the_report_page_is_installable(server: str, phone_at: BrowserContext,
                                        field: tuple[str, str, str, float, float]) -> None:
    token, _, market_name, _, _ = field
    page = open_report(phone_at, server, token, market_name)
    devtools = phone_at.new_cdp_session(page)
    # What Chromium itself checks before it offers "Install app" / "Add to home screen";
    # a test's browser context is incognito, where nothing installs, so that one is expected.
    errors = devtools.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert [e["errorId"] for e in errors] == ["in-incognito"]
    manifest = devtools.send("Page.getAppManifest")
    assert manifest["url"] == f"{server}/report.webmanifest?lang=zh"
    assert manifest.get("errors", []) == []


def test_without_a_fix_the_photo_places_the_report(
        server: str, demo_dsn: str, browser: Browser, artifacts: Path,
        field: tuple[str, str, str, float, float], jpeg: Callable[..., bytes]) -> None:
    token, _, _, lon, lat = field
    # A phone that gives the page no position at all (permission not granted).
    context = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN",
                                  timezone_id=ZONE)
    try:
        page = context.new_page()
        page.goto(f"{server}/report")
        sign_in(page, token)
        expect(page.locator("#where")).to_have_text("无法获取定位，请拖动图钉到问题位置")
        offer = page.locator("#photo-position")
        expect(offer).to_be_hidden()
        page.locator("#photo").set_input_files(files=[FilePayload(
            name="IMG_0002.jpg", mimeType="image/jpeg", buffer=jpeg(lon=lon, lat=lat))])
        expect(offer).to_be_visible()
        page.screenshot(path=str(artifacts / "photo-position-offered.png"), full_page=True)
        offer.click()
        expect(page.locator("#where")).to_contain_text("已使用照片中的拍摄位置")
        fill(page, "照片定位的上报", jpeg(lon=lon, lat=lat))
        expect(page.locator("#result")).to_be_visible()
    finally:
        context.close()
    with psycopg.connect(demo_dsn) as conn:
        row: Any = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM issue"
                                " WHERE description = '照片定位的上报'").fetchone()
    assert row is not None and abs(row[0] - lon) < 1e-6 and abs(row[1] - lat) < 1e-6


def test_a_fix_worse_than_the_tolerance_is_said(server: str, phone_at: BrowserContext,
                                                field: tuple[str, str, str, float, float]
                                                ) -> None:
    token, _, market_name, lon, lat = field
    page = open_report(phone_at, server, token, market_name)
    expect(page.locator("#rough")).to_be_hidden()  # 8 m
    phone_at.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 180})
    expect(page.locator("#rough")).to_have_text(
        "定位精度约 180 米，超出允许的 50 米：请稍候或拖动图钉校正")


def test_the_work_page_offline_shows_its_last_list_and_queues_a_rectification(
        server: str, demo_dsn: str, browser: Browser, artifacts: Path,
        jpeg: Callable[..., bytes]) -> None:
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute(
            "SELECT u.code, i.public_id FROM issue i JOIN unit u ON u.id = i.lead_unit_id"
            " WHERE i.status = 'assigned' AND u.kind = 'territorial'"
            " ORDER BY i.deadline LIMIT 1").fetchone()
        assert row is not None
        unit, issue = str(row[0]), str(row[1])
        token = tokens.create(conn, role="unit", unit_code=unit, name="社区 小王")
    context = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN",
                                  timezone_id=ZONE)
    try:
        page = context.new_page()
        page.goto(f"{server}/units/{unit}/work#token={token}")
        card = page.locator(f'#issues li[data-id="{issue}"]')
        expect(card).to_be_visible()
        expect(page.locator("html")).to_have_attribute("data-offline-ready", "true")
        listed = page.locator("#issues > li").count()

        context.set_offline(True)
        page.reload()
        expect(page.locator("#list-age")).to_contain_text("离线：显示的是")
        expect(page.locator("#issues > li")).to_have_count(listed)
        card.locator("input[type=file]").set_input_files(files=[FilePayload(
            name="after.jpg", mimeType="image/jpeg", buffer=jpeg(colour=(40, 160, 60)))])
        card.locator("button.rectify").click()
        expect(page.locator("#message")).to_contain_text("整改已保存在本机")
        expect(page.locator("#queue-title")).to_have_text("待发送 1")
        expect(card).to_have_count(0)
        page.screenshot(path=str(artifacts / "work-offline.png"), full_page=True)

        context.set_offline(False)
        expect(page.locator("#queue")).to_be_hidden(timeout=30_000)
    finally:
        context.close()
    with psycopg.connect(demo_dsn) as conn:
        status = conn.execute("SELECT status FROM issue WHERE public_id = %s",
                              [issue]).fetchone()
    assert status == ("rectified",)
