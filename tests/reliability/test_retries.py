"""A phone that gives up waiting and sends the same report again, with the same
Idempotency-Key, ends up with exactly one issue per key, whatever the server was doing."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx

CLIENTS = 8
REPORTS_EACH = 12


async def _report_until_acknowledged(http: httpx.AsyncClient, body: dict[str, Any],
                                     headers: dict[str, str]) -> tuple[str, int]:
    """Send until 201; the first attempts time out long before the server is done."""
    timeout, timeouts = 0.01, 0
    while True:
        try:
            response = await http.post("/api/v1/issues", json=body, headers=headers,
                                       timeout=timeout)
        except httpx.TimeoutException:
            timeouts += 1
            timeout = min(timeout * 3, 10.0)
            continue
        assert response.status_code == 201, response.text
        return str(response.json()["id"]), timeouts


def test_retrying_with_the_same_idempotency_key_after_timeouts_creates_one_issue_per_key(
        demo_dsn: str, make_server: Callable[..., Any], bearer: Callable[..., Any],
        report_points: Callable[..., Any], stored: Callable[..., Any],
        assert_complete: Callable[..., Any]) -> None:
    server = make_server(demo_dsn)
    server.start()
    points = report_points(demo_dsn)
    phones = [bearer(demo_dsn, "inspector", f"phone {c}") for c in range(CLIENTS)]

    async def phone(c: int, http: httpx.AsyncClient) -> list[tuple[str, str, int]]:
        rng = random.Random(c)
        done = []
        for n in range(REPORTS_EACH):
            key = f"retry-{c}-{n}"
            category, lon, lat = points[rng.randrange(len(points))]
            body = {"category": category, "lon": lon, "lat": lat, "description": key}
            public_id, timeouts = await _report_until_acknowledged(
                http, body, {**phones[c], "Idempotency-Key": key})
            done.append((key, public_id, timeouts))
        return done

    async def main() -> list[tuple[str, str, int]]:
        async with httpx.AsyncClient(base_url=server.base) as http:
            results = await asyncio.gather(*(phone(c, http) for c in range(CLIENTS)))
        return [r for phone_results in results for r in phone_results]

    acknowledged = asyncio.run(main())
    assert sum(t for _, _, t in acknowledged) > CLIENTS, "hardly any attempt timed out"
    issues = stored(demo_dsn, "retry")
    assert {k: v["id"] for k, v in issues.items()} == {k: i for k, i, _ in acknowledged}
    for issue in issues.values():
        assert_complete(issue)
