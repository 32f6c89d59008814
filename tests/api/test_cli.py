"""The sitewatch command line: help, tokens stored as hashes, friendly errors."""

from __future__ import annotations

import hashlib
import re

import psycopg
import pytest
from typer.testing import CliRunner

from api.cli.main import app
from layers.auth import tokens

runner = CliRunner()


def _listed(help_text: str) -> set[str]:
    """The names a help page lists as commands: the first word of a row of its table."""
    _, _, table = help_text.partition("Commands")
    return set(re.findall(r"^\W*? ([a-z][a-z-]*)  ", table, flags=re.MULTILINE))


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    # The commands DESIGN.md promises, each as a row of the table (not just a word in it).
    assert {"db", "demo", "serve", "import", "export", "hotspots", "map", "token", "inspect",
            "calendar", "tls"} <= _listed(result.output)
    db_help = runner.invoke(app, ["db", "--help"])
    assert db_help.exit_code == 0
    assert _listed(db_help.output) == {"start", "stop", "status", "migrate", "backup",
                                       "restore", "replica"}
    calendar_help = runner.invoke(app, ["calendar", "--help"])
    assert _listed(calendar_help.output) == {"set", "unset", "list"}


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
        (["--role", "boss", "--name", "某人"], "unknown role"),
        (["--role", "unit", "--name", "某人"], "needs --unit"),
        (["--role", "unit", "--unit", "no-such-unit", "--name", "某人"], "no unit"),
        (["--role", "admin"], "give --name"),
        (["--role", "admin", "--name", "  "], "give --name"),
        (["--role", "admin", "--name", "某人", "--mobile", "call me"], "not a mobile number"),
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


def test_token_revoke_by_id_or_token_takes_effect_at_once(dsn: str) -> None:
    env = {"DATABASE_URL": dsn}
    with psycopg.connect(dsn) as conn:
        first = tokens.create(conn, role="viewer", name="领导甲")
        second = tokens.create(conn, role="inspector", name="巡查员乙")
        assert tokens.authenticate(conn, first) is not None
    listed = runner.invoke(app, ["token", "list"], env=env)
    assert listed.exit_code == 0
    lines = [line.split() for line in listed.stdout.splitlines()]
    # id, role, unit, street, state: neither token has a unit or a street.
    assert [(line[1], line[3], line[4]) for line in lines] == [("viewer", "-", "live"),
                                                               ("inspector", "-", "live")]
    by_id = runner.invoke(app, ["token", "revoke", lines[0][0]], env=env)
    assert by_id.exit_code == 0, by_id.output
    by_token = runner.invoke(app, ["token", "revoke", second], env=env)
    assert by_token.exit_code == 0 and "巡查员乙" in by_token.stdout
    with psycopg.connect(dsn) as conn:
        assert tokens.authenticate(conn, first) is None
        assert tokens.authenticate(conn, second) is None
    states = [line.split()[4] for line in
              runner.invoke(app, ["token", "list"], env=env).stdout.splitlines()]
    assert states == ["revoked", "revoked"]
    unknown = runner.invoke(app, ["token", "revoke", "sw_nothing"], env=env)
    assert unknown.exit_code == 1 and "no such token" in unknown.output


def test_calendar_list_shows_a_years_holidays_and_make_up_working_days(dsn: str) -> None:
    env = {"DATABASE_URL": dsn}
    for args in (["2026-05-11", "--holiday"], ["2026-05-09", "--workday", "--name", "调休上班"],
                 ["2027-01-01", "--holiday", "--name", "元旦"]):
        assert runner.invoke(app, ["calendar", "set", *args], env=env).exit_code == 0
    listed = runner.invoke(app, ["calendar", "list", "2026"], env=env)
    assert listed.exit_code == 0, listed.output
    assert [line.split() for line in listed.stdout.splitlines()] == [
        ["2026-05-09", "working", "day", "调休上班"], ["2026-05-11", "holiday"]]


def test_requests_sharing_a_token_do_not_wait_for_each_other(dsn: str) -> None:
    with psycopg.connect(dsn) as first, psycopg.connect(dsn) as second:
        token = tokens.create(first, role="inspector", name="共享")
        first.commit()
        # The first request authenticates (and stamps last use) and stays open ...
        assert tokens.authenticate(first, token) is not None
        second.execute("SET lock_timeout = '1s'")
        # ... a second request with the same token must not block on that row.
        assert tokens.authenticate(second, token) is not None
        first.commit()
        second.commit()
        stamped = first.execute("SELECT last_used_at IS NOT NULL FROM api_token").fetchone()
        assert stamped == (True,)


def test_stamping_a_token_leaves_room_for_rows_that_name_it(dsn: str) -> None:
    # Two retries of one report: the first stamps the token's last use, the second stores
    # its idempotency key, whose foreign-key check takes a key-share lock on the token row.
    # With the stamp holding FOR UPDATE that check waited, and the two deadlocked.
    with psycopg.connect(dsn) as first, psycopg.connect(dsn) as second:
        token = tokens.create(first, role="inspector", name="重试")
        first.commit()
        principal = tokens.authenticate(first, token)
        assert principal is not None
        second.execute("SET lock_timeout = '1s'")
        second.execute("INSERT INTO idempotency_key (token_id, key, request_hash)"
                       " VALUES (%s, 'retry', '\\x00')", [principal.token_id])
        second.commit()
        first.commit()
