"""Evidence photos: checked by content, stored content-addressed, EXIF position and time read.

Files live under ``<data dir>/evidence/<first two hex digits>/<sha256>.<ext>``; the same
photo uploaded twice is stored once. Only JPEG and PNG are accepted, recognised by their
bytes (not by name or declared type) and decoded fully, so a truncated or disguised file is
refused before anything is written.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from PIL import Image, UnidentifiedImageError
from psycopg.rows import dict_row

from layers.errors import NotFound, PayloadTooLarge, ValidationFailed

MAX_BYTES = 10 * 2**20
_KINDS = {b"\xff\xd8\xff": ("image/jpeg", "jpg"), b"\x89PNG\r\n\x1a\n": ("image/png", "png")}
_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
# Phones write EXIF times as local wall-clock time without a zone; in this district that is
# Beijing time.
_LOCAL = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Evidence:
    """A stored photo and what its EXIF says."""

    ref: str  # "sha256:<hex>", what transitions and events refer to
    media_type: str
    size_bytes: int
    taken_at: datetime | None
    lon: float | None
    lat: float | None


def _kind(content: bytes) -> tuple[str, str]:
    for magic, kind in _KINDS.items():
        if content.startswith(magic):
            return kind
    raise ValidationFailed("evidence must be a JPEG or PNG photo")


def _exif(image: Image.Image) -> tuple[datetime | None, float | None, float | None]:
    exif = image.getexif()
    taken = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL)
    taken_at = None
    if isinstance(taken, str):
        try:
            taken_at = datetime.strptime(taken.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(
                tzinfo=_LOCAL)
        except ValueError:
            taken_at = None
    gps = exif.get_ifd(_GPS_IFD)
    try:
        lat = _degrees(gps[2], gps[1])
        lon = _degrees(gps[4], gps[3])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return taken_at, None, None
    return taken_at, lon, lat


def _degrees(dms: Any, ref: str) -> float:
    degrees, minutes, seconds = (float(v) for v in dms)
    value = degrees + minutes / 60 + seconds / 3600
    return -value if ref in ("S", "W") else value


def save(conn: psycopg.Connection[Any], root: Path, content: bytes, *,
         token_id: int | None) -> Evidence:
    """Check, store and register a photo; return its reference and EXIF facts."""
    if len(content) > MAX_BYTES:
        raise PayloadTooLarge(f"a photo may be at most {MAX_BYTES // 2**20} MB")
    media_type, ext = _kind(content)
    try:
        with Image.open(io.BytesIO(content)) as image:
            taken_at, lon, lat = _exif(image)
            image.load()  # decodes every pixel: a truncated file fails here
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValidationFailed("the photo cannot be read (damaged or incomplete)") from exc
    digest = hashlib.sha256(content).hexdigest()
    path = root / "evidence" / digest[:2] / f"{digest}.{ext}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a crash never leaves a half-written file under the final name.
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
            tmp.write(content)
        os.replace(tmp.name, path)
    conn.execute(
        "INSERT INTO evidence (sha256, media_type, size_bytes, taken_at, geom, uploaded_by)"
        " VALUES (%s, %s, %s, %s, CASE WHEN %s::float8 IS NULL THEN NULL"
        " ELSE ST_SetSRID(ST_MakePoint(%s, %s), 4326) END, %s)"
        " ON CONFLICT (sha256) DO NOTHING",
        [digest, media_type, len(content), taken_at, lon, lon, lat, token_id])
    return Evidence(f"sha256:{digest}", media_type, len(content), taken_at, lon, lat)


def path_of(conn: psycopg.Connection[Any], root: Path, ref: str) -> tuple[Path, str]:
    """The stored file and media type of ``ref``; NotFound if unknown."""
    digest = ref.removeprefix("sha256:")
    row = conn.execute("SELECT media_type FROM evidence WHERE sha256 = %s", [digest]).fetchone()
    if row is None:
        raise NotFound(f"no evidence {ref!r}")
    ext = "jpg" if row[0] == "image/jpeg" else "png"
    return root / "evidence" / digest[:2] / f"{digest}.{ext}", str(row[0])


def describe(conn: psycopg.Connection[Any], refs: list[str], issue_id: int
             ) -> list[dict[str, Any]]:
    """Each referenced photo with its time and its distance from the issue (for verifiers).

    ValidationFailed names any reference that was never uploaded.
    """
    digests = [r.removeprefix("sha256:") for r in refs]
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT 'sha256:' || e.sha256 AS ref, e.taken_at,"
            " round(ST_Distance(e.geom::geography, i.geom::geography)::numeric, 1)::float8"
            "   AS distance_m"
            " FROM evidence e, issue i WHERE e.sha256 = ANY(%s) AND i.id = %s",
            [digests, issue_id]).fetchall()
    unknown = sorted(set(refs) - {r["ref"] for r in rows})
    if unknown:
        raise ValidationFailed(f"unknown evidence {', '.join(unknown)}: upload the photo first")
    return [{**r, "taken_at": r["taken_at"].isoformat() if r["taken_at"] else None}
            for r in rows]
