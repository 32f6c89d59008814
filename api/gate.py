"""The analysis gate: at most a few heavy analyses run at once in a server process.

Analyses are CPU-bound and hold the GIL for long stretches (h3 and shapely calls per cell),
and each holds a pooled connection while it runs. Unbounded, a handful of them starve
``/health`` and the report path (``POST /api/v1/issues``) of CPU, threads and connections,
and their memory adds up. So each one takes a slot first (``analysis_workers`` per process);
another waits at most ``analysis_wait`` seconds and only ``analysis_queue`` may wait at all.
The rest hear 503 with ``Retry-After`` at once. Only the computation takes a slot: answers
from a cache or a snapshot never wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from fastapi import Request

from layers.db.settings import Settings
from layers.errors import DomainError

T = TypeVar("T")


class Busy(DomainError, status=503, code="analysis-busy", title="Service busy"):
    """Every analysis slot is taken; the client may retry shortly (503, Retry-After)."""


class AnalysisGate:
    """A semaphore with a bounded wait and a bounded queue."""

    def __init__(self, workers: int, wait: float, queue: int) -> None:
        self._slots = threading.Semaphore(workers)
        self._wait = wait
        self._queue = queue
        self._lock = threading.Lock()
        self._waiting = 0

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for the block; :class:`Busy` when none frees up in time."""
        if not self._slots.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self._queue:
                    raise _busy()
                self._waiting += 1
            try:
                got = self._slots.acquire(timeout=self._wait)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not got:
                raise _busy()
        try:
            yield
        finally:
            self._slots.release()

    def run(self, compute: Callable[[], T]) -> T:
        """``compute()`` in a slot."""
        with self.slot():
            return compute()


def _busy() -> Busy:
    return Busy("分析任务繁忙，请稍后重试 / the server is busy with other analyses;"
                " retry in a few seconds")


def for_settings(settings: Settings) -> AnalysisGate:
    """A process's gate, sized by its settings (the app factory makes one per app)."""
    return AnalysisGate(settings.analysis_workers, settings.analysis_wait,
                        settings.analysis_queue)


def request_gate(request: Request) -> AnalysisGate:
    """The gate of the app serving ``request``."""
    found: AnalysisGate = request.app.state.analysis_gate
    return found
