"""The map of an import's preview (``/maps/revisions/preview/{token}``): linked from the
preview's answer, drawn from what ``line_preview`` keeps for a day, behind the revisions'
roles; unknown, expired and malformed tokens are refused with a problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from layers import line_previews
from layers import preview as previews
from layers.io import import_preview
from tests import small_district
from tests.small_district import District

Headers = dict[str, str]
EVIL = '<img src=x onerror="window.pwned=1">'


def _post(client: TestClient, headers: Headers, path: Path) -> Any:
    with path.open("rb") as f:
        return client.post("/api/v1/imports", headers=headers,
                           data={"kind": "jurisdictions", "preview": "true"},
                           files={"file": ("新网格.geojson", f, "application/geo+json")})


def _evil_file(folder: Path) -> Path:
    """The redrawn file with a hostile name on the community that moves."""
    path = small_district.redrawn_file(folder)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["features"][0]["properties"]["name"] = EVIL
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_preview_links_its_map_which_draws_both_lines_and_the_moving_issues(
        client: TestClient, dsn: str, district: District, admin: Headers,
        bearer_for: Callable[..., Headers], tmp_path: Path) -> None:
    answered = _post(client, admin, _evil_file(tmp_path))
    assert answered.status_code == 200, answered.text
    link = answered.json()["map"]
    assert link.startswith("/maps/revisions/preview/")
    page = client.get(link, headers=bearer_for(dsn, "supervisor"))
    assert page.status_code == 200, page.text
    html = page.text
    assert "现行界线" in html and "导入文件界线" in html and "将变动的问题" in html
    for public_id in district.moving:
        assert public_id in html
    # From unit -> to unit, by name (folium writes the popups' text as JSON).
    assert json.dumps("湖东社区 → 湖西社区")[1:-1] in html
    # The file's hostile name is on the page, escaped (folium writes "&" as \u0026).
    assert "\\u0026lt;img src=x onerror" in html and "<img src=x" not in html
    english = client.get(f"{link}?lang=en", headers=admin).text
    assert "Lines in the file" in english and "Issues that would move" in english


def test_the_map_is_for_the_roles_that_read_revisions(
        client: TestClient, dsn: str, district: District, admin: Headers,
        anonymous: Headers, bearer_for: Callable[..., Headers], tmp_path: Path) -> None:
    link = _post(client, admin, small_district.redrawn_file(tmp_path)).json()["map"]
    assert client.get(link, headers=anonymous).status_code == 401
    for role in ("viewer", "inspector"):
        refused = client.get(link, headers=bearer_for(dsn, role))
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert client.get(link, headers=bearer_for(dsn, "unit", unit="E")).status_code == 403
    assert client.get(link, headers=admin).status_code == 200


@pytest.mark.parametrize("token", ["x", "a" * 42, "a" * 44, "a" * 40 + "%2F.."])
def test_a_malformed_token_is_a_422_problem(client: TestClient, admin: Headers,
                                            token: str) -> None:
    answer = client.get(f"/maps/revisions/preview/{token}", headers=admin)
    assert answer.status_code in (404, 422)
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_an_unknown_or_expired_token_is_a_404_and_expired_ones_are_purged(
        client: TestClient, dsn: str, district: District, admin: Headers,
        tmp_path: Path) -> None:
    unknown = client.get(f"/maps/revisions/preview/{'A' * 43}", headers=admin)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    path = small_district.redrawn_file(tmp_path)
    link = _post(client, admin, path).json()["map"]
    token = link.rsplit("/", 1)[1]
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE line_preview SET expires_at = now() - interval '1 second'"
                     " WHERE token = %s", [token])
    assert client.get(link, headers=admin).status_code == 404
    _post(client, admin, path)  # a new preview purges the expired one
    with psycopg.connect(dsn) as conn:
        kept = conn.execute("SELECT token FROM line_preview").fetchall()
    assert len(kept) == 1 and kept[0][0] != token


def test_the_map_is_bounded_and_the_counts_stay_complete(
        dsn: str, district: District, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> None:
    path = small_district.redrawn_file(tmp_path)
    monkeypatch.setattr(previews, "MAX_MOVES_DRAWN", 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        shown = import_preview.preview_import(conn, "jurisdictions", path)
        assert shown.drawing is not None and len(shown.drawing.moves) == 1
        assert shown.changed == 2 and shown.pairs[0].issues == 2
        kept = line_previews.load(conn, str(line_previews.save(
            conn, shown, source=path.name, actor="创建办")))
        assert (kept.changed, len(kept.drawing.moves)) == (2, 1)
        monkeypatch.setattr(line_previews, "MAX_KEPT", 2)
        newest = [line_previews.save(conn, shown, source=path.name, actor="创建办")
                  for _ in range(3)][1:]
        kept_now = conn.execute("SELECT token FROM line_preview ORDER BY created_at").fetchall()
        assert {t for (t,) in kept_now} == set(newest)  # the oldest made room
        monkeypatch.setattr(line_previews, "MAX_PAYLOAD_BYTES", 1000)
        assert line_previews.save(conn, shown, source=path.name, actor="创建办") is None
        count = conn.execute("SELECT count(*) FROM line_preview").fetchone()
    assert count == (2,)
