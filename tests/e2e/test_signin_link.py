"""A sign-in link (``sitewatch token create --link``) opened on a phone: the field page is
signed in by the token in the fragment, which leaves the address bar and never reaches the
server's log, and stays signed in after a reload (the token is kept as a typed one is)."""

from __future__ import annotations

from pathlib import Path

import psycopg
from playwright.sync_api import Browser, expect
from typer.testing import CliRunner

from api.cli.main import app
from tests.e2e.test_field_pages import PHONE, watch


def _link(dsn: str, server: str, *args: str) -> tuple[str, str]:
    result = CliRunner().invoke(app, ["token", "create", *args, "--link"],
                                env={"DATABASE_URL": dsn, "SITEWATCH_PUBLIC_URL": server})
    assert result.exit_code == 0, result.output
    link, token = result.stdout.strip().splitlines()[-2:]
    return link, token


def test_the_link_signs_the_units_work_page_in_and_leaves_the_address_bar(
        server: str, demo_dsn: str, browser: Browser, tmp_path: Path,
        artifacts: Path) -> None:
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("SELECT u.code FROM unit u JOIN issue i ON i.territorial_unit_id"
                           " = u.id WHERE i.status = 'assigned' ORDER BY u.code LIMIT 1"
                           ).fetchone()
    assert row is not None
    unit = str(row[0])
    link, token = _link(demo_dsn, server, "--role", "unit", "--unit", unit,
                        "--name", "社区 小王", "--post", "网格长")
    assert link == f"{server}/units/{unit}/work#token={token}"

    context = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN")
    # The server has no favicon; its 404 is not a problem of the page.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    try:
        page = context.new_page()
        problems = watch(page)
        page.goto(link)
        expect(page.locator("#work")).to_be_visible()
        expect(page.locator("#issues > li").first).to_be_visible()  # its API calls succeeded
        expect(page.locator("#signin")).to_be_hidden()
        assert page.url == f"{server}/units/{unit}/work"
        assert token not in page.evaluate("location.href + history.length")
        assert page.evaluate("localStorage.getItem('sitewatch.token')") == token
        page.screenshot(path=str(artifacts / "signed-in-by-link.png"), full_page=True)

        page.reload()
        expect(page.locator("#work")).to_be_visible()
        expect(page.locator("#signin")).to_be_hidden()
        assert problems == []
    finally:
        context.close()

    log = (tmp_path / "server.log").read_text()
    assert f"/units/{unit}/work" in log  # the access log is on ...
    assert token not in log  # ... and the fragment never reached it


def test_an_inspectors_link_signs_the_report_page_in(server: str, demo_dsn: str,
                                                     browser: Browser) -> None:
    link, token = _link(demo_dsn, server, "--role", "inspector", "--name", "巡查员 小李")
    context = browser.new_context(viewport=PHONE, is_mobile=True, locale="zh-CN")
    try:
        page = context.new_page()
        # A token typed in earlier on this phone is replaced by the link's.
        page.goto(f"{server}/report")
        page.evaluate("localStorage.setItem('sitewatch.token', 'sw_old')")
        page.goto(link)
        expect(page.locator("#signed-in")).to_be_visible()
        assert page.url == f"{server}/report"
        assert page.evaluate("localStorage.getItem('sitewatch.token')") == token
    finally:
        context.close()
