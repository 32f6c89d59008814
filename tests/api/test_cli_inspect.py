"""``sitewatch inspect``: propose by default, store with --save, refuse clearly."""

from __future__ import annotations

import psycopg
from typer.testing import CliRunner

from api.cli.inspect import inspect_app

runner = CliRunner()


def rounds(dsn: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT planned_for::text, seed, size FROM inspection_round"
                            " ORDER BY id").fetchall()


def test_plan_proposes_a_route_and_stores_only_with_save(demo_dsn: str) -> None:
    env = {"DATABASE_URL": demo_dsn, "COLUMNS": "200"}
    dry = runner.invoke(inspect_app, ["plan", "--seed", "9", "--date", "2026-12-01"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "route length" in dry.output and "dry run" in dry.output
    assert dry.output.count("轮到社区") >= 4  # 12 communities in 3 rounds: 4 a round
    assert rounds(demo_dsn) == []
    saved = runner.invoke(inspect_app, ["plan", "--seed", "9", "--date", "2026-12-01",
                                        "--save"], env=env)
    assert saved.exit_code == 0, saved.output
    assert "stored as round" in saved.output
    # The stored round is the one proposed: same table, same route.
    assert saved.output.split("route length")[0] == dry.output.split("route length")[0]
    assert rounds(demo_dsn) == [("2026-12-01", 9, 8)]
    listed = runner.invoke(inspect_app, ["list"], env=env)
    assert listed.exit_code == 0 and "2026-12-01" in listed.output


def test_plan_refuses_a_round_too_small_in_one_clear_message(demo_dsn: str) -> None:
    result = runner.invoke(inspect_app, ["plan", "--size", "4", "--save"],
                           env={"DATABASE_URL": demo_dsn})
    assert result.exit_code == 1
    assert "at least 5" in result.output and "Traceback" not in result.output
    assert rounds(demo_dsn) == []
