"""Loopback receivers for the tests of outbound messages (webhooks, group robots), and polling
until something the worker does has happened."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

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
