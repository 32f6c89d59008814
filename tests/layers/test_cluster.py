"""The managed cluster: start, data survives a restart, stop, and clear errors."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from layers.db.cluster import Cluster, ClusterError
from layers.db.database import managed_cluster
from layers.db.settings import Settings


@pytest.fixture
def fresh_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="sw-cluster-"))
    root.chmod(0o755)
    yield root / ".sitewatch"
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow  # initdb and two server starts
def test_start_restart_keeps_data_and_stop(fresh_root: Path) -> None:
    node = Cluster(fresh_root, port=50000 + os.getpid() % 5000)
    assert node.status() == "absent"
    node.start()
    try:
        assert node.status() == "running"
        with psycopg.connect(node.conninfo()) as conn:
            version = conn.execute("SELECT postgis_lib_version()").fetchone()
            assert version is not None and version[0].startswith("3.")
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('survives restart')")
        node.stop()
        assert node.status() == "stopped"
        node.start()
        with psycopg.connect(node.conninfo()) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("survives restart",)]
    finally:
        node.destroy()
    assert node.status() == "absent"


def test_server_listens_on_its_own_socket_only(cluster: Cluster) -> None:
    with psycopg.connect(cluster.conninfo("postgres")) as conn:
        listen = conn.execute("SHOW listen_addresses").fetchone()
        socket_dirs = conn.execute("SHOW unix_socket_directories").fetchone()
    assert listen == ("",)
    assert socket_dirs == (str(cluster.socket_dir),)


def test_missing_binaries_give_one_actionable_line(
    fresh_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The setting reaches the cluster through Settings (the one reader of the environment).
    monkeypatch.setenv("SITEWATCH_PG_BINDIR", str(fresh_root / "no-such-bin"))
    with pytest.raises(ClusterError, match="apt-get install postgresql-15-postgis-3"):
        managed_cluster(Settings(data_dir=fresh_root, pg_port=50999)).start()
