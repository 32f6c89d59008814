"""Schemathesis over the whole OpenAPI of the running server, with and without tokens.

Every operation gets generated requests (valid and invalid) as an anonymous caller, a unit
and an admin; the run fails on any 5xx and on any response that does not match the schema
the route documents for its status code.
"""

from __future__ import annotations

import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance

from layers import tokens

CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def callers(module_server: tuple[str, str]) -> dict[str, dict[str, str]]:
    _, dsn = module_server
    with psycopg.connect(dsn) as conn:
        unit = conn.execute("SELECT code FROM unit WHERE kind = 'territorial'"
                            " ORDER BY code LIMIT 1").fetchone()
        assert unit is not None
        admin = tokens.create(conn, role="admin", name="schemathesis admin")
        own = tokens.create(conn, role="unit", unit_code=unit[0], name="schemathesis unit")
    return {"anonymous": {}, "unit": {"Authorization": f"Bearer {own}"},
            "admin": {"Authorization": f"Bearer {admin}"}}


def test_no_server_error_and_responses_match_the_schema(
        module_server: tuple[str, str], callers: dict[str, dict[str, str]]) -> None:
    # Hypothesis drives each operation here rather than through schemathesis' pytest plugin,
    # which does not run on pytest 9 ('Function' object has no attribute '_nodeid').
    base, _ = module_server
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                              operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)))
        @settings(max_examples=10, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            for headers in callers.values():
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=120)

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # report every operation's failures
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert operations > 60
    assert failures == [], "\n\n".join(failures)
