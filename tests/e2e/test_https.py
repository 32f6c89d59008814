"""The report page over HTTPS from `sitewatch serve --tls-cert --tls-key`, with a certificate
from the local authority of `sitewatch tls make`, as a phone on the office network reaches it:
by a name that is not localhost (so only HTTPS makes the context secure), the position granted
and emulated, and the pin placed where the phone is."""

from __future__ import annotations

import base64
import contextlib
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from playwright.sync_api import Browser, Page, expect, sync_playwright
from typer.testing import CliRunner

from api.cli.main import app
from layers.auth import tokens
from tests.api.test_field_pages import first_market
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.e2e.test_field_pages import PHONE, ZONE, sign_in

Serving = Callable[..., contextlib.AbstractContextManager[tuple[str, subprocess.Popen[bytes]]]]
# The name the phones use on the office network; Chromium resolves it to this machine.
NAME = "sitewatch.test"
# Leaflet's markers as the page makes them: L is wrapped the moment Leaflet defines it, so
# the test reads the pin from the map itself rather than from text the page prints.
WATCH_MARKERS = """
(() => {
  let leaflet;
  window.__markers = [];
  Object.defineProperty(window, "L", { configurable: true,
    get() { return leaflet; },
    set(value) {
      leaflet = value;
      const make = value.marker;
      value.marker = (...args) => { const m = make(...args); window.__markers.push(m); return m; };
    } });
})();
"""


def _spki_pin(cert: Path) -> str:
    """base64 of the SHA-256 of the certificate's public key, as Chromium's
    --ignore-certificate-errors-spki-list takes it."""
    public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    digest = hashes.Hash(hashes.SHA256())
    digest.update(public.public_bytes(serialization.Encoding.DER,
                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    return base64.b64encode(digest.finalize()).decode()


@pytest.fixture
def https_server(serving: Serving, demo_dsn: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`sitewatch serve` over HTTPS on the demo district: its base URL by NAME, and the
    server certificate."""
    tls = tmp_path / "tls"
    made = CliRunner().invoke(app, ["tls", "make", "--out", str(tls), "--host", NAME,
                                    "--ip", "127.0.0.1"])
    assert made.exit_code == 0, made.output
    env = {"DATABASE_URL": demo_dsn, "SITEWATCH_DATA_DIR": str(tmp_path)}
    args = ["api.cli.main", "serve", "--no-worker", "--host", "127.0.0.1",
            "--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server-key.pem")]
    with serving(args, env, tmp_path, ca=tls / "ca.pem") as (base, _):
        yield base.replace("127.0.0.1", NAME), tls / "server.pem"


@pytest.fixture
def phone_browser(https_server: tuple[str, Path]) -> Iterator[Browser]:
    """Chromium that resolves NAME to this machine and accepts only our server's key where
    the system store does not know the local authority (as a phone that installed ca.pem)."""
    _, cert = https_server
    args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {NAME} 127.0.0.1",
            f"--ignore-certificate-errors-spki-list={_spki_pin(cert)}"]
    with sync_playwright() as pw:
        launched = pw.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield launched
        finally:
            launched.close()


def _pin(page: Page) -> dict[str, float]:
    """The position of the page's pin (its first Leaflet marker)."""
    at: dict[str, float] = page.evaluate("""() => {
        const at = window.__markers[0].getLatLng(); return { lat: at.lat, lng: at.lng }; }""")
    return at


def test_over_https_the_page_is_a_secure_context_and_the_phones_fix_places_the_pin(
        https_server: tuple[str, Path], phone_browser: Browser, demo_dsn: str,
        artifacts: Path) -> None:
    base, _ = https_server
    assert base.startswith(f"https://{NAME}:")
    with psycopg.connect(demo_dsn) as conn:
        token = tokens.create(conn, role="inspector", name="巡查员 小李")
        _, market_name, lon, lat = first_market(conn)
    context = phone_browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                        locale="zh-CN", timezone_id=ZONE)
    try:
        context.grant_permissions(["geolocation"], origin=base)
        context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 12})
        context.add_init_script(WATCH_MARKERS)
        page = context.new_page()
        answer = page.goto(f"{base}/report")
        assert answer is not None and answer.ok
        assert page.evaluate("window.location.protocol") == "https:"
        assert page.evaluate("window.isSecureContext") is True
        sign_in(page, token)

        expect(page.locator("#where")).to_have_text("已定位（精度约 12 米）")
        expect(page.locator("#site")).to_contain_text(market_name)
        pin = _pin(page)
        assert pin["lat"] == pytest.approx(lat, abs=1e-9)
        assert pin["lng"] == pytest.approx(lon, abs=1e-9)
        # The marker is drawn where the map puts that position (the map is centred on it).
        box = page.locator(".leaflet-marker-icon").first.bounding_box()
        frame = page.locator("#map").bounding_box()
        assert box is not None and frame is not None
        anchor = page.evaluate("window.__markers[0].options.icon.options.iconAnchor")
        assert box["x"] + anchor[0] == pytest.approx(frame["x"] + frame["width"] / 2, abs=2)
        assert box["y"] + anchor[1] == pytest.approx(frame["y"] + frame["height"] / 2, abs=2)
        page.screenshot(path=str(artifacts / "report-over-https.png"), full_page=True)
    finally:
        context.close()
