"""HTTP load generators on loopback, with throughput and latency percentiles: closed loop
(:func:`run`: N asyncio clients, each sending its next request as soon as the previous one is
answered) and open loop (:func:`open_loop`: requests at a fixed rate, as phones send them).

Separate from the scenarios so the ingest and read benchmarks measure the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.harness import percentile

# (method, path, json body or None) for client ``c``'s ``n``-th request.
Request = Callable[[int, int], tuple[str, str, Any]]


@dataclass
class Stats:
    """What one run measured (requests answered within the measuring window)."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0

    def __add__(self, other: Stats) -> Stats:
        """Two runs as one (their windows and answers together)."""
        return Stats(self.seconds + other.seconds, self.latencies + other.latencies,
                     self.statuses + other.statuses,
                     self.transport_errors + other.transport_errors)

    @property
    def ok(self) -> int:
        """Requests answered 2xx."""
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return self.ok / self.seconds

    def ms(self, q: float) -> float:
        """The q-th latency percentile in milliseconds."""
        return percentile(self.latencies, q) * 1000 if self.latencies else float("nan")

    def failures(self) -> str:
        """Non-2xx statuses and transport errors, or an empty string."""
        bad = {s: n for s, n in self.statuses.items() if not 200 <= s < 300}
        parts = [f"{n}x {s}" for s, n in sorted(bad.items())]
        if self.transport_errors:
            parts.append(f"{self.transport_errors} transport errors")
        return ", ".join(parts)


async def _run(base: str, request: Request, headers: list[dict[str, str]], warmup: float,
               seconds: float) -> Stats:
    clients = len(headers)
    stats = Stats(seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def client(c: int, http: httpx.AsyncClient) -> None:
        n = 0
        while (now := time.perf_counter()) < stop_at:
            method, path, body = request(c, n)
            n += 1
            try:
                response = await http.request(method, path, json=body, headers=headers[c])
                status = response.status_code
            except httpx.TransportError:
                status = 0
            done = time.perf_counter()
            if now >= measure_from and done <= stop_at:
                if status:
                    stats.statuses[status] += 1
                    stats.latencies.append(done - now)
                else:
                    stats.transport_errors += 1

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        await asyncio.gather(*(client(c, http) for c in range(clients)))
    return stats


def run(base: str, request: Request, headers: list[dict[str, str]], *, warmup: float = 3.0,
        seconds: float = 20.0) -> Stats:
    """Drive ``len(headers)`` concurrent clients (client c sends ``headers[c]``)."""
    return asyncio.run(_run(base, request, headers, warmup, seconds))


async def _open_loop(base: str, request: Request, headers: list[dict[str, str]], rate: float,
                     warmup: float, seconds: float) -> Stats:
    stats = Stats(seconds)
    # As many connections as requests may be in flight: an arrival never waits for a free
    # connection, which would hide the server's queue inside the client.
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
    total = int(rate * (warmup + seconds))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        start = time.perf_counter()
        measure_from = start + warmup

        async def one(n: int, due: float) -> None:
            method, path, body = request(n % len(headers), n)
            try:
                response = await http.request(method, path, json=body,
                                              headers=headers[n % len(headers)])
                status = response.status_code
            except httpx.TransportError:
                status = 0
            if due < measure_from:
                return
            if status:
                stats.statuses[status] += 1
                # From when the request was due, not when it went out: a late send is the
                # server's delay too (no coordinated omission).
                stats.latencies.append(time.perf_counter() - due)
            else:
                stats.transport_errors += 1

        tasks = []
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, due)))
        await asyncio.gather(*tasks)
    return stats


def open_loop(base: str, request: Request, headers: list[dict[str, str]], *, rate: float,
              warmup: float = 3.0, seconds: float = 20.0) -> Stats:
    """Send requests at a fixed ``rate`` per second whatever the answers (open loop: arrivals
    as phones make them, not as answers free a client), cycling through ``headers``;
    latency counts from each request's due time."""
    return asyncio.run(_open_loop(base, request, headers, rate, warmup, seconds))
