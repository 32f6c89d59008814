"""The project's own PostGIS cluster: initdb, start, stop and status with the machine's binaries.

The server listens on a unix socket only (``listen_addresses=''``), in a directory of its own,
so it never collides with a system PostgreSQL. Local connections are trusted, and the socket
is mode 0700: only the OS user that owns the cluster (and root) can connect.

PostgreSQL refuses to run as root. When sitewatch itself runs as root, the server runs as an
unprivileged OS user (``postgres`` when the Debian packages created it, else a ``sitewatch``
system user that we create); every server binary is started through ``runuser``. If that user
cannot reach the project folder (a clone under ``/root``, say), the cluster's files live under
``/var/lib/sitewatch/<hash>`` and ``.sitewatch/pgdata`` is a symlink to them.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import psycopg
from psycopg import sql

SUPERUSER = "sitewatch"
# What a hot standby (`sitewatch db replica start`, layers/db/standby.py) needs of its primary,
# set on every start so no cluster needs a manual step: WAL with replica detail, senders and
# slots for standbys, and a cap on the WAL a slot of a long-stopped standby may hold back
# (past it the standby must be made again, rather than the primary's disk filling up).
REPLICATION_OPTIONS = ("wal_level=replica", "max_wal_senders=10", "max_replication_slots=10",
                       "max_slot_wal_keep_size=2GB")
# sockaddr_un.sun_path holds 108 bytes on Linux, including the terminating NUL.
_MAX_SOCKET_PATH = 100
Status = Literal["running", "stopped", "absent"]


class ClusterError(RuntimeError):
    """The managed cluster could not be created, started or stopped; the message says why."""


def find_bindir(override: Path | None = None) -> Path:
    """Return the newest PostgreSQL server bin directory on this machine.

    ``override`` (``Settings.pg_bindir``, from ``SITEWATCH_PG_BINDIR``) replaces the search.
    """
    if override is not None:
        candidates = [override]
    else:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        on_path = shutil.which("initdb")
        if on_path:
            candidates.append(Path(on_path).parent)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise ClusterError(
        "PostgreSQL server binaries not found: install postgresql-15 and "
        "postgresql-15-postgis-3 (apt-get install postgresql-15-postgis-3), "
        "or set DATABASE_URL to an existing PostGIS server"
    )


def _check_postgis(bindir: Path) -> None:
    sharedir = subprocess.run(
        [str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False
    ).stdout.strip()
    candidates = [Path(sharedir)] if sharedir else []
    candidates.append(Path("/usr/share/postgresql") / bindir.parent.name)
    if not any((d / "extension" / "postgis.control").exists() for d in candidates):
        raise ClusterError(
            f"PostGIS is not installed for PostgreSQL {bindir.parent.name}: "
            f"apt-get install postgresql-{bindir.parent.name}-postgis-3"
        )


def _service_user() -> str | None:
    """The OS user the server runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", SUPERUSER):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SUPERUSER],
        check=True,
        capture_output=True,
    )
    return SUPERUSER


@dataclass(frozen=True)
class Cluster:
    """A private PostgreSQL cluster rooted at ``root`` (the project's data dir)."""

    root: Path
    port: int = 54329
    database: str = "sitewatch"
    # Extra ``-c name=value`` server settings (tests turn off fsync, for instance).
    options: tuple[str, ...] = ()
    # The PostgreSQL bin directory to use (``Settings.pg_bindir``); None: the newest found.
    bindir: Path | None = None

    @cached_property
    def _user(self) -> str | None:
        return _service_user()

    @cached_property
    def home(self) -> Path:
        """Where the cluster's files really live (see the module docstring)."""
        root = self.root.resolve()
        user = self._user
        if user is None or _can_reach(user, root):
            return root
        digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        return Path("/var/lib/sitewatch") / digest

    @property
    def pgdata(self) -> Path:
        """The data directory PostgreSQL uses."""
        return self.home / "pgdata"

    @property
    def socket_dir(self) -> Path:
        """The directory holding the server's unix socket."""
        preferred = self.home / "run"
        if len(str(preferred / f".s.PGSQL.{self.port}")) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha256(str(self.home).encode()).hexdigest()[:12]
        return Path("/tmp") / f"sitewatch-{digest}"  # noqa: S108 - short path for sun_path

    @property
    def log_file(self) -> Path:
        """The server log (startup failures are explained here)."""
        return self.home / "log" / "postgres.log"

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq connection string for this cluster."""
        return psycopg.conninfo.make_conninfo(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=dbname or self.database,
        )

    def status(self) -> Status:
        """``running``, ``stopped`` (initialised, not running) or ``absent`` (no cluster yet)."""
        if not (self.pgdata / "PG_VERSION").exists():
            return "absent"
        result = self._pg("pg_ctl", "status", "-D", str(self.pgdata), check=False)
        return "running" if result.returncode == 0 else "stopped"

    def start(self) -> None:
        """Create the cluster if needed, start it, and ensure the database and PostGIS exist."""
        bindir = find_bindir(self.bindir)
        _check_postgis(bindir)
        if self.status() == "absent":
            self._init()
        if self.status() != "running":
            self._prepare_dirs()
            _allow_local_replication(self.pgdata)
            opts = [
                "-c listen_addresses=''",
                f"-c port={self.port}",
                f"-c unix_socket_directories='{self.socket_dir}'",
                "-c unix_socket_permissions=0700",
                *(f"-c {o}" for o in (*REPLICATION_OPTIONS, *self.options)),
            ]
            result = self._pg(
                "pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.log_file),
                "-w", "-t", "60", "-o", " ".join(opts), check=False,
            )
            if result.returncode != 0:
                raise ClusterError(
                    f"PostgreSQL did not start (see {self.log_file}): {_tail(self.log_file)}"
                )
        self._ensure_database()

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are ended, data is kept)."""
        if self.status() != "running":
            return
        result = self._pg("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w",
                          check=False)
        if result.returncode != 0:
            raise ClusterError(f"PostgreSQL did not stop: {result.stderr.strip()}")

    def destroy(self) -> None:
        """Stop the server and delete every file of the cluster."""
        self.stop()
        link = self.root / "pgdata"
        if link.is_symlink():
            link.unlink()
        for d in (self.pgdata, self.home / "run", self.home / "log", self.socket_dir):
            shutil.rmtree(d, ignore_errors=True)

    def _init(self) -> None:
        self._prepare_dirs()
        result = self._pg(
            "initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "-E", "UTF8", "--locale=C",
            "--auth-local=trust", "--auth-host=scram-sha-256", check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"initdb failed: {result.stderr.strip()[-500:]}")

    def _prepare_dirs(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        user = self._user
        for d in (self.pgdata, self.socket_dir, self.log_file.parent):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
            if user is not None:
                shutil.chown(d, user, user)
        os.chmod(self.pgdata, 0o700)
        link = self.root / "pgdata"
        if self.home != self.root.resolve() and not link.exists():
            link.symlink_to(self.pgdata)

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(find_bindir(self.bindir) / program), *args]
        user = self._user
        if user is not None:
            cmd = ["runuser", "-u", user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd="/")

    def _ensure_database(self) -> None:
        with psycopg.connect(self.conninfo("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [self.database]
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def _allow_local_replication(pgdata: Path) -> None:
    """Make sure pg_hba.conf lets a local standby stream over the unix socket (initdb's
    default file has the line; a file edited by hand may not)."""
    hba = pgdata / "pg_hba.conf"
    lines = hba.read_text().splitlines()
    if any(line.split()[:3] == ["local", "replication", "all"] for line in lines
           if not line.lstrip().startswith("#")):
        return
    with hba.open("a") as out:
        out.write("\n# sitewatch: local hot standbys (sitewatch db replica start)\n"
                  "local   replication     all                                     trust\n")


def _can_reach(user: str, path: Path) -> bool:
    """Whether ``user`` can traverse every ancestor of ``path`` (so the server can use it)."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    result = subprocess.run(
        ["runuser", "-u", user, "--", "test", "-x", str(probe)], capture_output=True, check=False
    )
    return result.returncode == 0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "no log"
