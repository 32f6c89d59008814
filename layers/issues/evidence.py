"""Evidence photos: checked by content, stored without metadata, EXIF position and time read.

Files live under ``<data dir>/evidence/<first two hex digits>/<sha256>.<ext>``, named by the
sha256 of the bytes uploaded, so the same photo uploaded twice is stored once (and a client
can compute the reference of its file). Only JPEG and PNG are accepted, recognised by their
bytes (not by name or declared type), their size checked from the header before any pixel is
decoded, then decoded fully, so a truncated, disguised or oversized file is refused before
anything is written. What is stored and served is a re-encoded copy without EXIF, ICC, XMP or
comments: the position and time the EXIF gave are kept in the database, and nothing else of
the camera's (its make, the exact place) leaves through a download. The upload as sent is kept
only when the settings ask for it, under ``evidence/originals/``, for admins.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image, ImageOps, JpegImagePlugin, UnidentifiedImageError
from psycopg.rows import class_row

from layers.errors import DomainError, NotFound, PayloadTooLarge, ValidationFailed

MAX_BYTES = 10 * 2**20
# A 50-megapixel phone sensor's full-resolution photo (8192 x 6144), the largest a phone in use
# takes; most save 12 MP by default. Decoded, it is 150 MB (RGB) to 200 MB (RGBA); a 9,400 px
# square PNG of 336 KB would decode to 250 MB, and a 20,000 px one to 1.2 GB.
MAX_PIXELS = 8192 * 6144
# Pillow's own guard agrees with ours: it warns above MAX_PIXELS and refuses above twice that,
# whatever opens an image in this process.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# Decodes under way at once in this process, and how long an upload waits for one: with the
# cap above, at most about 2 x 400 MB (pixels plus the rotated copy) instead of one decode per
# request thread. Past the wait the client is told to retry (503) rather than queued forever.
DECODE_SLOTS = 2
DECODE_WAIT_S = 2.0
decode_slots = threading.BoundedSemaphore(DECODE_SLOTS)
_KINDS = {b"\xff\xd8\xff": ("image/jpeg", "jpg", "JPEG"),
          b"\x89PNG\r\n\x1a\n": ("image/png", "png", "PNG")}
_GPS_IFD = 0x8825
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003


class Busy(DomainError, status=503, code="busy", title="Service unavailable"):
    """Every photo decoding slot of this process is taken; the client retries shortly."""


@dataclass(frozen=True)
class Evidence:
    """A stored photo and what its EXIF says."""

    ref: str  # "sha256:<hex>" of the upload, what transitions and events refer to
    media_type: str
    size_bytes: int  # of the stored copy, the one a download returns
    taken_at: datetime | None
    lon: float | None
    lat: float | None


@dataclass(frozen=True)
class Uploader:
    """Who uploads: the token and its unit (None: the CLI or a test)."""

    token_id: int | None = None
    unit_id: int | None = None


def _kind(content: bytes) -> tuple[str, str, str]:
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
            # Local wall-clock time without a zone: save() reads it in the district's zone.
            taken_at = datetime.strptime(taken.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
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


_TOO_LARGE = (f"the photo has too many pixels (at most {MAX_PIXELS / 1e6:.0f} megapixels, "
              "8192 x 6144); send it at a lower resolution")


def _clean(content: bytes, driver: str
           ) -> tuple[bytes, datetime | None, float | None, float | None]:
    """The photo re-encoded upright without metadata, its EXIF time (naive, local) and
    position."""
    try:
        # Only the driver the magic bytes named; open() reads the header, not the pixels.
        with Image.open(io.BytesIO(content), formats=[driver]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ValidationFailed(_TOO_LARGE)
            taken_at, lon, lat = _exif(image)
            image.load()  # decodes every pixel: a truncated file fails here
            options: dict[str, Any] = {}
            if driver == "JPEG":
                # The camera's own quantisation tables and subsampling: re-encoding keeps the
                # quality it chose instead of imposing ours.
                options["qtables"] = getattr(image, "quantization", None)
                sampling = JpegImagePlugin.get_sampling(image)
                if sampling != -1:
                    options["subsampling"] = sampling
            elif "transparency" in image.info:
                options["transparency"] = image.info["transparency"]
            upright = ImageOps.exif_transpose(image)
            # Pillow carries some metadata from ``info`` into what it writes (PNG's ICC
            # profile, JPEG comments): the copy starts from none.
            upright.info = {}
            out = io.BytesIO()
            upright.save(out, driver, **options)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (a warning is an error where warnings are errors).
        raise ValidationFailed(_TOO_LARGE) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValidationFailed("the photo cannot be read (damaged or incomplete)") from exc
    return out.getvalue(), taken_at, lon, lat


def _decode(content: bytes, driver: str
            ) -> tuple[bytes, datetime | None, float | None, float | None]:
    if not decode_slots.acquire(timeout=DECODE_WAIT_S):
        raise Busy("too many photos are being processed right now; retry in a few seconds")
    try:
        return _clean(content, driver)
    finally:
        decode_slots.release()


def _write(path: Path, content: bytes, *, replace: bool = False) -> None:
    if path.exists() and not replace:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: a crash never leaves a half-written file under the final name.
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:
        tmp.write(content)
    os.replace(tmp.name, path)


def _file(root: Path, digest: str, ext: str, *, original: bool = False) -> Path:
    base = root / "evidence" / "originals" if original else root / "evidence"
    return base / digest[:2] / f"{digest}.{ext}"


def save(conn: psycopg.Connection[Any], root: Path, content: bytes, *, zone: tzinfo,
         uploader: Uploader | None = None, keep_original: bool = False) -> Evidence:
    """Check, clean, store and register a photo; return its reference and EXIF facts.

    Phones write the EXIF time as local wall-clock time without a zone: it is read as local
    time in ``zone``, the district's.

    Raises PayloadTooLarge, ValidationFailed (not a readable JPEG/PNG, or over MAX_PIXELS)
    or Busy (every decoding slot taken); nothing is written then.
    """
    if len(content) > MAX_BYTES:
        raise PayloadTooLarge(f"a photo may be at most {MAX_BYTES // 2**20} MB")
    media_type, ext, driver = _kind(content)
    clean, taken, lon, lat = _decode(content, driver)
    taken_at = None if taken is None else taken.replace(tzinfo=zone)
    digest = hashlib.sha256(content).hexdigest()
    _write(_file(root, digest, ext), clean)
    if keep_original:
        _write(_file(root, digest, ext, original=True), content)
    who = uploader or Uploader()
    conn.execute(
        "INSERT INTO evidence (sha256, media_type, size_bytes, taken_at, geom)"
        " VALUES (%s, %s, %s, %s, CASE WHEN %s::float8 IS NULL THEN NULL"
        " ELSE ST_SetSRID(ST_MakePoint(%s, %s), 4326) END)"
        " ON CONFLICT (sha256) DO NOTHING",
        [digest, media_type, len(clean), taken_at, lon, lon, lat])
    conn.execute(
        "INSERT INTO evidence_upload (sha256, token_id, unit_id) VALUES (%s, %s, %s)"
        " ON CONFLICT (sha256, token_id) DO NOTHING", [digest, who.token_id, who.unit_id])
    return Evidence(f"sha256:{digest}", media_type, len(clean), taken_at, lon, lat)


def _has_metadata(content: bytes, driver: str) -> bool:
    with Image.open(io.BytesIO(content), formats=[driver]) as image:
        return bool(image.getexif()) or any(
            key in image.info for key in ("exif", "icc_profile", "xmp", "comment",
                                          "XML:com.adobe.xmp"))


def strip_stored(conn: psycopg.Connection[Any], root: Path, *, keep_original: bool = False
                 ) -> tuple[int, int]:
    """Re-encode, in place and under the same reference, the stored photos that still carry
    metadata (uploaded before photos were cleaned on the way in); (cleaned, already clean).

    With ``keep_original`` each file as it was is kept first, for admins (as on upload).
    """
    rows = conn.execute("SELECT sha256, media_type FROM evidence ORDER BY sha256").fetchall()
    cleaned = already = 0
    for digest, media_type in rows:
        ext, driver = ("jpg", "JPEG") if media_type == "image/jpeg" else ("png", "PNG")
        path = _file(root, digest, ext)
        if not path.is_file():
            continue
        content = path.read_bytes()
        if not _has_metadata(content, driver):
            already += 1
            continue
        clean = _clean(content, driver)[0]
        if keep_original:
            _write(_file(root, digest, ext, original=True), content)
        _write(path, clean, replace=True)
        conn.execute("UPDATE evidence SET size_bytes = %s WHERE sha256 = %s",
                     [len(clean), digest])
        cleaned += 1
    return cleaned, already


def stored_file(root: Path, digest: str, media_type: str, *, original: bool = False) -> Path:
    """Where the photo ``digest`` (or, ``original``, its upload as sent) is kept on disk."""
    return _file(root, digest, "jpg" if media_type == "image/jpeg" else "png",
                 original=original)


def path_of(conn: psycopg.Connection[Any], root: Path, ref: str, *, original: bool = False
            ) -> tuple[Path, str]:
    """The stored file (or the upload as sent) and media type of ``ref``; NotFound if unknown
    or, for the original, not kept."""
    digest = ref.removeprefix("sha256:")
    row = conn.execute("SELECT media_type FROM evidence WHERE sha256 = %s", [digest]).fetchone()
    if row is None:
        raise NotFound(f"no evidence {ref!r}")
    path = _file(root, digest, "jpg" if row[0] == "image/jpeg" else "png", original=original)
    if original and not path.is_file():
        raise NotFound(f"the original of {ref!r} was not kept (setting keep_original_photos)")
    return path, str(row[0])


@dataclass(frozen=True)
class Placed:
    """A photo named as evidence: when it was taken and how far from the issue (EXIF)."""

    ref: str
    taken_at: datetime | None
    distance_m: float | None  # None: the photo has no position

    def as_json(self) -> dict[str, str | float | None]:
        """What the audit trail keeps of it (the event's ``data``)."""
        return {"ref": self.ref,
                "taken_at": self.taken_at.isoformat() if self.taken_at else None,
                "distance_m": self.distance_m}


def describe(conn: psycopg.Connection[Any], refs: list[str], issue_id: int) -> list[Placed]:
    """Each referenced photo with its time and its distance from the issue (for verifiers).

    ValidationFailed names any reference that was never uploaded.
    """
    digests = [r.removeprefix("sha256:") for r in refs]
    with conn.cursor(row_factory=class_row(Placed)) as cur:
        rows = cur.execute(
            "SELECT 'sha256:' || e.sha256 AS ref, e.taken_at,"
            " round(ST_Distance(e.geom::geography, i.geom::geography)::numeric, 1)::float8"
            "   AS distance_m"
            " FROM evidence e, issue i WHERE e.sha256 = ANY(%s) AND i.id = %s",
            [digests, issue_id]).fetchall()
    unknown = sorted(set(refs) - {r.ref for r in rows})
    if unknown:
        raise ValidationFailed(f"unknown evidence {', '.join(unknown)}: upload the photo first")
    return rows
