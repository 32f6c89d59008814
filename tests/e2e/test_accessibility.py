"""The field pages for one hand on any phone (WCAG 2.1 AA): axe-core finds no serious or
critical violation on /report and /units/{unit}/work, signed in with their data loaded, in
Chinese and English at 360 px; nothing scrolls sideways at 320 px, nor with the phone's font
at 200 %; every control is a 44 x 44 px target; the report form is tabbed through in the
order it is seen.

axe's counts (violations by impact, rules passed) are printed to the terminal and kept in
``test-artifacts/<test>/axe-<page>-<lang>.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, FilePayload, Page, Route, expect

from layers.auth import tokens
from tests.api.test_field_pages import first_market
from tests.e2e.test_field_pages import (
    ZONE,
    _unit_with_few_assigned_issues,
    fits_the_screen,
    sign_in,
    watch,
)

WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = {"serious", "critical"}
# Chromium's default ("medium") font size; a phone's "large text" setting raises it.
DEFAULT_FONT_PX = 16
# phone_at(width, lang): a new phone-sized browser context.
PhoneAt = Callable[..., BrowserContext]

# What a finger taps: every visible control, and the labels that stand for file inputs.
# The file inputs themselves are 1 px (their label is the button); Leaflet's marker is a
# dragged image, not a tapped one (the pin's own 25 x 41 px drawing).
TARGETS = """
  [...document.querySelectorAll(
     'a[href], button, select, textarea, input:not(.file), label.pick, .leaflet-bar a')]
  .filter((e) => e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
  .map((e) => { const r = e.getBoundingClientRect();
                return { what: e.outerHTML.slice(0, 80), width: r.width, height: r.height }; })
"""


@pytest.fixture
def phone_at(browser: Browser, server: str) -> Iterator[PhoneAt]:
    """``phone_at(width, lang)``: a phone context that may only reach our server."""
    contexts: list[BrowserContext] = []

    def make(width: int = 360, lang: str = "zh") -> BrowserContext:
        context = browser.new_context(
            viewport={"width": width, "height": 740}, is_mobile=True, has_touch=True,
            device_scale_factor=2, locale="en-GB" if lang == "en" else "zh-CN",
            timezone_id=ZONE)

        def local(route: Route) -> None:
            if route.request.url.startswith((server, "blob:", "data:")):
                route.continue_()
            else:
                route.abort()

        context.route("**/*", local)
        contexts.append(context)
        return context

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


def signed_in_report(context: BrowserContext, server: str, demo_dsn: str, lang: str) -> Page:
    """/report signed in as an inspector standing in the first market, categories loaded."""
    with psycopg.connect(demo_dsn) as conn:
        token = tokens.create(conn, role="inspector", name="巡查员")
        _, market_name, lon, lat = first_market(conn)
    context.grant_permissions(["geolocation"], origin=server)
    context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 12})
    page = context.new_page()
    page.goto(f"{server}/report?lang={lang}")
    sign_in(page, token)
    expect(page.locator("#site")).to_contain_text(market_name)
    expect(page.locator("#category optgroup").first).to_be_attached()
    return page


def signed_in_work(context: BrowserContext, server: str, demo_dsn: str, lang: str) -> Page:
    """A unit's work page signed in, its issues and orders listed."""
    with psycopg.connect(demo_dsn) as conn:
        unit = _unit_with_few_assigned_issues(conn)
        token = tokens.create(conn, role="unit", unit_code=unit, name="社区")
    page = context.new_page()
    page.goto(f"{server}/units/{unit}/work?lang={lang}")
    sign_in(page, token)
    expect(page.locator("#work")).to_be_visible()
    expect(page.locator("#issues > li").first).to_be_visible()
    return page


def axe(page: Page, name: str, artifacts: Path, capsys: pytest.CaptureFixture[str]
        ) -> list[dict[str, Any]]:
    """Run axe-core (WCAG 2.1 A and AA rules) on ``page``; print and keep its counts, and
    return the serious and critical violations."""
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG_AA}}).response
    violations: list[dict[str, Any]] = results["violations"]
    by_impact = Counter(v["impact"] for v in violations)
    counts = {"page": name, "violations": dict(by_impact), "passes": len(results["passes"]),
              "incomplete": sorted(v["id"] for v in results["incomplete"]),
              "rules": sorted(f"{v['id']} ({v['impact']})" for v in violations)}
    (artifacts / f"axe-{name}.json").write_text(json.dumps(
        {**counts, "violated": violations, "to_judge": [
            {"id": v["id"], "nodes": [(n["target"], n["any"][0]["message"] if n["any"] else "")
                                      for n in v["nodes"]]} for v in results["incomplete"]]},
        ensure_ascii=False, indent=1))
    with capsys.disabled():
        print(f"\naxe {name}: violations {dict(by_impact) or 0}, "
              f"passes {counts['passes']}, incomplete (for a person to judge) "
              f"{counts['incomplete'] or 0}")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"]]}
            for v in violations if v["impact"] in BLOCKING]


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_axe_finds_no_serious_violation_on_the_report_page(
        server: str, demo_dsn: str, phone_at: PhoneAt, lang: str, artifacts: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    context = phone_at(360, lang)
    page = signed_in_report(context, server, demo_dsn, lang)
    problems = watch(page)
    assert axe(page, f"report-{lang}", artifacts, capsys) == []

    # Offline, a report waits in the queue under the offline banner: both read too.
    context.set_offline(True)
    expect(page.locator("#net")).to_be_visible()
    page.locator("#category").select_option(index=1)
    page.locator("#note").fill("note" if lang == "en" else "垃圾未清")
    page.locator("#submit").click()
    expect(page.locator("#queue-items li.queued")).to_have_count(1)
    page.screenshot(path=str(artifacts / f"report-queue-{lang}.png"), full_page=True)
    assert axe(page, f"report-queue-{lang}", artifacts, capsys) == []

    # Back online, the server refuses it (422): the refusal stands out, and still reads.
    page.route(f"{server}/api/v1/issues", lambda route: route.fulfill(
        status=422, content_type="application/problem+json", body=json.dumps({
            "type": "about:blank", "title": "Unprocessable", "status": 422,
            "detail": "category is retired"})))
    context.set_offline(False)  # "online": the page sends what waits
    expect(page.locator("#queue-items li.refused")).to_contain_text("category is retired")
    page.screenshot(path=str(artifacts / f"report-refused-{lang}.png"), full_page=True)
    assert axe(page, f"report-refused-{lang}", artifacts, capsys) == []
    assert [p for p in problems
            if "ERR_INTERNET_DISCONNECTED" not in p and "422" not in p] == []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_axe_finds_no_serious_violation_on_the_work_page(
        server: str, demo_dsn: str, phone_at: PhoneAt, lang: str, artifacts: Path,
        capsys: pytest.CaptureFixture[str], jpeg: Callable[..., bytes]) -> None:
    context = phone_at(360, lang)
    page = signed_in_work(context, server, demo_dsn, lang)
    page.screenshot(path=str(artifacts / f"work-{lang}.png"), full_page=True)
    assert axe(page, f"work-{lang}", artifacts, capsys) == []

    # Offline, a rectification waits in the queue under the offline banner.
    context.set_offline(True)
    expect(page.locator("#net")).to_be_visible()
    card = page.locator("#issues > li").first
    card.locator("input[type=file]").set_input_files(files=[FilePayload(
        name="after.jpg", mimeType="image/jpeg", buffer=jpeg(colour=(40, 160, 60)))])
    card.locator("button.rectify").click()
    expect(page.locator("#queue-items li.queued")).to_have_count(1)
    page.screenshot(path=str(artifacts / f"work-queue-{lang}.png"), full_page=True)
    assert axe(page, f"work-queue-{lang}", artifacts, capsys) == []


def system_font(page: Page, percent: int) -> None:
    """Set Chromium's default font size, as a phone's text size setting does (not page CSS)."""
    session = page.context.new_cdp_session(page)
    session.send("Page.setFontSizes", {"fontSizes": {
        "standard": DEFAULT_FONT_PX * percent // 100,
        "fixed": 13 * percent // 100}})


def test_nothing_scrolls_sideways_at_320_px_nor_with_the_font_at_200_percent(
        server: str, demo_dsn: str, phone_at: PhoneAt, artifacts: Path) -> None:
    for width, percent in ((320, 100), (320, 200), (360, 200)):
        for opened in (signed_in_report, signed_in_work):
            page = opened(phone_at(width, "en"), server, demo_dsn, "en")
            system_font(page, percent)
            page.reload()
            expect(page.locator("#signed-in")).to_be_visible()
            expect(page.locator("#report, #work")).to_be_visible()
            # The text follows the phone's setting (rem, not px).
            body = page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)")
            assert body == DEFAULT_FONT_PX * percent / 100
            assert fits_the_screen(page), (opened.__name__, width, percent)
            # The screen as seen: a full-page screenshot would resize the page and so lose
            # the font setting.
            name = "report" if opened is signed_in_report else "work"
            page.screenshot(path=str(artifacts / f"{name}-{width}px-{percent}.png"))


def test_every_control_is_a_44_px_target(server: str, demo_dsn: str, phone_at: PhoneAt) -> None:
    for opened in (signed_in_report, signed_in_work):
        page = opened(phone_at(360, "zh"), server, demo_dsn, "zh")
        targets = page.evaluate(TARGETS)
        assert len(targets) > 5
        small = [t for t in targets if t["width"] < 44 or t["height"] < 44]
        assert small == [], page.url


FOCUSED = """(() => { const e = document.activeElement;
  const r = e.getBoundingClientRect();
  return { id: e.id || e.getAttribute('class') || e.tagName, top: r.top + scrollY,
           inMap: e.id !== 'map' && !!e.closest('#map'),
           outline: getComputedStyle(e).outlineStyle,
           label: e.classList.contains('file') ? getComputedStyle(e.nextElementSibling)
                                                   .outlineStyle : null }; })()"""


def tab_through(page: Page, stop: str) -> list[dict[str, Any]]:
    """Press Tab from the top of a page just opened until ``stop`` (an id) has focus."""
    seen: list[dict[str, Any]] = []
    for _ in range(30):
        page.keyboard.press("Tab")
        seen.append(page.evaluate(FOCUSED))
        if seen[-1]["id"] == stop:
            return seen
    raise AssertionError(f"{stop} never had focus: {[s['id'] for s in seen]}")


def test_the_report_form_is_tabbed_through_in_the_order_it_is_seen(
        server: str, demo_dsn: str, phone_at: PhoneAt) -> None:
    with psycopg.connect(demo_dsn) as conn:
        token = tokens.create(conn, role="inspector", name="巡查员")
        _, market_name, lon, lat = first_market(conn)
    context = phone_at(360, "zh")
    context.grant_permissions(["geolocation"], origin=server)
    context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 12})
    page = context.new_page()
    page.goto(f"{server}/report")
    expect(page.locator("#signin")).to_be_visible()

    signing_in = tab_through(page, "token")
    page.locator("#token").fill(token)
    page.keyboard.press("Tab")
    signing_in.append(page.evaluate(FOCUSED))
    assert [s["id"] for s in signing_in] == ["lang", "token", "BUTTON"]
    assert page.evaluate("document.activeElement.textContent") == "登录"
    assert all(s["outline"] != "none" for s in signing_in), signing_in
    page.keyboard.press("Enter")
    expect(page.locator("#site")).to_contain_text(market_name)
    page.reload()  # signed in: Tab from the top
    expect(page.locator("#site")).to_contain_text(market_name)
    order = tab_through(page, "submit")
    # The header, sign out, the map (its keys pan and zoom; inside it, Leaflet's own order:
    # the pin, the zoom buttons; the sites' outlines are not stops), the button that moves
    # the pin to the map's centre, then the form as it stands on screen.
    outside = [s for s in order if not s["inMap"]]
    assert [s["id"] for s in outside] == ["lang", "signout", "map", "pin-here", "category",
                                          "photo", "note", "submit"], order
    inside = [i for i, s in enumerate(order) if s["inMap"]]
    assert inside == [3, 4, 5], order  # the pin, zoom in, zoom out: no outline
    tops = [s["top"] for s in outside]
    assert tops == sorted(tops), outside
    # Where the focus is can be seen: an outline on the control (or on the file's label).
    assert all("none" not in (s["outline"], s["label"] or s["outline"]) for s in order), order
