"""``POST /api/v1/imports`` (GIS files and spreadsheets in) and ``GET /api/v1/exports/{layer}``.

An import is all or nothing: 201 with the report, or a 422 problem whose ``errors`` lists every
bad row (``{"row", "field", "message"}``). Jurisdictions, sites and responsibility rules need
an admin token; issues may also be imported by a supervisor. Exports are public for now.
With ``preview=true`` an import of jurisdictions, sites or responsibilities answers 200 with
what it would do (:class:`PreviewOut`) and stores nothing.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.types import Receive, Scope, Send

from api.auth import Caller
from api.deps import AppSettings, Conn
from layers import line_previews, revisions
from layers import preview as previews
from layers.auth import access
from layers.errors import PayloadTooLarge, ValidationFailed
from layers.io import exports, import_preview, imports
from layers.io.gisfile import SUFFIXES

router = APIRouter(prefix="/api/v1", tags=["imports"])
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
_CHUNK = 1024 * 1024
ImportKind = Literal["jurisdictions", "sites", "issues", "responsibilities"]
ExportFormat = Literal["geojson", "gpkg", "csv", "xlsx"]
# Guards the first use of an app's export slots (two requests may arrive together).


class Repair(BaseModel):
    """A geometry that make_valid repaired unambiguously."""

    row: int
    repair: str


class ImportReportOut(BaseModel):
    """What an import did (``layers.io.imports.ImportReport``)."""

    kind: ImportKind
    rows: int
    created: int
    updated: int
    repaired: list[Repair]
    reassigned: dict[str, int]
    issue_ids: list[str]


class PreviewOut(BaseModel):
    """What an import or edit of the lines would do; nothing was stored
    (``layers.preview.Preview``)."""

    table: str
    rows: previews.RowChanges
    examined: int
    changed: int
    lead_changed: int
    points_moved: float
    units: list[revisions.UnitBalance]
    pairs: list[revisions.Handover]
    quality: previews.Quality | None
    repaired: list[dict[str, Any]]
    #: The preview's map page (``/maps/revisions/preview/{token}``, kept 24 h); None for an
    #: edit's preview, or when the map would exceed ``line_previews.MAX_PAYLOAD_BYTES``.
    map: str | None = None


def preview_response(shown: previews.Preview, map_url: str | None = None) -> JSONResponse:
    """200 with the preview as JSON (the route's own response model is for the act)."""
    body = PreviewOut.model_validate(shown, from_attributes=True)
    body.map = map_url
    return JSONResponse(body.model_dump(mode="json"))


def preview_map_url(token: str | None) -> str | None:
    """The path of the map page kept under ``token`` (None: no map)."""
    return None if token is None else f"/maps/revisions/preview/{token}"


_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def _safe_name(filename: str | None) -> str:
    """The upload's own file name (shown back in messages), reduced to harmless characters."""
    name = re.sub(r"[^\w.\-]", "_", Path(filename or "").name)[-100:]
    return name if name and not name.startswith(".") else "upload"


def _save(upload: UploadFile, folder: Path) -> Path:
    name = _safe_name(upload.filename)
    if Path(name).suffix.lower() not in SUFFIXES:
        raise ValidationFailed(f"{name}: unsupported file type; use one of "
                               f"{', '.join(sorted(SUFFIXES))}")
    target = folder / name
    written = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(_CHUNK):
            written += len(chunk)
            if written > MAX_UPLOAD_BYTES:
                raise PayloadTooLarge(f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
            out.write(chunk)
    return target


@router.post("/imports", status_code=201, response_model=ImportReportOut,
             responses={200: {"model": PreviewOut, "description": "preview=true: what the "
                              "import would do; nothing stored"},
                        **{s: _PROBLEM for s in (401, 403, 413, 422)}})
def create_import(
    request: Request,
    conn: Conn,
    caller: Caller,
    settings: AppSettings,
    kind: Annotated[ImportKind, Form(description="What the file holds.")],
    file: Annotated[UploadFile, File(description="GeoJSON, GeoPackage, zipped Shapefile, "
                                                 "KML, CSV or XLSX; at most 50 MB.")],
    crs: Annotated[str | None, Form(description="The file's CRS when it has none: wgs84 "
                                                "(default for sheets), cgcs2000, gcj02, "
                                                "EPSG:xxxx.")] = None,
    layer: Annotated[str | None, Form(description="Site layer for kind=sites.")] = None,
    preview: Annotated[bool, Form(description="Only show what the import would do (200); "
                                              "store nothing. Not for kind=issues.")] = False,
) -> ImportReportOut | JSONResponse:
    """Import a file all or nothing; 422 lists every bad row and nothing is stored."""
    access.require(caller, "import_issues" if kind == "issues" else "import_layers")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_UPLOAD_BYTES + _CHUNK:
        raise PayloadTooLarge(f"the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
    actor = caller.actor
    with tempfile.TemporaryDirectory(prefix="sw-import-") as folder:
        path = _save(file, Path(folder))
        if preview:
            shown = import_preview.preview_import(conn, kind, path, crs=crs, layer=layer)
            token = line_previews.save(conn, shown, source=_safe_name(file.filename),
                                       actor=actor)
            return preview_response(shown, preview_map_url(token))
        report: Any
        if kind == "jurisdictions":
            report = imports.import_jurisdictions(conn, path, crs=crs, actor=actor)
        elif kind == "sites":
            report = imports.import_sites(conn, path, layer=layer, crs=crs, actor=actor)
        elif kind == "issues":
            report = imports.import_issues(conn, path, zone=settings.zone, crs=crs,
                                           actor=actor, actor_role=caller.role)
        else:
            report = imports.import_responsibilities(conn, path, actor=actor)
    return ImportReportOut.model_validate(report, from_attributes=True)


class _ExportFile(Response):
    """Formats an export when sent, then sends the file.

    Sending happens after the handler returned, so the request's pooled connection (function
    scoped, see api.deps.Conn) is back in the pool while the rows are formatted: a long export
    holds a connection only while COPY reads. Formatting runs in a worker thread; a failure
    there is raised before anything is sent and still becomes a problem+json. The export slot
    is given back once the file is formatted, and the file deleted once it is sent.
    """

    def __init__(self, found: exports.Extract, fmt: str, folder: str,
                 slots: threading.BoundedSemaphore) -> None:
        self.found, self.fmt, self.folder, self.slots = found, fmt, folder, slots
        self.background = None
        self.status_code = 200

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = Path(self.folder) / f"{self.found.layer}.{self.fmt}"
        try:
            await anyio.to_thread.run_sync(exports.write, self.found, path, self.fmt)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        finally:
            self.slots.release()
        response = FileResponse(path, media_type=exports.MEDIA_TYPES[self.fmt],
                                filename=path.name,
                                background=BackgroundTask(shutil.rmtree, self.folder,
                                                          ignore_errors=True))
        await response(scope, receive, send)


@router.get("/exports/{layer}", response_class=FileResponse,
            responses={200: {"content": {t: {} for t in exports.MEDIA_TYPES.values()},
                             "description": "The layer as a file download."},
                       404: _PROBLEM, 422: _PROBLEM, 503: _PROBLEM})
def export_layer(
    request: Request,
    conn: Conn,
    layer: Annotated[str, PathParam(pattern=r"^[a-z][a-z0-9_]{1,39}$",
                                    description="jurisdictions, a site layer or issues")],
    fmt: Annotated[ExportFormat, Query(alias="format")] = "geojson",
) -> Response:
    """Download a layer as GeoJSON, GeoPackage, CSV or XLSX (EPSG:4326).

    At most ``export_concurrency`` exports run at once per server process; another hears 503
    with Retry-After at once. XLSX holds at most one sheet's rows (1,048,574): larger layers
    are refused with a 422 that points to CSV, GeoJSON or GeoPackage.
    """
    slots: threading.BoundedSemaphore = request.app.state.export_slots
    if not slots.acquire(blocking=False):
        raise exports.ExportsBusy("导出任务繁忙，请稍后重试 / the server is busy with other "
                                  "exports; retry in a few seconds")
    folder = tempfile.mkdtemp(prefix="sw-export-")
    try:
        found = exports.extract(conn, layer, Path(folder), fmt=fmt)
    except BaseException:
        slots.release()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _ExportFile(found, fmt, folder, slots)
