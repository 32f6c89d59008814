"""REST for the reference layers under ``/api/v1``: units, categories, site layers,
jurisdictions and sites. Spatial resources are GeoJSON (``application/geo+json``).

Reads are public; writes need an admin token. Handlers only translate HTTP to calls into
``layers/``, which owns the SQL and makes each write all-or-nothing.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from api.auth import Admin
from api.deps import Conn, PageQuery
from api.routes.imports import PreviewOut, preview_response
from api.schemas.catalog import (
    BBox,
    Category,
    CategoryCreate,
    CategoryPatch,
    Code,
    JurisdictionCollection,
    JurisdictionCreate,
    JurisdictionFeature,
    JurisdictionPatch,
    LayerCode,
    SiteCollection,
    SiteCreate,
    SiteFeature,
    SiteLayer,
    SiteLayerCreate,
    SiteLayerPatch,
    SitePatch,
    UnitCreate,
    UnitPatch,
    jurisdiction_feature,
    parse_bbox,
    site_feature,
)
from layers import preview as previews
from layers.catalog import categories, jurisdictions, sites, units
from layers.vocab import Level


class GeoJSONResponse(JSONResponse):
    """JSON with the GeoJSON media type of RFC 7946."""

    media_type = "application/geo+json"


def bbox_query(
    bbox: Annotated[str | None, Query(
        description="minx,miny,maxx,maxy in EPSG:4326; keeps features that intersect it",
        examples=["120.55,31.25,120.65,31.35"])] = None,
) -> BBox | None:
    """The parsed ``bbox`` query parameter (422 problem when malformed)."""
    return None if bbox is None else parse_bbox(bbox)


BBoxFilter = Annotated[BBox | None, Depends(bbox_query)]
_WRITE: dict[int | str, dict[str, Any]] = {
    401: {"description": "no valid token"}, 403: {"description": "not an admin"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "conflicts with existing data"}}
_PREVIEW: dict[int | str, dict[str, Any]] = {
    200: {"model": PreviewOut, "description": "the row, or with preview=true what the edit "
                                              "would do (nothing stored)"}}
PreviewQuery = Annotated[bool, Query(description="Only show what the edit would do: rows "
                                                 "changed, open issues that would move, "
                                                 "points at risk; store nothing.")]

router = APIRouter(prefix="/api/v1", tags=["catalog"])


# -- units -----------------------------------------------------------------------------------

@router.get("/units", tags=["units"], response_model=list[units.Unit])
def list_units(conn: Conn) -> list[units.Unit]:
    """Every responsible unit."""
    return units.list_all(conn)


@router.get("/units/{code}", tags=["units"], response_model=units.Unit)
def get_unit(conn: Conn, code: str) -> units.Unit:
    """One unit by code."""
    return units.get(conn, code)


@router.post("/units", status_code=status.HTTP_201_CREATED, tags=["units"],
             response_model=units.Unit, responses={**_WRITE, **_CONFLICT})
def create_unit(conn: Conn, _: Admin, body: UnitCreate, response: Response) -> units.Unit:
    """Add a unit (admin)."""
    unit = units.create(conn, **body.model_dump())
    response.headers["Location"] = f"/api/v1/units/{unit.code}"
    return unit


@router.patch("/units/{code}", tags=["units"], response_model=units.Unit,
              responses={**_WRITE, **_CONFLICT})
def update_unit(conn: Conn, _: Admin, code: str, body: UnitPatch) -> units.Unit:
    """Change some of a unit's fields (admin)."""
    return units.update(conn, code, body.changes())


@router.delete("/units/{code}", status_code=status.HTTP_204_NO_CONTENT, tags=["units"],
               response_class=Response, responses={**_WRITE, **_CONFLICT})
def delete_unit(conn: Conn, _: Admin, code: str) -> None:
    """Delete a unit (admin); 409 while issues name it as responsible."""
    units.delete(conn, code)


# -- categories ------------------------------------------------------------------------------

@router.get("/categories", tags=["categories"])
def list_categories(conn: Conn, active: bool | None = None) -> list[Category]:
    """The problem catalog; ``active`` narrows it to current or retired categories."""
    return [Category.of(c) for c in categories.list_all(conn, active=active)]


@router.get("/categories/{code}", tags=["categories"])
def get_category(conn: Conn, code: str) -> Category:
    """One category by code."""
    return Category.of(categories.get(conn, code))


@router.post("/categories", status_code=status.HTTP_201_CREATED, tags=["categories"],
             responses={**_WRITE, **_CONFLICT})
def create_category(conn: Conn, _: Admin, body: CategoryCreate, response: Response
                    ) -> Category:
    """Add a category (admin)."""
    category = Category.of(categories.create(conn, **body.model_dump()))
    response.headers["Location"] = f"/api/v1/categories/{category.code}"
    return category


@router.patch("/categories/{code}", tags=["categories"], responses=_WRITE)
def update_category(conn: Conn, _: Admin, code: str, body: CategoryPatch
                    ) -> Category:
    """Change a category (admin); ``{"active": false}`` retires it."""
    return Category.of(categories.update(conn, code, body.changes()))


# -- site layers -----------------------------------------------------------------------------

@router.get("/site-layers", tags=["sites"])
def list_site_layers(conn: Conn) -> list[SiteLayer]:
    """Every site layer, built-in ones first."""
    return [SiteLayer.of(layer) for layer in sites.site_layers(conn)]


@router.post("/site-layers", status_code=status.HTTP_201_CREATED, tags=["sites"],
             responses={**_WRITE, **_CONFLICT})
def create_site_layer(conn: Conn, _: Admin, body: SiteLayerCreate) -> SiteLayer:
    """Add a site layer (admin); sites and categories can use it at once."""
    return SiteLayer.of(sites.create_layer(conn, **body.model_dump()))


@router.patch("/site-layers/{code}", tags=["sites"], responses=_WRITE)
def update_site_layer(conn: Conn, _: Admin, code: str, body: SiteLayerPatch) -> SiteLayer:
    """Rename a site layer or choose the attributes its public collection shows (admin)."""
    return SiteLayer.of(sites.update_layer(conn, code, body.changes()))


# -- jurisdictions ---------------------------------------------------------------------------

@router.get("/jurisdictions", response_class=GeoJSONResponse, tags=["jurisdictions"])
def list_jurisdictions(
    conn: Conn,
    bbox: BBoxFilter,
    level: Level | None = None,
    parent: Annotated[Code | None, Query(description="the parent's code")] = None,
    *, page: PageQuery, request: Request, response: Response,
) -> JurisdictionCollection:
    """Jurisdictions as a FeatureCollection (MultiPolygons), coarsest level first; a
    ``Link: <...>; rel="next"`` header points to the next page."""
    found = jurisdictions.features(conn, level=level, parent=parent, bbox=bbox,
                                   limit=page.limit + 1, offset=page.offset)
    return JurisdictionCollection(type="FeatureCollection", features=[
        jurisdiction_feature(j) for j in page.trim(found, request, response)])


@router.get("/jurisdictions/{code}", response_class=GeoJSONResponse, tags=["jurisdictions"])
def get_jurisdiction(conn: Conn, code: str) -> JurisdictionFeature:
    """One jurisdiction as a Feature."""
    return jurisdiction_feature(jurisdictions.get(conn, code))


@router.post("/jurisdictions", status_code=status.HTTP_201_CREATED,
             response_class=GeoJSONResponse, tags=["jurisdictions"],
             responses={**_WRITE, **_CONFLICT})
def create_jurisdiction(conn: Conn, admin: Admin, body: JurisdictionCreate, response: Response
                        ) -> JurisdictionFeature:
    """Add a jurisdiction (admin); a parent is exactly one level up."""
    props = body.properties
    created = jurisdictions.create(
        conn, code=props.code, name=props.name, level=props.level, parent=props.parent,
        unit=props.unit, geometry=body.geometry.model_dump(mode="json", exclude_none=True),
        actor=admin.actor)
    response.headers["Location"] = f"/api/v1/jurisdictions/{props.code}"
    return jurisdiction_feature(created)


@router.patch("/jurisdictions/{code}", response_class=GeoJSONResponse,
              response_model=JurisdictionFeature, tags=["jurisdictions"],
              responses={**_PREVIEW, **_WRITE, **_CONFLICT})
def update_jurisdiction(conn: Conn, admin: Admin, code: str, body: JurisdictionPatch,
                        preview: PreviewQuery = False) -> JurisdictionFeature | JSONResponse:
    """Change properties and/or the geometry of a jurisdiction (admin); the open issues that
    move are stored as one revision (``GET /api/v1/revisions``). ``preview=true``: what the
    change would do, nothing stored."""
    if preview:
        return preview_response(previews.run(conn, "jurisdiction", lambda: jurisdictions.update(
            conn, code, body.changes(), actor=admin.actor))[1])
    return jurisdiction_feature(jurisdictions.update(conn, code, body.changes(),
                                                     actor=admin.actor))


@router.delete("/jurisdictions/{code}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, tags=["jurisdictions"],
               responses={**_WRITE, **_CONFLICT})
def delete_jurisdiction(conn: Conn, admin: Admin, code: str) -> None:
    """Delete a jurisdiction (admin); 409 while it has children or issues refer to it."""
    jurisdictions.delete(conn, code, actor=admin.actor)


# -- sites -----------------------------------------------------------------------------------

@router.get("/sites", response_class=GeoJSONResponse, tags=["sites"])
def list_sites(
    conn: Conn,
    bbox: BBoxFilter,
    layer: Annotated[LayerCode | None, Query(examples=["market"])] = None,
    *, page: PageQuery, request: Request, response: Response,
) -> SiteCollection:
    """Sites as a FeatureCollection, optionally of one layer and within a bbox; a
    ``Link: <...>; rel="next"`` header points to the next page."""
    found = sites.features(conn, layer=layer, bbox=bbox, limit=page.limit + 1,
                           offset=page.offset)
    return SiteCollection(type="FeatureCollection", features=[
        site_feature(s) for s in page.trim(found, request, response)])


@router.get("/sites/{code}", response_class=GeoJSONResponse, tags=["sites"])
def get_site(conn: Conn, code: str) -> SiteFeature:
    """One site as a Feature."""
    return site_feature(sites.get(conn, code))


@router.post("/sites", status_code=status.HTTP_201_CREATED, response_class=GeoJSONResponse,
             tags=["sites"], responses={**_WRITE, **_CONFLICT})
def create_site(conn: Conn, admin: Admin, body: SiteCreate, response: Response) -> SiteFeature:
    """Add a site (admin): a point or an area on an existing layer."""
    created = sites.create(conn, **body.properties.model_dump(),
                           geometry=body.geometry.model_dump(mode="json", exclude_none=True),
                           actor=admin.actor)
    response.headers["Location"] = f"/api/v1/sites/{body.properties.code}"
    return site_feature(created)


@router.patch("/sites/{code}", response_class=GeoJSONResponse, tags=["sites"],
              response_model=SiteFeature, responses={**_PREVIEW, **_WRITE, **_CONFLICT})
def update_site(conn: Conn, admin: Admin, code: str, body: SitePatch,
                preview: PreviewQuery = False) -> SiteFeature | JSONResponse:
    """Change properties and/or the geometry of a site (admin); the open issues that move
    are stored as one revision. ``preview=true``: what the change would do, nothing
    stored."""
    if preview:
        return preview_response(previews.run(conn, "site", lambda: sites.update(
            conn, code, body.changes(), actor=admin.actor))[1])
    return site_feature(sites.update(conn, code, body.changes(), actor=admin.actor))


@router.delete("/sites/{code}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, tags=["sites"], responses={**_WRITE, **_CONFLICT})
def delete_site(conn: Conn, admin: Admin, code: str) -> None:
    """Delete a site (admin); its issues stay, unlinked (one revision records them)."""
    sites.delete(conn, code, actor=admin.actor)
