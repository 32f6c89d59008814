"""Backup and restore: the database (``pg_dump`` custom format) and the evidence photos on
disk, together in one tar file, so a restore brings back issues and the photos they cite.

The archive holds ``database.dump`` and ``evidence/<xx>/<sha256>.<ext>`` as they lie under
the data dir. ``pg_dump``/``pg_restore`` come from the PostgreSQL installation matching the
server's major version (a newer one also works; an older one refuses), found like the managed
cluster's binaries (``pg_bindir``, i.e. ``Settings.pg_bindir``, then
``/usr/lib/postgresql/<version>/bin``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from layers.db.cluster import find_bindir
from layers.errors import DomainError

DUMP = "database.dump"
EVIDENCE = "evidence"


class BackupError(DomainError, status=500, code="backup-failed", title="Backup failed"):
    """A backup or restore could not be made; the message says why."""


@dataclass(frozen=True)
class Summary:
    """What a backup or restore moved."""

    database_bytes: int
    photos: int


def _bindir(conninfo: str, override: Path | None) -> Path:
    """Client binaries at least as new as the server (pg_dump refuses older servers' peers);
    ``override`` (``Settings.pg_bindir``) is tried first."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    major = int(row[0]) // 10000 if row else 0
    candidates = [override] if override is not None else []
    candidates += [Path(f"/usr/lib/postgresql/{major}/bin"), find_bindir(override)]
    for bindir in candidates:
        if (bindir / "pg_dump").exists() and (bindir / "pg_restore").exists():
            return bindir
    raise BackupError(f"pg_dump/pg_restore for PostgreSQL {major} not found: install "
                      f"postgresql-client-{major} or set SITEWATCH_PG_BINDIR")


def _partitioned_tables(conninfo: str) -> list[str]:
    """The partitioned tables of the database, qualified and quoted."""
    with psycopg.connect(conninfo) as conn:
        rows = conn.execute("SELECT c.oid::regclass::text FROM pg_class c"
                            " JOIN pg_namespace n ON n.oid = c.relnamespace"
                            " WHERE c.relkind = 'p' AND NOT c.relispartition"
                            " AND n.nspname = 'public'").fetchall()
    return [f"public.{r[0]}" if "." not in r[0] else r[0] for r in rows]


def _run(program: Path, *args: str) -> None:
    result = subprocess.run([str(program), *args], capture_output=True, text=True,
                            check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise BackupError(f"{program.name} failed: {tail}")


def backup(conninfo: str, data_dir: Path, out: Path, *, pg_bindir: Path | None = None
           ) -> Summary:
    """Write the database and the evidence photos under ``data_dir`` to the tar file ``out``.

    The file appears only when complete (written beside it, then renamed).
    """
    bindir = _bindir(conninfo, pg_bindir)
    photos = sorted(p for p in (data_dir / EVIDENCE).rglob("*") if p.is_file()) \
        if (data_dir / EVIDENCE).is_dir() else []
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sw-backup-") as work:
        dump = Path(work) / DUMP
        _run(bindir / "pg_dump", "--format=custom", f"--file={dump}", f"--dbname={conninfo}")
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w") as archive:
            archive.add(dump, DUMP)
            for photo in photos:
                archive.add(photo, photo.relative_to(data_dir).as_posix())
        os.replace(partial, out)
        return Summary(dump.stat().st_size, len(photos))


def restore(conninfo: str, data_dir: Path, archive_path: Path, *,
            pg_bindir: Path | None = None) -> Summary:
    """Replace the database's contents with the backup's and put its photos back.

    The database part is one transaction (the script of ``pg_restore --clean`` run by ``psql
    --single-transaction``): it lands whole or not at all. Photos are content-addressed, so
    existing ones are kept and missing ones written (each under a temporary name first).
    Stop the server before restoring: open sessions would hold the locks the restore needs.
    """
    bindir = _bindir(conninfo, pg_bindir)
    with tempfile.TemporaryDirectory(prefix="sw-restore-") as work:
        try:
            with tarfile.open(archive_path) as archive:
                names = archive.getnames()
                if DUMP not in names:
                    raise BackupError(f"{archive_path.name} is not a sitewatch backup "
                                      f"(no {DUMP})")
                # The data filter refuses absolute paths, links out and device files.
                archive.extractall(work, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise BackupError(f"{archive_path.name} cannot be read: {exc}") from None
        dump = Path(work) / DUMP
        # pg_restore --clean drops a partition's primary key before its table, which
        # PostgreSQL refuses (the key is its parent's): the partitioned tables (migration
        # 0030) are dropped first, whole, in the same transaction as the restore's script,
        # whose drops of what they held then find nothing (IF EXISTS).
        script = Path(work) / "restore.sql"
        _run(bindir / "pg_restore", "--clean", "--if-exists", "--no-owner",
             "--no-privileges", f"--file={script}", str(dump))
        first = Path(work) / "partitioned.sql"
        first.write_text("".join(f"DROP TABLE IF EXISTS {name} CASCADE;\n"
                                 for name in _partitioned_tables(conninfo)), encoding="utf-8")
        _run(bindir / "psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
             "--single-transaction", f"--file={first}", f"--file={script}",
             f"--dbname={conninfo}")
        photos = sorted(p for p in (Path(work) / EVIDENCE).rglob("*") if p.is_file()) \
            if (Path(work) / EVIDENCE).is_dir() else []
        for photo in photos:
            target = data_dir / photo.relative_to(work)
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            shutil.copyfile(photo, partial)
            os.replace(partial, target)
        return Summary(dump.stat().st_size, len(photos))
