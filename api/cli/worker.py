"""``sitewatch worker``: the background jobs in a loop until SIGTERM or SIGINT; and the child
worker ``sitewatch serve`` starts beside the web server.

The child is told its parent's process id and stops by itself when that parent is gone (a
``kill -9`` of serve leaves no orphan working on); a clean stop of serve terminates it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from api.cli.session import reported_errors
from api.services.worker_jobs import all_jobs
from layers.analysis import snapshots
from layers.db import database
from layers.db.settings import Settings
from layers.worker import runner

# Seconds serve waits for its worker child to finish the job in hand before killing it.
CHILD_STOP_SECONDS = 30.0


def _watch_parent(parent: int, stop: threading.Event) -> None:
    """Set ``stop`` once the process ``parent`` is no longer this one's parent."""
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()


def worker_command(
    parent: Annotated[int | None, typer.Option(
        hidden=True, help="Stop when this process (serve) is gone.")] = None,
) -> None:
    """Run the background jobs (escalation, map refresh, nightly backup, ...) until stopped
    with SIGTERM or Ctrl-C. Several workers may run: each job run is claimed in the database."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if parent is not None:
        threading.Thread(target=_watch_parent, args=(parent, stop), daemon=True).start()
    if not settings.public_url:
        # Links in chat messages and emails are followed from phones elsewhere; the bind
        # address they fall back to is rarely one those phones reach.
        logging.getLogger("sitewatch.worker").warning(
            "SITEWATCH_PUBLIC_URL is not set: links in notifications point at %s",
            settings.site_url)
    with reported_errors():
        connect = snapshots.connector(database.conninfo(settings))
        runner.run_forever(connect, all_jobs(settings), settings, stop)


def start_child(host: str, port: int, tls: tuple[Path, Path] | None = None
                ) -> subprocess.Popen[bytes]:
    """``sitewatch worker`` as a child of this process, sharing its environment and output,
    told the address serve binds (``host``, ``port``, and its certificate and key ``tls`` when
    it serves HTTPS: given on serve's command line, they are not in the environment), which
    its links name when SITEWATCH_PUBLIC_URL is not set."""
    env = {**os.environ, "SITEWATCH_HOST": host, "SITEWATCH_PORT": str(port)}
    if tls is not None:
        env.update(SITEWATCH_TLS_CERT=str(tls[0]), SITEWATCH_TLS_KEY=str(tls[1]))
    return subprocess.Popen([sys.executable, "-m", "api.cli.main", "worker",
                             "--parent", str(os.getpid())], env=env)


def stop_child(child: subprocess.Popen[bytes]) -> None:
    """Ask the child worker to stop (SIGTERM) and wait for it; kill it if it will not."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=CHILD_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
