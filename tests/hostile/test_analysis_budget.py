"""Hostile analysis requests: every analysis estimates its cost first and refuses what would
not fit (422 naming the parameter), runs a few at a time (503 + Retry-After beyond), keeps
the server process within 1 GB of its idle memory, and anonymous periods cannot evict the
map pages' landing snapshots (issue 13, findings 3 and 9)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

import httpx
import httpx2
import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.gate import AnalysisGate
from api.services import map_pages
from api.services.hotspot_features import emerging_features
from geo.hotspots.budget import Limits
from layers import assignment
from layers.analysis import budget, hotspots
from layers.analysis.snapshots import Snapshots
from layers.db.settings import Settings
from layers.errors import ValidationFailed
from layers.supervision import accountability

PROBLEM = "application/problem+json"
GIB = 2**30


# Responses of the in-process TestClient (httpx2) and of real servers (httpx).
Response = httpx.Response | httpx2.Response


def _refused(response: Response, *parameters: str) -> None:
    """A 422 problem whose errors name each of ``parameters``."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "analysis-too-large"
    named = {e["location"][-1] for e in body["errors"]}
    assert set(parameters) <= named, body


@pytest.fixture
def city_client(demo_client: TestClient, demo_dsn: str) -> TestClient:
    """The demo behind a street of 1,600 km² (a city's worth of ground): its default grid is
    about 100,000 H3 cells, five times the ceiling; the demo's own 18 km² fit any grid the
    routes accept."""
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("INSERT INTO jurisdiction (code, name, level, geom) VALUES ('CITY', '全市',"
                     " 'street', ST_Multi(ST_MakeEnvelope(120.3, 31.0, 120.72, 31.36, 4326)))")
    return demo_client


@pytest.mark.parametrize(("path", "params", "named"), [
    ("/api/v1/hotspots", {"output": "cells"}, ("resolution",)),
    ("/api/v1/hotspots", {"method": "fishnet", "cell_m": 200}, ("cell_m",)),
    ("/api/v1/hotspots/emerging", {}, ("resolution",)),
])
def test_over_budget_grids_are_422_naming_the_parameter(
        city_client: TestClient, path: str, params: dict[str, Any],
        named: tuple[str, ...]) -> None:
    _refused(city_client.get(path, params=params), *named)
    assert city_client.get(path, params={"resolution": 8}).status_code == 200  # coarser fits


@pytest.mark.parametrize(("path", "params", "named"), [
    # Refused here; today's code computed them in a few hundred MB (a longer period or a
    # finer grid took gigabytes, too much to run against it on a shared machine).
    ("/api/v1/hotspots/emerging", {"step_days": 1, "resolution": 9,
                                   "period": "2025-11-20/2026-11-20"}, ("step_days", "period")),
    ("/api/v1/hotspots/emerging", {"time_window": 5, "ring": 5}, ("time_window", "ring")),
])
def test_over_budget_cubes_are_422_naming_the_parameter(
        demo_client: TestClient, path: str, params: dict[str, Any],
        named: tuple[str, ...]) -> None:
    _refused(demo_client.get(path, params=params), *named)
    assert demo_client.get(path).status_code == 200  # the defaults fit


@pytest.mark.parametrize("params", [{"resolution": 11}, {"method": "fishnet", "cell_m": 100}])
def test_grids_finer_than_the_tallies_are_refused_as_invalid(
        demo_client: TestClient, params: dict[str, Any]) -> None:
    refused = demo_client.get("/api/v1/hotspots", params=params)
    assert refused.status_code == 422
    assert {e["location"][-1] for e in refused.json()["errors"]} == set(params) - {"method"}


def test_the_refusal_says_how_large_and_what_to_lower(city_client: TestClient) -> None:
    text = city_client.get("/api/v1/hotspots").json()["detail"]
    assert "cells" in text and "lower resolution" in text, text
    detail = city_client.get("/api/v1/hotspots", params={"method": "fishnet", "cell_m": 200})
    assert detail.json().get("code") == "analysis-too-large"


@pytest.fixture
def few_rows_client(demo_dsn: str, tmp_path: Path,
                    bearer_for: Callable[..., dict[str, str]]) -> Iterator[TestClient]:
    """The demo district behind an app that may read at most 100 issues per analysis."""
    settings = Settings(database_url=demo_dsn, data_dir=tmp_path, analysis_max_rows=100)
    with TestClient(create_app(settings), headers=bearer_for(demo_dsn, "viewer")) as client:
        yield client


@pytest.mark.parametrize(("path", "params", "named"), [
    ("/api/v1/hotspots", {"method": "dbscan"}, "period"),
    ("/api/v1/scores.xlsx", {"since": "2026-05-01T00:00:00+08:00",
                             "until": "2026-11-21T00:00:00+08:00"}, "since"),
    ("/api/v1/scores/handovers", {"since": "2026-05-01T00:00:00+08:00",
                                  "until": "2026-11-21T00:00:00+08:00"}, "since"),
])
def test_more_issues_than_an_analysis_may_read_is_422_naming_the_period(
        few_rows_client: TestClient, path: str, params: dict[str, str], named: str) -> None:
    _refused(few_rows_client.get(path, params=params), named)
    narrow = {"period": "2026-11-19/2026-11-19"} if not path.startswith("/api/v1/scores") \
        else {"since": "2026-11-19T00:00:00+08:00", "until": "2026-11-19T06:00:00+08:00"}
    assert few_rows_client.get(path, params=narrow).status_code in (200, 422)
    if path in ("/api/v1/scores.xlsx", "/api/v1/scores/handovers"):
        assert few_rows_client.get(path, params=narrow).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/hotspots", "/api/v1/hotspots/emerging",
                                  "/api/v1/scores", "/api/v1/sites/chronic"])
def test_analyses_of_the_tallies_read_no_issues_so_any_number_fits(
        few_rows_client: TestClient, path: str) -> None:
    # The same app refuses DBSCAN over the same period (above): these count cells, not issues.
    assert few_rows_client.get(path).status_code == 200


def test_the_hotspot_page_shows_chronic_sites_for_a_period_past_the_budget(
        few_rows_client: TestClient) -> None:
    # The same app refuses DBSCAN over this period (above): chronic sites are counted from
    # the site tallies, so the page has them whatever the period holds.
    def layers(page: Response) -> set[str]:
        """The names of the page's layer switcher (its overlays)."""
        assert page.status_code == 200
        return {json.loads(f'"{name}"') for name in
                re.findall(r'"([^"]+)"\s*:\s*feature_group_', page.text)}

    wide = few_rows_client.get("/maps/hotspots", params={"since": "2026-05-01"})
    assert {"顽疾点位", "热点区域"} <= layers(wide)
    assert "时段内上报过多" not in wide.text


def test_a_busy_gate_answers_503_and_spares_health_and_reports(
        demo_dsn: str, tmp_path: Path, bearer_for: Callable[..., dict[str, str]],
        anonymous: dict[str, str]) -> None:
    settings = Settings(database_url=demo_dsn, data_dir=tmp_path, analysis_workers=1,
                        analysis_wait=0.0, analysis_queue=0)
    with TestClient(create_app(settings), headers=bearer_for(demo_dsn, "viewer")) as client:
        assert isinstance(client.app, FastAPI)
        held: AnalysisGate = client.app.state.analysis_gate
        with held.slot():  # another analysis is running
            busy = client.get("/api/v1/hotspots", params={"resolution": 9})
            assert busy.status_code == 503 and busy.headers["Retry-After"]
            assert busy.headers["content-type"].startswith(PROBLEM)
            page = client.get("/maps/overview", params={"since": "2026-06-01"},
                              headers=anonymous)
            assert page.status_code == 503
            assert client.get("/health").status_code == 200
            report = client.post("/api/v1/issues", headers=bearer_for(demo_dsn, "inspector"),
                                 json={"category": "MKT-01", "lon": 120.70, "lat": 31.31,
                                       "description": "gate test"})
            assert report.status_code == 201, report.text
        assert client.get("/api/v1/hotspots", params={"resolution": 9}).status_code == 200


def test_rest_results_are_bounded_ad_hoc_snapshots_beside_the_pages_defaults(
        demo_client: TestClient, demo_dsn: str) -> None:
    from layers.analysis import snapshots

    assert demo_client.get("/api/v1/sites/chronic").status_code == 200  # the page's default
    defaults = _keys(demo_dsn)
    assert defaults and not any(k.startswith(snapshots.ADHOC) for k in defaults)
    for n in range(snapshots.KEEP + 6):  # anyone may ask for any window
        asked = demo_client.get("/api/v1/sites/chronic", params={"window_days": 1 + n})
        assert asked.status_code == 200
    kept = _keys(demo_dsn)
    assert defaults <= kept
    assert len([k for k in kept if k.startswith(snapshots.ADHOC)]) == snapshots.KEEP


# --- snapshots: anonymous periods ---------------------------------------------------------


def _keys(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        return {k for (k,) in conn.execute("SELECT key FROM analysis_snapshot").fetchall()}


def test_anonymous_periods_do_not_evict_landing_snapshots(
        demo_client: TestClient, demo_dsn: str, anonymous: dict[str, str]) -> None:
    from api.services.map_pages import landing_specs
    from layers.analysis import snapshots
    from layers.analysis.snapshots import Refresher

    Refresher(snapshots.connector(demo_dsn), partial(landing_specs, zone=Settings().zone),
              interval=0).run_once()
    landing = _keys(demo_dsn)
    assert len(landing) >= 3
    for day in range(1, 72):  # 71 distinct periods inside the data's range
        since = f"2026-{5 + day // 29:02d}-{1 + day % 28:02d}"
        response = demo_client.get("/maps/overview", headers=anonymous,
                                   params={"since": since, "until": "2026-11-20"})
        assert response.status_code == 200
    kept = _keys(demo_dsn)
    assert landing <= kept
    assert len(kept - landing) <= snapshots.KEEP


def test_periods_outside_the_data_share_one_snapshot_and_bad_days_are_refused(
        demo_client: TestClient, demo_dsn: str, anonymous: dict[str, str]) -> None:
    def show(**params: str) -> httpx2.Response:
        return demo_client.get("/maps/overview", headers=anonymous, params=params)

    before = _keys(demo_dsn)
    for since, until in (("2001-01-01", "2001-12-31"), ("2099-01-01", "2099-12-31"),
                         ("2000-01-01", "2000-01-02"), ("2030-01-01", "2030-12-31")):
        page = show(since=since, until=until)
        assert page.status_code == 200, (since, until, page.text[:300])
    assert len(_keys(demo_dsn) - before) == 1  # the one empty period
    whole = _keys(demo_dsn)
    assert show(since="2000-01-01", until="2099-12-31").status_code == 200
    assert show(since="2026-04-01", until="2026-12-31").status_code == 200
    assert len(_keys(demo_dsn) - whole) == 1  # both clamp to the data's days
    for bad in ({"since": "2026-05-01T10:00"}, {"until": "yesterday"},
                {"since": "0001-01-01"}):
        refused = show(**bad)
        assert refused.status_code == 422 and refused.headers["content-type"].startswith(
            PROBLEM)


# --- the memory bound, on a real server process ------------------------------------------


def _rss(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (VmRSS)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@contextlib.contextmanager
def _server(serving: Callable[..., Any], dsn: str, folder: Path
            ) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """uvicorn on ``dsn`` as in production, with its process for measuring."""
    env = {"DATABASE_URL": dsn, "SITEWATCH_DATA_DIR": str(folder),
           "SITEWATCH_ANONYMOUS_RATE": "100000/minute"}
    with serving(["uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1"], env,
                 folder) as running:
        yield running


class _Watch:
    """Samples the server's RSS; kills it past ``ceiling`` so that a regression fails this
    test instead of taking the machine's memory."""

    def __init__(self, pid: int, ceiling: int) -> None:
        self.pid, self.ceiling, self.peak = pid, ceiling, _rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            with contextlib.suppress(FileNotFoundError, AssertionError):
                self.peak = max(self.peak, _rss(self.pid))
                if self.peak > self.ceiling:
                    os.kill(self.pid, 9)
                    return

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# The heaviest each route allows (or just refuses): every answer is 200, 422 or 503.
WORST: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/hotspots", {"resolution": 12, "ring": 5, "output": "cells"}),
    ("/api/v1/hotspots", {"resolution": 11, "ring": 5, "output": "cells"}),
    ("/api/v1/hotspots", {"resolution": 11, "ring": 5, "normalise": "site",
                          "confidence": 90}),
    ("/api/v1/hotspots", {"method": "fishnet", "cell_m": 33, "ring": 3, "output": "cells"}),
    ("/api/v1/hotspots", {"method": "fishnet", "cell_m": 40, "ring": 5, "output": "cells"}),
    ("/api/v1/hotspots", {"method": "dbscan", "eps_m": 500, "min_reports": 2}),
    ("/api/v1/hotspots/emerging", {"step_days": 1, "time_window": 5, "ring": 5,
                                   "period": "2000-01-01/2099-12-31", "resolution": 12}),
    ("/api/v1/hotspots/emerging", {"step_days": 1, "period": "2000-01-01/2099-12-31",
                                   "resolution": 7, "ring": 1}),
    ("/api/v1/hotspots/emerging", {"resolution": 10, "time_window": 5, "all_cells": True}),
    ("/api/v1/hotspots/emerging", {"resolution": 10, "ring": 1, "step_days": 2,
                                   "all_cells": True}),
    ("/api/v1/hotspots/emerging", {"resolution": 9, "step_days": 1, "time_window": 5}),
    ("/api/v1/hotspots/emerging", {"resolution": 11, "ring": 1, "step_days": 5}),
    ("/api/v1/sites/chronic", {"window_days": 365, "min_recurrences": 1}),
    ("/api/v1/scores", {"group": "site", "since": "2000-01-01T00:00:00+08:00",
                        "until": "2100-01-01T00:00:00+08:00"}),
    ("/maps/overview", {"since": "2000-01-01", "until": "2099-12-31"}),
    ("/maps/hotspots", {}),
    ("/tiles/issues/14/13684/6677.mvt", {"since": "2026-05-01"}),
]


def test_worst_requests_keep_the_server_within_a_gigabyte_of_idle(
        module_demo_dsn: str, tmp_path: Path, bearer_for: Callable[..., dict[str, str]],
        serving: Callable[..., Any]) -> None:
    with _server(serving, module_demo_dsn, tmp_path) as (base, proc):
        headers = bearer_for(module_demo_dsn, "admin")
        with httpx.Client(base_url=base, headers=headers, timeout=300) as http:
            assert http.get("/health").status_code == 200
            idle = _rss(proc.pid)
            with _Watch(proc.pid, idle + 3 * GIB // 2) as watch:
                answers = [http.get(path, params=params) for path, params in WORST]
                statuses = [a.status_code for a in answers]
                # And all at once: the gate turns the surplus away with 503.
                burst: list[int] = []

                def send(path: str, params: dict[str, Any]) -> None:
                    # Another period: not in the cache, so each one computes.
                    fresh = {**params, "period": "2026-05-02/2026-11-19"} \
                        if path.startswith("/api/v1/hotspots") else params
                    burst.append(http.get(path, params=fresh).status_code)

                threads = [threading.Thread(target=send, args=item) for item in WORST]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                health = http.get("/health").status_code
            grown = watch.peak - idle
        print(f"idle RSS {idle / 2**20:.0f} MB, peak {watch.peak / 2**20:.0f} MB,"
              f" statuses {statuses}, burst {sorted(burst)}")
        for answer in answers:
            if answer.status_code != 200:
                print(answer.status_code, answer.url, answer.text[:400])
    assert grown < GIB, f"grew {grown / 2**20:.0f} MB above idle"
    assert health == 200
    assert set(statuses) <= {200, 422} and 200 in statuses and 422 in statuses
    assert set(burst) <= {200, 422, 503}


def test_an_accountability_register_too_long_to_read_is_refused_before_reading(
        demo_dsn: str) -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    until = datetime(2027, 1, 1, tzinfo=UTC)
    with psycopg.connect(demo_dsn) as conn:
        units = [str(r[0]) for r in conn.execute("SELECT code FROM unit ORDER BY code")]
        sizes = {u: len(accountability.register(conn, u, since=since, until=until).entries)
                 for u in units}
        unit, size = max(sizes.items(), key=lambda item: item[1])
        assert size > 1
        with pytest.raises(ValidationFailed, match="narrow since/until") as refused:
            accountability.register(conn, unit, since=since, until=until,
                                    max_entries=size - 1)
        assert isinstance(refused.value.details, list)
        assert {d["field"] for d in refused.value.details} == {"since", "until"}


@pytest.mark.parametrize(("method", "resolution", "cell_m"),
                         [("h3", 10, 200.0), ("h3", 9, 200.0), ("fishnet", 10, 200.0)])
def test_the_grid_estimate_never_falls_short_of_the_grid(
        demo_dsn: str, method: Literal["h3", "fishnet"], resolution: int, cell_m: float
) -> None:
    with psycopg.connect(demo_dsn) as conn:
        assigner = assignment.load_assigner(conn)
    query = hotspots.HotspotQuery(method=method, resolution=resolution, cell_m=cell_m)
    estimated, _ = hotspots.check_grid(assigner, query, Limits(max_pairs=10**9))
    real = hotspots.study_grid(assigner, query).size
    # Close, too: a loose estimate refuses analyses that would fit.
    assert real <= estimated <= 1.3 * real


def test_a_second_street_far_away_does_not_inflate_the_estimate(
        demo_client: TestClient, demo_dsn: str) -> None:
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("INSERT INTO jurisdiction (code, name, level, geom) VALUES ('FAR', '飞地',"
                     " 'street', ST_Multi(ST_MakeEnvelope(121.8, 31.8, 121.81, 31.81, 4326)))")
    for path in ("/api/v1/hotspots", "/api/v1/hotspots/emerging"):
        assert demo_client.get(path).status_code == 200


def test_the_hotspot_page_shows_emerging_hotspots_in_coarser_steps_when_fine_ones_do_not_fit(
        demo_dsn: str) -> None:
    tight = Limits(max_cube=1_200_000)
    query = hotspots.HotspotQuery()
    with psycopg.connect(demo_dsn) as conn:
        assigner = assignment.load_assigner(conn)
        with pytest.raises(budget.OverBudget):
            hotspots.emerging(conn, assigner, query, step_days=10.0, limit=tight)
        coarser = next(days for days in map_pages.PAGE_STEP_DAYS if days > 10.0 and
                       _fits(conn, assigner, query, days, tight))
        expected = emerging_features(hotspots.emerging(conn, assigner, query,
                                                       step_days=coarser, limit=tight))
        shown = map_pages.page_emerging(conn, Snapshots(), query, limit=tight)
    assert expected and shown is not None
    assert shown.payload == [f.model_dump(mode="json") for f in expected]


def _fits(conn: psycopg.Connection[Any], assigner: Any, query: Any, days: float,
          limit: Limits) -> bool:
    try:
        hotspots.emerging(conn, assigner, query, step_days=days, limit=limit)
    except budget.OverBudget:
        return False
    return True
