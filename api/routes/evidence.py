"""``/api/v1/evidence``: upload a photo (JPEG/PNG), fetch it back by its content address.

What is served is the copy stored without metadata; admins read the upload as sent with
``?original=true`` when the settings keep originals.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel

from api.auth import Caller, require_permission
from api.deps import Conn
from layers import retention
from layers.auth import access
from layers.auth.tokens import Principal
from layers.db.settings import Settings
from layers.issues import evidence

Uploader = Annotated[Principal, Depends(require_permission("upload_evidence"))]
router = APIRouter(prefix="/api/v1/evidence", tags=["evidence"])


class EvidenceOut(BaseModel):
    """A stored photo: its reference for transitions, and what its EXIF says."""

    ref: str
    media_type: str
    size_bytes: int
    taken_at: str | None
    lon: float | None
    lat: float | None


# A plain ``def``, like every handler that uses the database: FastAPI runs it in its thread
# pool. As ``async def`` the blocking psycopg calls and the image decoding ran on the event
# loop and stalled every other request of the process meanwhile.
@router.post("", status_code=201, response_model=EvidenceOut,
             responses={413: {"description": "over 10 MB (problem+json)"},
                        422: {"description": "not a readable JPEG/PNG, or over 50 megapixels "
                                             "(problem+json)"},
                        503: {"description": "every photo decoding slot is busy; retry after "
                                             "Retry-After seconds"}})
def upload(file: Annotated[UploadFile, File(description="JPEG or PNG, at most 10 MB")],
           conn: Conn, caller: Uploader, request: Request) -> EvidenceOut:
    """Store a photo (checked by content, re-encoded without its metadata; the same photo is
    stored once) and return its ``sha256:`` reference, to be given as ``evidence`` when
    rectifying: a transition takes only photos of the caller's token or unit."""
    content = file.file.read(evidence.MAX_BYTES + 1)
    settings: Settings = request.app.state.settings
    stored = evidence.save(conn, settings.data_dir, content, zone=settings.zone,
                           uploader=evidence.Uploader(caller.token_id, caller.unit_id),
                           keep_original=settings.keep_original_photos)
    return EvidenceOut(ref=stored.ref, media_type=stored.media_type,
                       size_bytes=stored.size_bytes,
                       taken_at=stored.taken_at.isoformat() if stored.taken_at else None,
                       lon=stored.lon, lat=stored.lat)


@router.get("/{ref}", response_class=FileResponse)
def download(ref: str, conn: Conn, caller: Caller, request: Request,
             original: Annotated[bool, Query(description="admin only: the upload as sent, "
                                                         "with its EXIF, if kept")] = False
             ) -> FileResponse:
    """The photo itself, without metadata (or, for an admin, the original)."""
    if original:
        access.require_original(caller)
    settings: Settings = request.app.state.settings
    path, media_type = evidence.path_of(conn, settings.data_dir, ref, original=original)
    access.require_evidence(conn, caller, ref)
    retention.refuse_archived(conn, ref)
    return FileResponse(path, media_type=media_type)
