"""``sitewatch db backup`` / ``db restore`` round-trip the demo exactly: every table's rows
and every photo on disk, onto the same database after damage and onto an empty one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from api.cli.main import app
from layers.db.cluster import Cluster
from layers.db.settings import Settings
from layers.issues import evidence

runner = CliRunner()


def _checksums(dsn: str, data_dir: Path) -> dict[str, tuple[int, str]]:
    """Rows and a digest of every table, and the sha256 of every photo file."""
    out: dict[str, tuple[int, str]] = {}
    with psycopg.connect(dsn) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        for table in tables:
            row = conn.execute(sql.SQL(
                "SELECT count(*), coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)),"
                " '') FROM {} t").format(sql.Identifier(table))).fetchone()
            assert row is not None
            out[table] = (int(row[0]), str(row[1]))
    for photo in sorted((data_dir / "evidence").rglob("*.*")):
        out[str(photo.relative_to(data_dir))] = (1, hashlib.sha256(photo.read_bytes())
                                                 .hexdigest())
    return out


def _cli(dsn: str, data_dir: Path, *args: str) -> str:
    result = runner.invoke(app, ["db", *args],
                           env={"DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(data_dir)})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def empty_dsn(cluster: Cluster) -> Iterator[str]:
    """A new database with nothing in it, not even the schema (a new machine)."""
    name = "restore_target"
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield cluster.conninfo(name)
    with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_backup_and_restore_round_trip_the_demo_with_its_photos(
        demo_dsn: str, empty_dsn: str, tmp_path: Path, jpeg: Callable[..., bytes]) -> None:
    data = tmp_path / "data"
    with psycopg.connect(demo_dsn) as conn:
        for colour in ((200, 0, 0), (0, 200, 0)):
            evidence.save(conn, data, jpeg(colour=colour), zone=Settings().zone)
    original = _checksums(demo_dsn, data)
    assert sum(1 for k in original if k.startswith("evidence/")) == 2
    backup_file = tmp_path / "backups" / "sitewatch.tar"
    assert "2 photo(s)" in _cli(demo_dsn, data, "backup", str(backup_file))

    # Damage: lost rules and photo records, edited boundaries and statuses, a lost photo.
    # (The audit trail is append-only even for us.)
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("DELETE FROM responsibility_rule")
        conn.execute("DELETE FROM evidence")
        conn.execute("UPDATE jurisdiction SET name = name || ' (edited)'")
        conn.execute("UPDATE issue SET status = 'rejected', version = version + 1"
                     " WHERE id IN (SELECT id FROM issue ORDER BY id LIMIT 100)")
    next((data / "evidence").rglob("*.jpg")).unlink()
    assert _checksums(demo_dsn, data) != original

    _cli(demo_dsn, data, "restore", str(backup_file))
    assert _checksums(demo_dsn, data) == original

    elsewhere = tmp_path / "new-machine"
    _cli(empty_dsn, elsewhere, "restore", str(backup_file))
    assert _checksums(empty_dsn, elsewhere) == original


def test_restore_refuses_a_file_that_is_not_a_backup(demo_dsn: str, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar"
    bogus.write_bytes(b"not a tar file at all")
    result = runner.invoke(app, ["db", "restore", str(bogus)],
                           env={"DATABASE_URL": demo_dsn, "SITEWATCH_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert "cannot be read" in result.output
