"""``sitewatch orders``: issue and escalate safely twice, list, print to files, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
from openpyxl import load_workbook
from typer.testing import CliRunner

from api.cli.main import app

runner = CliRunner()


def test_issue_and_escalate_twice_then_list_and_print(demo_dsn: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": demo_dsn}
    first = runner.invoke(app, ["orders", "issue", "--by", "督查组 赵六"], env=env)
    assert first.exit_code == 0, first.output
    codes = re.findall(r"DB\d{4}-\d{4}", first.output)
    assert codes
    second = runner.invoke(app, ["orders", "issue"], env=env)
    assert second.exit_code == 0
    assert "nothing to hand over" in second.output
    escalated = runner.invoke(app, ["orders", "escalate"], env=env)
    assert escalated.exit_code == 0 and "escalation" in escalated.output
    assert "nothing newly overdue" in runner.invoke(app, ["orders", "escalate"], env=env).output
    with psycopg.connect(demo_dsn) as conn:
        stored = conn.execute("SELECT count(*), count(*) FILTER (WHERE kind = 'order'"
                              " AND issued_by = '督查组 赵六') FROM supervision_order"
                              ).fetchone()
    assert stored is not None and stored[1] == len(codes)
    listed = runner.invoke(app, ["orders", "list", "--pending", "--limit", "500"], env=env)
    assert listed.exit_code == 0
    assert f"{stored[0]} of {stored[0]} order(s)" in listed.output

    html, xlsx = tmp_path / "order.html", tmp_path / "order.xlsx"
    printed = runner.invoke(app, ["orders", "print", codes[0], "--html", str(html),
                                  "--xlsx", str(xlsx)], env=env)
    assert printed.exit_code == 0, printed.output
    assert codes[0] in html.read_text(encoding="utf-8")
    sheet = load_workbook(xlsx).active
    assert sheet is not None and "督办单" in str(sheet["A1"].value)


def test_errors_are_one_line_and_exit_1(demo_dsn: str) -> None:
    env = {"DATABASE_URL": demo_dsn}
    unknown = runner.invoke(app, ["orders", "print", "DB2026-9999"], env=env)
    assert unknown.exit_code == 1
    assert "no supervision order 'DB2026-9999'" in unknown.output
    assert "Traceback" not in unknown.output
    bad_unit = runner.invoke(app, ["orders", "issue", "--unit", "NOPE"], env=env)
    assert bad_unit.exit_code == 1 and "no unit 'NOPE'" in bad_unit.output
