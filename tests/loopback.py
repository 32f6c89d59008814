"""Loopback receivers for the tests of outbound messages (webhooks, group robots, email over
SMTP), and polling until something the worker does has happened."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as Mail
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    """What the receiver answers a POST with."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


#: ``handle(request, body)``: called for each POST, in the server's thread for it.
Handle = Callable[[BaseHTTPRequestHandler, bytes], Answer]


@contextlib.contextmanager
def receiving(handle: Handle) -> Iterator[str]:
    """Serve POSTs on 127.0.0.1 with ``handle``; yields the base URL (no trailing slash)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            answer = handle(self, self.rfile.read(int(self.headers["Content-Length"])))
            # A sender killed while its request was held has gone: its socket is closed.
            with contextlib.suppress(OSError):
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        def log_message(self, *args: Any) -> None:
            """Quiet: the test asserts on what arrived, not on a log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def eventually(check: Callable[[], T], seconds: float, every: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail after
    ``seconds`` (a bound on a hang, not a performance claim)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"{getattr(check, '__name__', 'check')} never came true")


class Inbox:
    """An aiosmtpd handler keeping every message with its recipients."""

    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Mail]] = []

    async def handle_DATA(  # noqa: N802 (aiosmtpd calls handlers by this name)
            self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        self.mails.append(([str(r) for r in envelope.rcpt_tos], message_from_bytes(content)))
        return "250 OK"


@contextlib.contextmanager
def smtp_inbox() -> Iterator[tuple[Inbox, str]]:
    """An SMTP server on 127.0.0.1; yields its inbox and the ``SITEWATCH_SMTP_URL`` to it."""
    inbox = Inbox()
    # The controller checks it is up by connecting to its configured port, so it needs a
    # real one rather than 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, f"smtp://127.0.0.1:{port}?from=sitewatch@example.cn"
    finally:
        controller.stop()
