"""``sitewatch db replica start|stop|status``: a hot standby of the managed cluster for trials
of read replicas (layers/db/standby.py), and the state of every configured replica."""

from __future__ import annotations

import typer

from api.cli.session import err, reported_errors
from layers.db import database, replicas, standby
from layers.db.settings import Settings

replica_app = typer.Typer(help="A hot standby of the managed cluster (read replica trials).",
                          no_args_is_help=True)

NO_MANAGED = ("DATABASE_URL 已设置：没有本地集群可做副本；请用 SITEWATCH_REPLICA_URL 指向已有的"
              "只读副本。 / DATABASE_URL is set: there is no managed cluster to make a replica "
              "of; point SITEWATCH_REPLICA_URL at your replicas.")


@replica_app.command("start")
def replica_start() -> None:
    """Make (first time: pg_basebackup -R from the running managed cluster) and start the
    standby under SITEWATCH_DATA_DIR/replica; the app then reads from it."""
    settings = Settings()
    if not settings.managed:
        err.print(NO_MANAGED)
        raise typer.Exit(2)
    node = database.managed_standby(settings)
    with reported_errors():
        standby.check_binaries(settings.pg_bindir)
        node.start()
    print(f"副本运行中 / replica running: {node.conninfo()}")
    if settings.replica_urls:
        print("SITEWATCH_REPLICA_URL 已设置：应用读取它所列的副本，而非此副本。 / "
              "SITEWATCH_REPLICA_URL is set: the app reads from the replicas it lists, "
              "not this one.")


@replica_app.command("stop")
def replica_stop() -> None:
    """Stop the standby; its data is kept, and `start` resumes streaming where it stopped."""
    settings = Settings()
    if not settings.managed:
        err.print(NO_MANAGED)
        raise typer.Exit(2)
    with reported_errors():
        database.managed_standby(settings).stop()
    print("副本已停止 / replica stopped.")


@replica_app.command("status")
def replica_status() -> None:
    """Whether the managed standby runs, and each replica's replay position and lag (bytes,
    seconds); exit 0 when every replica the app would use is usable, 3 if not."""
    settings = Settings()
    with reported_errors():
        if settings.managed:
            node = database.managed_standby(settings)
            print(f"managed replica: {node.status()}: {node.pgdata}")
        conninfos = database.replica_conninfos(settings)
        if not conninfos:
            print("没有配置副本 / no replica configured" + ("" if settings.managed
                  else " (SITEWATCH_REPLICA_URL is empty)"))
            raise typer.Exit(3)
        primary_lsn = replicas.primary_position(
            replicas.read_connector(database.conninfo(settings), [], 0.0))
        states = [replicas.probe(c, primary_lsn, settings.replica_max_lag) for c in conninfos]
    for state in states:
        lag = ("?" if state.lag_seconds is None else f"{state.lag_seconds:g} s") + ", " + (
            "?" if state.lag_bytes is None else f"{state.lag_bytes:,} bytes")
        verdict = "usable" if state.usable else f"not usable ({state.reason})"
        print(f"{state.name}: {verdict}; replayed {state.replay_lsn or '?'}; lag {lag}")
    if not all(s.usable for s in states):
        raise typer.Exit(3)
