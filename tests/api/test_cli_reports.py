"""``sitewatch scores`` and ``sitewatch phases``: the same numbers as the API, on the terminal
or in a workbook; bad input is one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import psycopg
import pytest
from typer.testing import CliRunner

from api.cli.main import app
from layers.catalog import periods
from layers.db.settings import Settings
from layers.supervision import scores
from tests import two_streets
from tests.conftest import fold_tallies

runner = CliRunner()


def test_scores_table_shows_the_ranking_of_the_phase(demo_dsn: str) -> None:
    result = runner.invoke(app, ["scores", "--phase", "consolidation", "--year", "2026"],
                           env={"DATABASE_URL": demo_dsn, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "创建工作得分排名（责任单位） 巩固提高 2026-09-01 至 2026-12-31" in result.output
    with psycopg.connect(demo_dsn) as conn:
        period = periods.of_phase(conn, "consolidation", 2026, Settings().zone)
        since, until = period.bounded
        top = scores.ranking(conn, since=since, until=until)[0]
    assert top.issues > 0 and top.rework_rate is not None
    top_line = next(line for line in result.output.splitlines() if top.name in line)
    assert f"{top.points_lost:.2f}" in top_line
    assert f"{top.rework_rate:.1%}" in top_line
    assert top.rework_rate_adjusted is not None
    assert f"{top.rework_rate_adjusted:.1%}" in top_line
    assert "调整率：经验贝叶斯估计" in result.output


def test_scores_xlsx_writes_the_workbook(dsn: str, tmp_path: Path) -> None:
    target = tmp_path / "得分.xlsx"
    result = runner.invoke(app, ["scores", "--group", "site", "--since", "2026-05-01",
                                 "--until", "2026-05-31", "--xlsx", str(target)],
                           env={"DATABASE_URL": dsn})
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(target).active
    assert sheet is not None
    # --until is the last day, inclusive
    assert sheet["A1"].value == "创建工作得分排名（点位） 2026-05-01 至 2026-05-31"


def test_scores_of_one_street_are_its_offices(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        two_streets.build(conn)
    fold_tallies(dsn)
    env = {"DATABASE_URL": dsn, "COLUMNS": "200"}
    whole = runner.invoke(app, ["scores", "--since", "2020-01-01"], env=env)
    street = runner.invoke(app, ["scores", "--since", "2020-01-01", "--street", "BRAVOST"],
                           env=env)
    assert whole.exit_code == street.exit_code == 0, (whole.output, street.output)
    assert "东湖社区" in whole.output and "西湖社区" in whole.output
    assert "西湖街道 创建工作得分排名（责任单位）" in street.output
    assert "西湖社区" in street.output and "东湖社区" not in street.output
    missing = runner.invoke(app, ["scores", "--street", "BRAVOC1"], env=env)
    assert missing.exit_code == 1 and "no street 'BRAVOC1'" in missing.output


def test_phases_set_and_list(dsn: str) -> None:
    env = {"DATABASE_URL": dsn}
    result = runner.invoke(app, ["phases", "set", "attack", "2028-05-04", "2028-06-30"], env=env)
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["phases", "list", "--year", "2028"], env=env).output
    assert "attack" in listed and "2028-05-04" in listed and "重点攻坚" in listed


@pytest.mark.parametrize(("args", "message"), [
    (["scores", "--group", "street"], "group 'street'"),
    (["scores", "--sort", "worst"], "sort 'worst'"),
    (["scores", "--phase", "nope", "--year", "2026"], "no campaign phase 'nope'"),
    (["scores", "--since", "May 1"], "--since：无法识别的日期或时间 / not an ISO 8601 date"),
    (["scores", "--phase", "attack", "--since", "2026-05-01"], "not both"),
    (["phases", "set", "compliance", "2026-06-15", "2026-08-31"], "overlaps"),
    (["phases", "set", "review", "2027-01-05", "2027-01-20"], "names"),
])
def test_bad_input_is_one_line(dsn: str, args: list[str], message: str) -> None:
    result = runner.invoke(app, args, env={"DATABASE_URL": dsn, "COLUMNS": "200"})
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
