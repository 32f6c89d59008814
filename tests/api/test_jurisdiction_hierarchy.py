"""One hierarchy rule on both write paths: a bad parent is refused by ``POST
/api/v1/jurisdictions`` and by a file import with the same message, and nothing is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pytest
import shapely
from fastapi.testclient import TestClient

from layers.catalog import hierarchy
from layers.errors import ValidationFailed
from layers.io import imports
from tests.api.test_catalog_api import add_street, make_token, post_jurisdiction, square


@pytest.mark.parametrize(("level", "parent", "mistake"), [
    ("grid", "S1", "a grid's parent must be a community"),
    ("community", None, "a community needs a parent street"),
    ("street", "S1", "a street has no parent"),
    ("community", "NOPE", "unknown parent 'NOPE'"),
])
def test_rest_and_import_refuse_a_bad_parent_with_the_same_message(
        client: TestClient, dsn: str, tmp_path: Path, level: str, parent: str | None,
        mistake: str) -> None:
    admin = make_token(dsn, "admin")
    add_street(client, admin)
    properties: dict[str, Any] = {"code": "X1", "name": "新辖区", "level": level}
    if parent is not None:
        properties["parent"] = parent

    rest = post_jurisdiction(client, admin, square(120.61, 31.31), **properties)
    assert rest.status_code == 422, rest.text
    said = rest.json()["detail"]
    assert mistake in said

    path = tmp_path / "bad.geojson"
    gpd.GeoDataFrame([properties | {"parent": parent}],
                     geometry=[shapely.box(120.61, 31.31, 120.62, 31.32)],
                     crs="EPSG:4326").to_file(path)
    with psycopg.connect(dsn) as conn, pytest.raises(ValidationFailed) as refused:
        imports.import_jurisdictions(conn, path, actor="t")
    assert isinstance(refused.value.details, list)
    assert {"row": 1, "field": "parent", "message": said} in refused.value.details

    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM jurisdiction WHERE code = 'X1'"
                            ).fetchone() == (0,)


def test_parent_problem_names_each_mistake() -> None:
    assert hierarchy.parent_problem("community", "S1", "street") is None
    assert hierarchy.parent_problem("grid", "C1", "community") is None
    assert "a street has no parent" in str(hierarchy.parent_problem("street", "S1", "street"))
    assert "level must be one of" in str(hierarchy.parent_problem("province", None, None))
