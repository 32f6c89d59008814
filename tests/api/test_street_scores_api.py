"""``GET /api/v1/scores/streets`` and the workbook's 街道排名 sheet on a district of three
streets; bad phases, measures and unknown streets answer 4xx problem JSON."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from layers.db.settings import Settings
from layers.supervision.street_ranking import StreetScore
from tests.conftest import bearer

PHASE = {"phase": "attack", "year": "2026"}
STREETS = ["320571001", "320571002", "320571003"]


@pytest.fixture(scope="module")
def api(streets_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(Settings(database_url=streets_dsn, data_dir=tmp_path_factory.mktemp("d")))
    with TestClient(app, headers=bearer(streets_dsn, "viewer")) as client:
        yield client


def test_streets_are_ranked_for_a_phase(api: TestClient) -> None:
    response = api.get("/api/v1/scores/streets", params=PHASE)
    assert response.status_code == 200
    rows = [StreetScore(**r) for r in response.json()]
    assert sorted(r.code or "" for r in rows) == STREETS
    assert [r.points_lost for r in rows] == sorted((r.points_lost for r in rows), reverse=True)
    assert [r.rank for r in rows] == [r.points_lost_rank for r in rows]
    assert all(r.kind == "street" and r.name.endswith("街道") for r in rows)
    by_rework = api.get("/api/v1/scores/streets", params={**PHASE, "by": "rework_rate"}).json()
    assert [r["rework_rank"] for r in by_rework] == [r["rank"] for r in by_rework]


def test_one_street_alone(api: TestClient) -> None:
    everyone = {r["code"]: r for r in api.get("/api/v1/scores/streets", params=PHASE).json()}
    response = api.get("/api/v1/scores/streets", params={**PHASE, "street": "320571002"})
    assert response.json() == [everyone["320571002"]]


@pytest.mark.parametrize(("params", "status"), [
    ({"phase": "no_such_phase"}, 422),
    ({"phase": "attack", "year": "1900"}, 422),
    ({"phase": "attack", "since": "2026-05-01"}, 422),
    ({"since": "not a date"}, 422),
    ({"by": "popularity"}, 422),
    ({"street": "320571999"}, 404),
    ({"street": "x' OR 1=1 --"}, 422),
    ({"street": "9" * 41}, 422),
])
def test_bad_parameters_are_refused_as_problems(
    api: TestClient, params: dict[str, str], status: int
) -> None:
    response = api.get("/api/v1/scores/streets", params=params)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


def test_anonymous_callers_get_no_street_ranking(api: TestClient) -> None:
    response = api.get("/api/v1/scores/streets", headers={"Authorization": ""})
    assert response.status_code == 401


def test_the_workbook_has_a_street_ranking_sheet(api: TestClient) -> None:
    response = api.get("/api/v1/scores.xlsx", params=PHASE)
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    assert "街道排名" in book.sheetnames
    sheet = book["街道排名"]
    values = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    assert str(values[0][0]).startswith("街道排名 重点攻坚 2026-05-01 至 2026-06-30")
    header = next(i for i, row in enumerate(values) if row[0] == "排名")
    assert values[header][:6] == ("排名", "编码", "街道", "英文名称", "扣分", "扣分排名")
    rows = values[header + 2:]
    assert sorted(str(r[1]) for r in rows) == STREETS
    json_rows = {r["code"]: r for r in api.get("/api/v1/scores/streets", params=PHASE).json()}
    for row in rows:
        assert row[4] == pytest.approx(json_rows[str(row[1])]["points_lost"])
        assert row[5] == json_rows[str(row[1])]["points_lost_rank"]
