"""The printable supervision order in headless Chromium: A4, Chinese glyphs, every issue."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import psycopg
from PIL import Image
from playwright.sync_api import Browser

from layers.auth import tokens
from layers.supervision import orders

SUPERVISOR = orders.Issuer("督查组 王五", "supervisor")


def test_printable_order_renders_on_a4_with_chinese_text(server: str, demo_dsn: str,
                                                         browser: Browser,
                                                         artifacts: Path) -> None:
    with psycopg.connect(demo_dsn) as conn:
        written = orders.issue_orders(conn, SUPERVISOR, note="请于期限内整改到位")
        code = max(written, key=lambda o: o.issues).code
        order = orders.get(conn, code)
        token = tokens.create(conn, role="unit", name="测试", unit_code=order.unit)
    # The page needs the unit's token, as the unit's work page sends it when it opens orders.
    page = browser.new_page(viewport={"width": 900, "height": 1200},
                            extra_http_headers={"Authorization": f"Bearer {token}"})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("**/*", lambda route: route.continue_()
               if route.request.url.startswith(server) else route.abort())
    page.goto(f"{server}/api/v1/orders/{code}/print", wait_until="load")
    page.emulate_media(media="print")
    page.screenshot(path=str(artifacts / "order-print.png"), full_page=True)
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    (artifacts / "order.pdf").write_bytes(pdf)

    assert errors == []
    assert page.locator(".toolbar").is_hidden()  # the print CSS hides the buttons
    assert page.locator("h1").inner_text() == "督办单"
    assert page.locator(".items tbody tr").count() == len(order.items)
    assert page.locator(".sketch svg circle").count() == len(order.items)
    # The page size comes from the print CSS: A4 is 595 x 842 points.
    sizes = {(round(float(w)), round(float(h))) for w, h in re.findall(
        rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)}
    assert sizes == {(595, 842)}
    # Chinese text is drawn with a CJK font (embedded in the PDF), not as empty boxes.
    assert re.search(rb"/FontName /[A-Z]{6}\+Noto(Serif|Sans)CJK", pdf)
    # The red header rule and title are on the screenshot (a blank page has no red).
    shot = np.asarray(Image.open(artifacts / "order-print.png").convert("RGB"))
    r, g, b = shot[..., 0], shot[..., 1], shot[..., 2]
    red = int(((r > 180) & (g < 60) & (b < 60)).sum())
    assert red > 500
