"""``sitewatch token create --name … --link [--qr FILE]``: every token names its person, and a
sign-in link carries a live token of the right role and unit in its fragment, as text, as a
QR code on the terminal and as a PNG that decodes back to the link."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import zxingcpp
from PIL import Image
from typer.testing import CliRunner, Result

from api.cli.main import app
from layers.auth import tokens

runner = CliRunner()
PUBLIC = "https://sw.example.gov.cn"


def _create(dsn: str, *args: str, public: str | None = PUBLIC) -> Result:
    env = {"DATABASE_URL": dsn}
    if public is not None:
        env["SITEWATCH_PUBLIC_URL"] = public
    return runner.invoke(app, ["token", "create", *args], env=env)


def _link_and_token(result: Result) -> tuple[str, str]:
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    return lines[-2], lines[-1]


def _territorial_unit(dsn: str) -> tuple[str, str]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT code, name FROM unit WHERE kind = 'territorial'"
                           " ORDER BY code LIMIT 1").fetchone()
    assert row is not None
    return row[0], row[1]


def test_an_inspectors_link_opens_the_report_page_signed_in_as_that_person(dsn: str) -> None:
    result = _create(dsn, "--role", "inspector", "--name", "巡查员 小李", "--post", "网格员",
                     "--mobile", "138-0013-8000", "--link")
    link, token = _link_and_token(result)
    url = urlsplit(link)
    assert (url.scheme, url.netloc, url.path, url.query) == ("https", "sw.example.gov.cn",
                                                             "/report", "")
    assert url.fragment == f"token={token}"
    assert "▄" in result.stderr or "█" in result.stderr  # the QR code, drawn on the terminal
    with psycopg.connect(dsn) as conn:
        holder = tokens.authenticate(conn, token)
        listed = tokens.info(conn, token)
    assert holder is not None and holder.role == "inspector"
    assert holder.actor == "巡查员 小李（网格员）"
    assert (listed.live, listed.mobile) == (True, "13800138000")


def test_a_unit_tokens_link_opens_its_units_work_page(demo_dsn: str) -> None:
    code, name = _territorial_unit(demo_dsn)
    # Named by the unit's name; the link names the unit by its code, as the work page does.
    link, token = _link_and_token(_create(demo_dsn, "--role", "unit", "--unit", name,
                                          "--name", "社区 小王", "--link"))
    assert link == f"{PUBLIC}/units/{code}/work#token={token}"
    with psycopg.connect(demo_dsn) as conn:
        holder = tokens.info(conn, token)
    assert (holder.role, holder.unit, holder.live) == ("unit", code, True)


def test_without_a_public_url_the_link_names_the_serve_address(dsn: str) -> None:
    result = runner.invoke(app, ["token", "create", "--role", "admin", "--name", "管理员",
                                 "--link"],
                           env={"DATABASE_URL": dsn, "SITEWATCH_PUBLIC_URL": "",
                                "SITEWATCH_HOST": "0.0.0.0",  # noqa: S104 -- serve binding all addresses is the case tested
                                "SITEWATCH_PORT": "8123"})
    link, token = _link_and_token(result)
    assert link == f"http://127.0.0.1:8123/report#token={token}"


def test_the_png_decodes_back_to_the_link(dsn: str, tmp_path: Path) -> None:
    png = tmp_path / "小李.png"
    result = _create(dsn, "--role", "inspector", "--name", "巡查员 小李", "--qr", str(png))
    link, token = _link_and_token(result)
    assert link.endswith(f"#token={token}")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        width, height = image.size
        decoded = [found.text for found in zxingcpp.read_barcodes(image)]
    # Big enough to print and scan (8 px a module, version 4+ with its border), not a poster.
    assert width == height and 250 <= width <= 1000
    assert decoded == [link]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "viewer", "--name", "领导", "--link"], "no field page"),
        (["--role", "inspector", "--name", "小李", "--qr", "code.jpg"], "PNG"),
        (["--role", "inspector", "--link"], "give --name"),
    ],
)
def test_a_link_that_cannot_be_made_leaves_no_token(dsn: str, args: list[str],
                                                    message: str) -> None:
    result = _create(dsn, *args)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM api_token").fetchone() == (0,)


def test_the_database_refuses_a_token_without_a_person(dsn: str) -> None:
    with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO api_token (name, token_hash, role)"
                     " VALUES (' ', sha256('x'), 'viewer')")
