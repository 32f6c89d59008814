"""Honest rates in /api/v1/scores: each rate with its cases, Wilson interval and
empirical-Bayes rate; a ranking by a rate leaves the groups with too few cases unranked,
after the ranked ones (案卷过少，不排名)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from layers.db.settings import Settings
from layers.supervision.scores import Score, ranked
from tests.conftest import fold_tallies

# unit: (cases that reached rectification, of them sent back at least once)
UNITS = {"BIG": (40, 6), "HALF": (50, 20), "MID": (25, 12), "SMALL": (6, 3), "TINY": (2, 0)}


@pytest.fixture
def reworked(dsn: str) -> None:
    """Verified issues of May 2026 per unit, some of them reworked (UNITS)."""
    with psycopg.connect(dsn) as conn:
        for code, (cases, sent_back) in UNITS.items():
            conn.execute("INSERT INTO unit (code, name, kind) VALUES (%s, %s, 'territorial')",
                         [code, f"{code}社区"])
            conn.execute(
                "INSERT INTO issue (category_code, geom, description, source, status,"
                " reported_at, deadline, closed_at, rework_count, lead_unit_id)"
                " SELECT 'CTY-05', ST_SetSRID(ST_MakePoint(120.5, 31.5), 4326), 'x',"
                " 'supervision', 'verified', '2026-05-10 09:00+08', '2026-05-12 09:00+08',"
                " '2026-05-11 09:00+08', (n <= %s)::int, (SELECT id FROM unit WHERE code = %s)"
                " FROM generate_series(1, %s) n", [sent_back, code, cases])
    fold_tallies(dsn)


MAY = {"since": "2026-05-01", "until": "2026-05-31"}


def _client(dsn: str, tmp_path: Path, bearer_for: Callable[..., dict[str, str]],
            **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(database_url=dsn, data_dir=tmp_path, **settings)),
                      headers=bearer_for(dsn, "viewer"))


@pytest.fixture
def lenient(dsn: str, tmp_path: Path, bearer_for: Callable[..., dict[str, str]]
            ) -> Iterator[TestClient]:
    """The app with SITEWATCH_RANK_MIN_CASES=5."""
    with _client(dsn, tmp_path, bearer_for, rank_min_cases=5) as client:
        yield client


@pytest.mark.usefixtures("reworked")
def test_each_rate_comes_with_its_cases_interval_and_adjusted_rate(client: TestClient
                                                                   ) -> None:
    rows = {r["code"]: r for r in client.get("/api/v1/scores", params=MAY).json()}
    small = rows["SMALL"]
    assert (small["rework_cases"], small["rework_rate"]) == (6, 0.5)
    assert (small["rework_rate_low"], small["rework_rate_high"]) == (0.188, 0.812)
    assert (small["on_time_cases"], small["on_time_rate"]) == (6, 1.0)
    assert small["on_time_rate_low"] == 0.61  # Wilson, 6 of 6
    overall = 41 / 123
    for code, (cases, sent_back) in UNITS.items():
        raw, adjusted = sent_back / cases, rows[code]["rework_rate_adjusted"]
        assert min(raw, overall) - 1e-3 <= adjusted <= max(raw, overall) + 1e-3, code
    # the six-case unit is pulled further toward the overall rate than the 25-case one
    assert (abs(small["rework_rate_adjusted"] - small["rework_rate"])
            / abs(small["rework_rate"] - overall)) > (
        abs(rows["MID"]["rework_rate_adjusted"] - rows["MID"]["rework_rate"])
        / abs(rows["MID"]["rework_rate"] - overall))
    # the default ranking is by points, which ranks every group
    assert {r["rank"] is not None and not r["too_few_cases"] for r in rows.values()} == {True}


@pytest.mark.usefixtures("reworked")
@pytest.mark.parametrize("sort", ["rework_rate", "rework_rate_adjusted"])
def test_a_rate_ranks_only_groups_with_enough_cases_and_lists_the_rest_after(
        client: TestClient, sort: str) -> None:
    body = client.get("/api/v1/scores", params={**MAY, "sort": sort}).json()
    assert [(r["rank"], r["code"], r["too_few_cases"]) for r in body] == [
        (1, "MID", False), (2, "HALF", False), (3, "BIG", False), (None, "SMALL", True),
        (None, "TINY", True)]


@pytest.mark.usefixtures("reworked")
def test_the_minimum_is_a_setting(lenient: TestClient) -> None:
    body = lenient.get("/api/v1/scores", params={**MAY, "sort": "rework_rate"}).json()
    assert [(r["rank"], r["code"]) for r in body] == [
        (1, "SMALL"), (2, "MID"), (3, "HALF"), (4, "BIG"), (None, "TINY")]
    # adjusted, the six-case unit's 50 % no longer outranks the 25-case unit's 48 %
    adjusted = lenient.get("/api/v1/scores",
                           params={**MAY, "sort": "rework_rate_adjusted"}).json()
    assert [r["code"] for r in adjusted][:2] == ["MID", "SMALL"]


@pytest.mark.usefixtures("reworked")
def test_on_time_ties_share_a_rank_and_unknown_sorts_are_refused(
        client: TestClient) -> None:
    body = client.get("/api/v1/scores", params={**MAY, "sort": "on_time_rate"}).json()
    # all closed on time: one rank shared by the ranked ones
    assert [(r["rank"], r["code"]) for r in body] == [
        (1, "BIG"), (1, "HALF"), (1, "MID"), (None, "SMALL"), (None, "TINY")]
    assert client.get("/api/v1/scores", params={**MAY, "sort": "nope"}).status_code == 422


def _score(code: str, cases: int, rate: float | None, points: float = 0.0) -> Score:
    return Score(rank=None, code=code, name=code, kind="territorial", layer=None,
                 issues=cases, open=0, overdue_open=0, points_at_risk=0.0,
                 points_lost=points, reworks=0, rework_cases=cases, rework_rate=rate,
                 rework_rate_low=None, rework_rate_high=None, rework_rate_adjusted=rate,
                 on_time_cases=0, on_time_rate=None, on_time_rate_low=None,
                 on_time_rate_high=None, on_time_rate_adjusted=None,
                 avg_hours_to_rectify=None, too_few_cases=False)


def test_ranked_never_interleaves_the_unranked() -> None:
    rows = [_score("A", 3, 0.9, 5.0), _score("B", 30, 0.2, 1.0), _score("C", 20, 0.5),
            _score("D", 0, None), _score("E", 25, 0.5, 2.0)]
    by_rate = ranked(rows, "rework_rate", 20)
    assert [(s.rank, s.code, s.too_few_cases) for s in by_rate] == [
        (1, "C", False), (1, "E", False), (3, "B", False), (None, "A", True),
        (None, "D", True)]
    by_points = ranked(rows, "points", 20)
    assert [(s.rank, s.code) for s in by_points] == [
        (1, "A"), (2, "E"), (3, "B"), (4, "C"), (4, "D")]
    assert not any(s.too_few_cases for s in by_points)


def test_on_time_ranks_the_lowest_rate_first() -> None:
    rows = [replace(_score(c, 0, None), on_time_cases=30, on_time_rate=rate,
                    on_time_rate_adjusted=rate)
            for c, rate in (("A", 0.9), ("B", 0.6), ("C", 0.75))]
    assert [s.code for s in ranked(rows, "on_time_rate_adjusted", 20)] == ["B", "C", "A"]


@pytest.mark.usefixtures("reworked")
def test_the_workbook_marks_the_unranked(client: TestClient) -> None:
    response = client.get("/api/v1/scores.xlsx", params={**MAY, "sort": "rework_rate"})
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    fields = [c.value for c in sheet[6]]
    rows = [dict(zip(fields, (c.value for c in row), strict=True))
            for row in sheet.iter_rows(min_row=7)]
    assert [(r["rank"], r["code"], r["too_few_cases"]) for r in rows] == [
        (1, "MID", None), (2, "HALF", None), (3, "BIG", None),
        (None, "SMALL", "案卷过少，不排名 / too few cases"),
        (None, "TINY", "案卷过少，不排名 / too few cases")]
    assert rows[0]["rework_rate_adjusted"] == pytest.approx(0.438)
    assert sheet.cell(7, fields.index("rework_rate_low") + 1).number_format == "0.0%"
