"""Hostile callers and hostile files against evidence photos (issue 13, findings 4-6).

- a unit reads another unit's photo references nowhere, cannot name one as its own evidence
  and so cannot download it;
- what is stored and served carries no EXIF (position, camera), the original only for admins;
- pixel bombs are refused from their header with a 422 (never a 500), and when every decoding
  slot is busy an upload is told to retry (503) instead of queueing without bound.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from layers.db.settings import Settings
from layers.issues import evidence

Headers = dict[str, str]
URL_PHOTO = "https://example.org/p/citizen.jpg"


def _upload(client: TestClient, headers: Headers, photo: bytes, name: str = "p.jpg"
            ) -> Any:
    return client.post("/api/v1/evidence", headers=headers,
                       files={"file": (name, photo, "image/jpeg")})


def _ref(client: TestClient, headers: Headers, photo: bytes) -> str:
    response = _upload(client, headers, photo)
    assert response.status_code == 201, response.text
    return str(response.json()["ref"])


def _camera_jpeg(lon: float, lat: float) -> bytes:
    """A JPEG as a phone writes it: GPS position, camera make and model."""
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "HUAWEI", "P60 Pro"
    exif[0x8825] = {1: "N", 2: (float(int(lat)), 0.0, (lat - int(lat)) * 3600),
                    3: "E", 4: (float(int(lon)), 0.0, (lon - int(lon)) * 3600)}
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 30)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def _grey_png(width: int, height: int) -> bytes:
    """A valid 8-bit greyscale PNG of that size, built row by row: a few hundred KB that
    decode to width x height bytes, without ever holding the pixels here."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then black pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def _nothing_stored(dsn: str, data_dir: Path) -> None:
    assert not (data_dir / "evidence").exists()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM evidence").fetchone() == (0,)


# -- 4. a unit steals another unit's photos -----------------------------------------------


@pytest.fixture
def two_units(demo_dsn: str) -> tuple[str, str, str, float, float]:
    """An assigned issue, its lead unit, a unit that is none of its units, and its lon/lat."""
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("""
            SELECT i.public_id, lu.code,
                   (SELECT u.code FROM unit u WHERE u.kind = 'territorial' AND u.id NOT IN (
                        coalesce(i.lead_unit_id, 0), coalesce(i.territorial_unit_id, 0),
                        coalesce(i.functional_unit_id, 0)) ORDER BY u.code LIMIT 1),
                   ST_X(i.geom), ST_Y(i.geom)
            FROM issue i JOIN unit lu ON lu.id = i.lead_unit_id
            WHERE i.status = 'assigned' ORDER BY i.id LIMIT 1""").fetchone()
    assert row is not None and row[2] is not None
    return row[0], row[1], row[2], row[3], row[4]


def _other_assigned_issue(dsn: str, unit: str) -> tuple[str, int]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("""
            SELECT i.public_id, i.version FROM issue i JOIN unit u ON u.id = i.lead_unit_id
            WHERE u.code = %s AND i.status = 'assigned' ORDER BY i.id LIMIT 1""",
                           [unit]).fetchone()
    assert row is not None, f"the demo has no assigned issue of {unit}"
    return row[0], row[1]


def test_a_unit_cannot_name_another_units_photo_as_evidence_nor_download_it(
        demo_client: TestClient, demo_dsn: str, bearer_for: Callable[..., Headers],
        two_units: tuple[str, str, str, float, float], jpeg: Callable[..., bytes]) -> None:
    public_id, owner, thief, lon, lat = two_units
    owner_headers = bearer_for(demo_dsn, "unit", owner)
    thief_headers = bearer_for(demo_dsn, "unit", thief)
    stolen = _ref(demo_client, owner_headers, jpeg(lon=lon, lat=lat))
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE issue SET photos = jsonb_build_array(%s::text)"
                     " WHERE public_id = %s", [stolen, public_id])
    # The reference is not shown to the other unit, in one issue or in a list ...
    one = demo_client.get(f"/api/v1/issues/{public_id}", headers=thief_headers)
    assert one.status_code == 200 and stolen not in one.text
    listed = demo_client.get("/api/v1/issues", params={"unit": owner, "limit": 1000},
                             headers=thief_headers)
    assert listed.status_code == 200 and stolen not in listed.text
    # ... and, known some other way, it is not accepted as the thief's own evidence.
    target, version = _other_assigned_issue(demo_dsn, thief)
    url = f"/api/v1/issues/{target}/transitions"
    body = {"action": "rectify", "version": version, "evidence": [stolen]}
    refused = demo_client.post(url, headers=thief_headers, json=body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "not a photo you" in refused.json()["detail"]
    # The same answer as for a photo nobody uploaded: no hint that it exists.
    unknown = demo_client.post(url, headers=thief_headers, json={
        **body, "evidence": ["sha256:" + "0" * 64]})
    assert unknown.status_code == 422 and unknown.json()["detail"].replace(
        "sha256:" + "0" * 64, stolen) == refused.json()["detail"]
    assert demo_client.get(f"/api/v1/evidence/{stolen}", headers=thief_headers
                           ).status_code == 403
    # Its own photo, uploaded under another token of the same unit, is accepted.
    own = _ref(demo_client, bearer_for(demo_dsn, "unit", thief),
               jpeg(lon=lon, lat=lat, colour=(10, 10, 200)))
    done = demo_client.post(url, headers=thief_headers, json={**body, "evidence": [own]})
    assert done.status_code == 200, done.text
    assert demo_client.get(f"/api/v1/evidence/{stolen}", headers=thief_headers
                           ).status_code == 403


def _tile(lon: float, lat: float, z: int = 16) -> str:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/tiles/issues/{z}/{x}/{y}.mvt"


def test_photos_of_an_issue_are_absent_through_every_interface_for_others(
        demo_client: TestClient, demo_dsn: str, bearer_for: Callable[..., Headers],
        anonymous: Headers, two_units: tuple[str, str, str, float, float],
        jpeg: Callable[..., bytes]) -> None:
    public_id, owner, other, lon, lat = two_units
    ref = _ref(demo_client, bearer_for(demo_dsn, "inspector"), jpeg(lon=lon, lat=lat))
    with psycopg.connect(demo_dsn) as conn:
        conn.execute("UPDATE issue SET photos = jsonb_build_array(%s::text, %s::text)"
                     " WHERE public_id = %s", [ref, URL_PHOTO, public_id])
    own = demo_client.get(f"/api/v1/issues/{public_id}",
                          headers=bearer_for(demo_dsn, "unit", owner))
    assert own.json()["properties"]["photos"] == [ref, URL_PHOTO]  # the test sees them
    secrets = (ref.removeprefix("sha256:"), URL_PHOTO)
    ogc_bbox = f"{lon - 1e-4},{lat - 1e-4},{lon + 1e-4},{lat + 1e-4}"
    for who in ("unit: other", "anonymous"):
        headers = bearer_for(demo_dsn, "unit", other) if who == "unit: other" else anonymous
        reads = {
            "ogc item": demo_client.get(f"/ogc/collections/issues/items/{public_id}",
                                        headers=headers),
            "ogc items": demo_client.get("/ogc/collections/issues/items",
                                         params={"bbox": ogc_bbox}, headers=headers),
            "open311 json": demo_client.get(f"/open311/v2/requests/{public_id}.json",
                                            headers=headers),
            "open311 xml": demo_client.get(f"/open311/v2/requests/{public_id}.xml",
                                           headers=headers),
            "open311 list": demo_client.get("/open311/v2/requests.json", params={
                "service_request_id": public_id}, headers=headers),
            "unit map": demo_client.get(f"/maps/units/{owner}", headers=headers),
            "overview map": demo_client.get("/maps/overview", headers=headers),
            "tile": demo_client.get(_tile(lon, lat), headers=headers),
        }
        if who == "unit: other":
            reads["rest issue"] = demo_client.get(f"/api/v1/issues/{public_id}",
                                                  headers=headers)
            reads["rest list"] = demo_client.get("/api/v1/issues", headers=headers, params={
                "bbox": ogc_bbox})
            assert reads["rest issue"].json()["properties"]["photos"] == []
        else:
            assert demo_client.get(f"/api/v1/issues/{public_id}",
                                   headers=headers).status_code == 401
        for name, response in reads.items():
            assert response.status_code == 200, (who, name, response.text[:200])
            if name != "overview map":  # counts by area, not single issues
                assert public_id.encode() in response.content, (who, name)  # it is there
            for secret in secrets:
                assert secret.encode() not in response.content, (who, name, secret)
        assert reads["open311 json"].json()[0]["media_url"] is None


# -- 5. photos are served with their EXIF -------------------------------------------------


def test_stored_and_served_photo_has_no_exif_but_its_position_is_kept(
        demo_client: TestClient, demo_dsn: str, tmp_path: Path,
        bearer_for: Callable[..., Headers]) -> None:
    inspector = bearer_for(demo_dsn, "inspector")
    photo = _camera_jpeg(120.7012, 31.3105)
    uploaded = _upload(demo_client, inspector, photo)
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["lon"] == pytest.approx(120.7012) and body["lat"] == pytest.approx(31.3105)
    for who in ("inspector", "admin"):
        served = demo_client.get(f"/api/v1/evidence/{body['ref']}",
                                 headers=bearer_for(demo_dsn, who))
        assert served.status_code == 200
        with Image.open(io.BytesIO(served.content)) as image:
            exif = image.getexif()
            assert image.size == (64, 48)
            assert exif.get(0x010F) is None and exif.get(0x0110) is None  # make, model
            assert dict(exif.get_ifd(0x8825)) == {}  # GPS
            assert dict(exif) == {}
        assert b"HUAWEI" not in served.content
    [stored] = (tmp_path / "evidence").rglob("*.jpg")
    assert b"HUAWEI" not in stored.read_bytes()
    with psycopg.connect(demo_dsn) as conn:
        row = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM evidence").fetchone()
    assert row is not None and row[0] == pytest.approx(120.7012)
    # Originals are not kept by default: not even an admin gets one.
    assert demo_client.get(f"/api/v1/evidence/{body['ref']}", params={"original": "true"},
                           headers=bearer_for(demo_dsn, "admin")).status_code == 404


@pytest.fixture
def keeping_client(demo_dsn: str, tmp_path: Path) -> Iterator[TestClient]:
    """The app with ``keep_original_photos`` on."""
    settings = Settings(database_url=demo_dsn, data_dir=tmp_path, keep_original_photos=True)
    with TestClient(create_app(settings)) as client:
        yield client


def test_the_original_is_kept_only_when_asked_and_read_by_admins_only(
        keeping_client: TestClient, demo_dsn: str, bearer_for: Callable[..., Headers]
        ) -> None:
    photo = _camera_jpeg(120.7012, 31.3105)
    ref = _ref(keeping_client, bearer_for(demo_dsn, "inspector"), photo)
    url = f"/api/v1/evidence/{ref}"
    for who in ("viewer", "inspector", "supervisor"):
        refused = keeping_client.get(url, params={"original": "true"},
                                     headers=bearer_for(demo_dsn, who))
        assert refused.status_code == 403, who
        assert b"HUAWEI" not in keeping_client.get(url, headers=bearer_for(demo_dsn, who)
                                                   ).content
    original = keeping_client.get(url, params={"original": "true"},
                                  headers=bearer_for(demo_dsn, "admin"))
    assert original.status_code == 200 and original.content == photo


# -- 6. decompression bombs -----------------------------------------------------------------


@pytest.mark.parametrize(("side", "pillow_warning"), [
    (9_400, "error"),  # as under pytest: Pillow's own warning is an exception
    (9_400, "ignore"),  # as in production: our check from the header refuses it
    (20_000, "error"),  # past Pillow's own hard limit (a 500 before)
])
def test_pixel_bombs_are_422_and_nothing_is_stored(
        client: TestClient, dsn: str, tmp_path: Path, bearer_for: Callable[..., Headers],
        side: int, pillow_warning: str) -> None:
    bomb = _grey_png(side, side)
    assert len(bomb) < 1_000_000
    with warnings.catch_warnings():
        if pillow_warning == "ignore":
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        response = _upload(client, bearer_for(dsn, "inspector"), bomb, "bomb.png")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "megapixels" in response.json()["detail"]
    _nothing_stored(dsn, tmp_path)


def test_a_full_resolution_50_megapixel_photo_is_accepted(
        client: TestClient, dsn: str, bearer_for: Callable[..., Headers]) -> None:
    assert evidence.MAX_PIXELS == Image.MAX_IMAGE_PIXELS == 8192 * 6144
    response = _upload(client, bearer_for(dsn, "inspector"), _grey_png(8192, 6144), "big.png")
    assert response.status_code == 201, response.text


@pytest.mark.slow
def test_busy_decoders_answer_503_with_retry_after_and_store_nothing(
        client: TestClient, dsn: str, tmp_path: Path, bearer_for: Callable[..., Headers],
        jpeg: Callable[..., bytes]) -> None:
    inspector = bearer_for(dsn, "inspector")
    held = 0
    try:
        while held < evidence.DECODE_SLOTS and evidence.decode_slots.acquire(blocking=False):
            held += 1
        assert held == evidence.DECODE_SLOTS
        busy = _upload(client, inspector, jpeg())
        assert busy.status_code == 503, busy.text
        assert busy.headers["content-type"] == "application/problem+json"
        assert int(busy.headers["Retry-After"]) > 0
        _nothing_stored(dsn, tmp_path)
    finally:
        for _ in range(held):
            evidence.decode_slots.release()
    assert _upload(client, inspector, jpeg()).status_code == 201


@pytest.mark.slow  # runs the command line in a child process
def test_photos_stored_before_cleaning_are_stripped_in_place(
        dsn: str, tmp_path: Path, sitewatch: Callable[..., Any]) -> None:
    # As the old code stored it: the upload itself under its sha256, EXIF and all.
    raw = _camera_jpeg(120.7, 31.3)
    digest = hashlib.sha256(raw).hexdigest()
    path = tmp_path / "evidence" / digest[:2] / f"{digest}.jpg"
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO evidence (sha256, media_type, size_bytes) VALUES"
                     " (%s, 'image/jpeg', %s)", [digest, len(raw)])

    def strip() -> str:
        run = sitewatch(["evidence", "strip"], dsn, tmp_path)
        assert run.returncode == 0, run.stderr
        return str(run.stdout)

    assert strip().startswith("1 photo(s) cleaned")
    with Image.open(path) as image:
        assert not image.getexif() and image.size == (64, 48)
    with psycopg.connect(dsn) as conn:
        size = conn.execute("SELECT size_bytes FROM evidence WHERE sha256 = %s",
                            [digest]).fetchone()
    assert size == (path.stat().st_size,)
    assert strip().startswith("0 photo(s) cleaned, 1 already")
