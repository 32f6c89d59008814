"""Schemathesis over the whole OpenAPI of the running server, as every kind of caller.

Every operation gets generated requests (valid and invalid) as an anonymous caller, a viewer,
a unit, an inspector, a supervisor and an admin; the run fails on any 5xx, on any response
that does not match the schema the route documents for its status code, and if the server
process's peak memory grew more than ``MEMORY_BOUND`` over its idle size or it stopped
answering: no request may take the server down (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok

from layers.auth import tokens

CHECKS = [not_a_server_error, response_schema_conformance]
# The stated bound: no request grows the server more than this above its idle size.
MEMORY_BOUND = 1024 * 1024 * 1024


def _memory(pid: int, field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for process {pid}")


@pytest.fixture(scope="module")
def callers(module_server: tuple[str, str]) -> dict[str, dict[str, str]]:
    _, dsn = module_server
    with psycopg.connect(dsn) as conn:
        unit = conn.execute("SELECT code FROM unit WHERE kind = 'territorial'"
                            " ORDER BY code LIMIT 1").fetchone()
        assert unit is not None
        made = {role: tokens.create(conn, role=role, name=f"schemathesis {role}",
                                    unit_code=unit[0] if role == "unit" else None)
                for role in ("viewer", "unit", "inspector", "supervisor", "admin")}
    return {"anonymous": {}, **{role: {"Authorization": f"Bearer {token}"}
                                for role, token in made.items()}}


def test_no_server_error_and_responses_match_the_schema(
        module_server: tuple[str, str], callers: dict[str, dict[str, str]],
        server_pid: Callable[[str], int]) -> None:
    # Hypothesis drives each operation here rather than through schemathesis' pytest plugin,
    # which does not run on pytest 9 ('Function' object has no attribute '_nodeid').
    base, _ = module_server
    pid = server_pid(base)
    idle = _memory(pid, "VmRSS")
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        operations += 1

        @given(case=st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                              operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)))
        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case[Any]) -> None:
            for headers in callers.values():
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=120)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's failures
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations > 60
    assert failures == [], "\n\n".join(failures)
    assert httpx.get(f"{base}/health", timeout=10).status_code == 200
    peak = _memory(pid, "VmHWM")
    print(f"server RSS: idle {idle >> 20} MiB, peak {peak >> 20} MiB")  # for the record
    assert peak - idle < MEMORY_BOUND, f"idle {idle >> 20} MiB, peak {peak >> 20} MiB"
