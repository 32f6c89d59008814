"""A hot standby of the managed cluster, for trials of read replicas on one machine.

``sitewatch db replica start`` copies the running primary with ``pg_basebackup -R`` (which
writes ``standby.signal`` and the primary's connection into ``postgresql.auto.conf``) into
``SITEWATCH_DATA_DIR/replica`` and starts it on a socket of its own (the primary's port + 1
names it). It streams through a physical replication slot, so a standby that was stopped
finds the WAL it missed when started again (the primary keeps at most
``max_slot_wal_keep_size`` of it: layers.db.cluster.REPLICATION_OPTIONS).

The standby is the same machinery as the primary (layers.db.cluster.Cluster): the same
binaries, OS user, socket rules and logs; only its creation and its first connection differ.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from layers.db.cluster import Cluster, ClusterError, find_bindir

# What a standby adds to the primary's settings: it answers queries while replaying
# (hot_standby), and tells the primary which rows its queries still read, so the primary's
# vacuum does not remove them and cancel a long map or export query on the standby.
STANDBY_OPTIONS = ("hot_standby=on", "hot_standby_feedback=on")


def slot_name(standby_port: int) -> str:
    """The replication slot a managed standby on ``standby_port`` streams through.

    >>> slot_name(54330)
    'sitewatch_replica_54330'
    """
    return f"sitewatch_replica_{standby_port}"


@dataclass(frozen=True)
class Standby(Cluster):
    """A hot standby of ``primary`` rooted at ``root`` (its own pgdata, socket and log)."""

    primary: Cluster | None = None

    @property
    def slot(self) -> str:
        """The physical replication slot on the primary this standby streams through."""
        return slot_name(self.port)

    def _source(self) -> Cluster:
        if self.primary is None:
            raise ClusterError("a standby needs its primary cluster")
        return self.primary

    def _init(self) -> None:
        """Copy the running primary (``pg_basebackup -R``) instead of ``initdb``."""
        primary = self._source()
        if primary.status() != "running":
            raise ClusterError("the primary cluster is not running: `sitewatch db start` first")
        self._prepare_dirs()
        self._drop_slot()  # left by a standby whose files were deleted: start afresh
        result = self._pg(
            "pg_basebackup", "-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast",
            "-C", "-S", self.slot, "--no-password", "-d", primary.conninfo("postgres"),
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"pg_basebackup failed: {result.stderr.strip()[-500:]}")

    def _ensure_database(self) -> None:
        # A standby's databases are the primary's, and it accepts no DDL: nothing to create.
        # pg_ctl -w has waited until it accepts read-only connections.
        return

    def destroy(self) -> None:
        """Stop the standby, delete its files and free its slot on the primary."""
        super().destroy()
        if self.primary is not None and self.primary.status() == "running":
            self._drop_slot()

    def _drop_slot(self) -> None:
        with psycopg.connect(self._source().conninfo("postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                         " WHERE slot_name = %s AND NOT active", [self.slot])


def of(primary: Cluster, root: Path) -> Standby:
    """The standby of ``primary`` kept under ``root`` (``SITEWATCH_DATA_DIR/replica``), with
    the primary's own server options (a test cluster's fsync=off, say) plus the standby's."""
    extra = tuple(o for o in primary.options if not re.match(r"\s*hot_standby", o))
    return Standby(root, port=primary.port + 1, database=primary.database,
                   options=(*extra, *STANDBY_OPTIONS), bindir=primary.bindir,
                   primary=primary)


def check_binaries(bindir: Path | None) -> None:
    """Fail with one actionable line when pg_basebackup is missing."""
    if not (find_bindir(bindir) / "pg_basebackup").exists():
        raise ClusterError("pg_basebackup not found: install the postgresql client package")
