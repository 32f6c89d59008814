"""Evidence photos: content checks, content addressing, EXIF read then stripped, distance shown
to verifiers, and only the caller's own uploads as transition evidence."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from PIL import Image

from layers.auth import tokens
from layers.db.settings import Settings
from layers.errors import PayloadTooLarge, ValidationFailed
from layers.issues import evidence, lifecycle

# The zone the EXIF times below are read in (the settings pass the district's).
ZONE = Settings().zone  # the district's zone: the settings name it


def test_jpeg_with_exif_is_stored_once_by_content(
        conn: psycopg.Connection[Any], tmp_path: Path, jpeg: Callable[..., bytes]) -> None:
    photo = jpeg(lon=120.70, lat=31.31, taken=datetime(2026, 5, 3, 9, 30))
    first = evidence.save(conn, tmp_path, photo, zone=ZONE)
    again = evidence.save(conn, tmp_path, photo, zone=ZONE)
    assert first == again
    assert first.ref == "sha256:" + hashlib.sha256(photo).hexdigest()
    assert first.media_type == "image/jpeg"
    assert first.lon is not None and abs(first.lon - 120.70) < 1e-5
    assert first.lat is not None and abs(first.lat - 31.31) < 1e-5
    assert first.taken_at is not None and first.taken_at.isoformat() == "2026-05-03T09:30:00+08:00"
    files = list((tmp_path / "evidence").rglob("*.jpg"))
    # Stored without the EXIF it was read from: the position lives in the database only.
    assert len(files) == 1 and files[0].stat().st_size == first.size_bytes
    with Image.open(files[0]) as stored:
        assert dict(stored.getexif()) == {} and stored.size == (64, 48)
    path, media_type = evidence.path_of(conn, tmp_path, first.ref)
    assert path == files[0] and media_type == "image/jpeg"


def test_png_without_exif(conn: psycopg.Connection[Any], tmp_path: Path, png: bytes) -> None:
    stored = evidence.save(conn, tmp_path, png, zone=ZONE)
    assert (stored.media_type, stored.lon, stored.taken_at) == ("image/png", None, None)


@pytest.mark.parametrize("kind", ["text", "truncated", "gif", "empty"])
def test_bad_files_are_refused_and_nothing_is_written(
        conn: psycopg.Connection[Any], tmp_path: Path, jpeg: Callable[..., bytes],
        kind: str) -> None:
    content = {"text": "这不是照片".encode(), "truncated": jpeg()[:200],
               "gif": b"GIF89a" + b"\x00" * 100, "empty": b""}[kind]
    with pytest.raises(ValidationFailed):
        evidence.save(conn, tmp_path, content, zone=ZONE)
    assert not (tmp_path / "evidence").exists()
    assert conn.execute("SELECT count(*) FROM evidence").fetchone() == (0,)


def test_oversized_photo_is_413(conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        evidence.save(conn, tmp_path, b"\xff\xd8\xff" + b"\x00" * evidence.MAX_BYTES, zone=ZONE)


def test_rectify_records_where_the_photo_was_taken(
        conn: psycopg.Connection[Any], tmp_path: Path, jpeg: Callable[..., bytes]) -> None:
    issue = conn.execute(
        "INSERT INTO issue (category_code, geom, description, source, status)"
        " VALUES ('CTY-05', ST_SetSRID(ST_MakePoint(120.70, 31.31), 4326), '暴露垃圾',"
        " 'self_inspection', 'assigned') RETURNING public_id").fetchone()
    assert issue is not None
    admin = tokens.authenticate(conn, tokens.create(conn, role="admin", name="a"))
    assert admin is not None
    with pytest.raises(ValidationFailed, match="upload the photo first"):
        lifecycle.apply(conn, issue[0], lifecycle.Transition(
            "rectify", 1, evidence=("sha256:" + "0" * 64,)), admin)
    near = evidence.save(conn, tmp_path, jpeg(lon=120.7001, lat=31.31), zone=ZONE,
                         uploader=evidence.Uploader(admin.token_id))
    lifecycle.apply(conn, issue[0], lifecycle.Transition("rectify", 1, evidence=(near.ref,)),
                    admin)
    data = conn.execute("SELECT data FROM issue_event WHERE action = 'rectify'").fetchone()
    assert data is not None
    [shown] = data[0]["evidence"]
    assert shown["ref"] == near.ref
    assert 8 < shown["distance_m"] < 11  # 0.0001 degrees of longitude at 31.31 N
