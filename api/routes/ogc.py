"""``/ogc/``: OGC API - Features - Part 1: Core, with GeoJSON, over our layers.

Why our own and not tipg or pygeoapi: both bring their own database access and configuration
(tipg introspects tables through asyncpg; pygeoapi is configured by a YAML file per resource)
and neither knows our tokens, our per-role fields or our collection-per-site-layer model. What
the standard asks of a server is small: the routes below, the links between them, paging and
the ``bbox``/``datetime`` filters. GDAL's OAPIF driver and OWSLib read it in the tests.

Collections: ``jurisdictions``, one per site layer (``market``, ...), ``issues``. Items are
GeoJSON in CRS84 (lon, lat). Without a token, issues show public fields only.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import URL

from api.auth import MaybeCaller
from api.deps import Conn
from api.schemas.catalog import parse_bbox
from layers.auth import access
from layers.auth.tokens import Principal
from layers.errors import ValidationFailed
from layers.views import features

router = APIRouter(prefix="/ogc", tags=["ogc"])
GEOJSON = "application/geo+json"
JSON = "application/json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
ITEM_PARAMS = {"limit", "offset", "bbox", "datetime", "f"}
MAX_LIMIT = 10000


def _json(body: Any, media_type: str = JSON) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=_iso), media_type=media_type)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _base(request: Request) -> str:
    # Links name the server as configured (SITEWATCH_PUBLIC_URL) when it is: the Host header
    # is the caller's to choose, and a cache in front would hand its links to everyone.
    public: str = request.app.state.settings.public_url.rstrip("/")
    return f"{public}/ogc" if public else str(request.url_for("landing")).rstrip("/")


def _here(request: Request) -> URL:
    """This request's URL, on the configured public address when there is one."""
    public: str = request.app.state.settings.public_url.rstrip("/")
    return URL(f"{public}{request.url.path}?{request.url.query}") if public else request.url


@router.get("/", name="landing", summary="Landing page")
def landing(request: Request, f: Literal["json", "html"] = "json") -> Response:
    """Links to the API definition, the conformance declaration and the collections."""
    base = _base(request)
    links = [
        {"rel": "self", "type": JSON, "title": "this document", "href": f"{base}/"},
        {"rel": "alternate", "type": "text/html", "title": "this document as HTML",
         "href": f"{base}/?f=html"},
        {"rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
         "title": "the API definition", "href": f"{base.removesuffix('/ogc')}/openapi.json"},
        {"rel": "service-doc", "type": "text/html", "title": "the API documentation",
         "href": f"{base.removesuffix('/ogc')}/docs"},
        {"rel": "conformance", "type": JSON, "title": "conformance classes",
         "href": f"{base}/conformance"},
        {"rel": "data", "type": JSON, "title": "collections", "href": f"{base}/collections"},
    ]
    title = "sitewatch 文明城市创建 · OGC API Features"
    if f == "html":
        items = "".join(f'<li><a href="{escape(link["href"])}">{escape(link["title"])}</a></li>'
                        for link in links[2:])
        return HTMLResponse(f'<!doctype html><html lang="zh-CN"><meta charset="utf-8">'
                            f"<title>{title}</title><h1>{title}</h1><ul>{items}</ul></html>")
    return _json({"title": title,
                  "description": "Jurisdictions, monitored site layers and geotagged issues",
                  "links": links})


@router.get("/conformance", summary="Conformance declaration")
def conformance() -> Response:
    """The conformance classes this server implements."""
    return _json({"conformsTo": CONFORMANCE})


def _describe(conn: Conn, request: Request, c: features.Collection) -> dict[str, Any]:
    base = _base(request)
    bbox, interval = features.extent(conn, c)
    extent: dict[str, Any] = {"spatial": {"bbox": [bbox or [-180, -90, 180, 90]], "crs": CRS84}}
    if interval is not None:
        extent["temporal"] = {"interval": [interval],
                              "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return {
        "id": c.id, "title": c.title, "description": c.description, "itemType": "feature",
        "crs": [CRS84], "extent": extent,
        "links": [
            {"rel": "self", "type": JSON, "href": f"{base}/collections/{c.id}"},
            {"rel": "items", "type": GEOJSON, "title": "the features",
             "href": f"{base}/collections/{c.id}/items"},
        ],
    }


@router.get("/collections", summary="Collections")
def collections(conn: Conn, request: Request) -> Response:
    """Every collection with its extent."""
    base = _base(request)
    return _json({
        "links": [{"rel": "self", "type": JSON, "href": f"{base}/collections"}],
        "collections": [_describe(conn, request, c) for c in features.collections(conn)],
    })


@router.get("/collections/{collection_id}", summary="A collection")
def collection(collection_id: str, conn: Conn, request: Request) -> Response:
    """One collection with its extent and links."""
    return _json(_describe(conn, request, features.collection(conn, collection_id)))


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    parts = value.split(",")
    if len(parts) == 6:  # minx, miny, minz, maxx, maxy, maxz: heights do not apply here
        parts = [parts[0], parts[1], parts[3], parts[4]]
    return parse_bbox(",".join(parts))


def _instant(text: str, *, end: bool) -> datetime | None:
    if text in ("", ".."):
        return None
    try:
        if "T" not in text.upper():  # a date: the whole day (in UTC)
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(), UTC)
            return start + timedelta(days=1, microseconds=-1) if end else start
        when = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"datetime {text!r} is not RFC 3339") from None
    if when.tzinfo is None:
        raise ValidationFailed(f"datetime {text!r} needs a time zone (Z or +08:00)")
    return when


def _interval(value: str | None) -> tuple[datetime | None, datetime | None]:
    if value is None:
        return None, None
    if "/" in value:
        start, _, end = value.partition("/")
        since, until = _instant(start, end=False), _instant(end, end=True)
        if since is not None and until is not None and since > until:
            raise ValidationFailed("datetime interval ends before it starts")
        return since, until
    if "T" not in value.upper():
        return _instant(value, end=False), _instant(value, end=True)
    at = _instant(value, end=False)
    return at, at


def _private(caller: Principal | None) -> bool:
    return access.sees_personal_data(caller)


@router.get("/collections/{collection_id}/items", summary="Features",
            response_class=Response,
            responses={200: {"content": {GEOJSON: {}}, "description": "a FeatureCollection"}})
def collection_items(
    collection_id: str,
    conn: Conn,
    request: Request,
    caller: MaybeCaller,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat")] = None,
    datetime_: Annotated[str | None, Query(alias="datetime",
                                           description="instant or interval a/b, ../b")] = None,
    f: Literal["json"] = "json",
) -> Response:
    """A page of features with ``next``/``prev`` links; ``numberMatched`` counts them all."""
    unknown = set(request.query_params) - ITEM_PARAMS
    if unknown:
        raise ValidationFailed(f"unknown query parameter(s): {', '.join(sorted(unknown))}")
    c = features.collection(conn, collection_id)
    since, until = _interval(datetime_)
    page, matched = features.items(conn, c, features.Query(
        limit=limit, offset=offset, bbox=_bbox(bbox), since=since, until=until,
        private=_private(caller)))
    self_url = _here(request)
    links = [{"rel": "self", "type": GEOJSON, "href": str(self_url)},
             {"rel": "collection", "type": JSON,
              "href": f"{_base(request)}/collections/{c.id}"}]
    if offset + len(page) < matched:
        links.append({"rel": "next", "type": GEOJSON,
                      "href": str(self_url.include_query_params(offset=offset + limit))})
    if offset > 0:
        links.append({"rel": "prev", "type": GEOJSON,
                      "href": str(self_url.include_query_params(offset=max(0, offset - limit)))})
    head = json.dumps({"type": "FeatureCollection", "numberMatched": matched,
                       "numberReturned": len(page), "timeStamp": datetime.now(UTC).isoformat(),
                       "links": links}, ensure_ascii=False)
    # The features are GeoJSON text from PostGIS; splice them in rather than re-encode them.
    body = head[:-1] + ', "features": [' + ",".join(page) + "]}"
    return Response(body, media_type=GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="A feature",
            response_class=Response,
            responses={200: {"content": {GEOJSON: {}}, "description": "a Feature"}})
def collection_item(collection_id: str, feature_id: str, conn: Conn, request: Request,
                    caller: MaybeCaller) -> Response:
    """One feature with links to itself and its collection."""
    c = features.collection(conn, collection_id)
    feature = json.loads(features.item(conn, c, feature_id, private=_private(caller)))
    base = _base(request)
    feature["links"] = [
        {"rel": "self", "type": GEOJSON, "href": str(_here(request))},
        {"rel": "collection", "type": JSON, "href": f"{base}/collections/{c.id}"},
    ]
    return _json(feature, GEOJSON)
