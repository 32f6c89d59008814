"""The sitewatch command line: help, tokens stored as hashes, friendly errors."""

from __future__ import annotations

import hashlib

import psycopg
import pytest
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("db", "demo", "serve", "token"):
        assert command in result.output
    db_help = runner.invoke(app, ["db", "--help"]).output
    for command in ("start", "stop", "status", "migrate"):
        assert command in db_help


def test_token_create_prints_token_last_and_stores_only_its_hash(dsn: str) -> None:
    result = runner.invoke(app, ["token", "create", "--role", "admin", "--name", "t"],
                           env={"DATABASE_URL": dsn})
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("sw_") and len(token) > 40
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT token_hash, role FROM api_token").fetchall()
        as_text = conn.execute("SELECT count(*) FROM api_token WHERE"
                               " position(%s in row_to_json(api_token)::text) > 0",
                               [token]).fetchone()
    assert stored == [(hashlib.sha256(token.encode()).digest(), "admin")]
    assert as_text == (0,)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "boss"], "unknown role"),
        (["--role", "unit"], "needs --unit"),
        (["--role", "unit", "--unit", "no-such-unit"], "no unit"),
    ],
)
def test_token_create_rejects_bad_input_with_one_line(dsn: str, args: list[str],
                                                      message: str) -> None:
    result = runner.invoke(app, ["token", "create", *args], env={"DATABASE_URL": dsn})
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM api_token").fetchone() == (0,)


def test_unreachable_database_is_one_clear_line() -> None:
    result = runner.invoke(app, ["db", "migrate"],
                           env={"DATABASE_URL": "host=/nonexistent port=1 dbname=x user=x"})
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output
    assert "Traceback" not in result.output
