"""``/open311/v2/``: Open311 GeoReport v2 over our catalog and issues, in JSON and XML.

- services are the active categories of the problem catalog (service_code = category code);
- a request is an issue (service_request_id = the issue's public id, the one id everywhere);
  our lifecycle maps to ``open`` (reported, assigned, rectified) or ``closed``, with the stage
  in ``status_notes``, the deadline in ``expected_datetime`` and the lead unit in
  ``agency_responsible``;
- ``POST requests`` takes ``api_key`` (a sitewatch token of an admin, supervisor or inspector),
  WGS84 ``lat``/``long`` as the spec says, and stores the issue already assigned, with source
  ``citizen``, through the same path as ``POST /api/v1/issues`` (``Idempotency-Key`` honoured);
- requests are created at once, so the POST answers with the ``service_request_id``; for
  clients that poll ``tokens/{token}``, a request's id is also its token.

Errors use the spec's format (``errors``/``error`` with ``code`` and ``description``) with HTTP
400, 403 or 404; see :func:`api.errors.install`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from api.auth import authenticate
from api.deps import AppSettings, Conn
from api.periods import read_period
from api.schemas import open311
from api.schemas.open311 import Format
from api.services import reporting
from layers.auth import roles
from layers.catalog import categories
from layers.errors import Forbidden, NotFound, ValidationFailed
from layers.issues import records
from layers.text import unsafe_character
from layers.vocab import OPEN_STATUSES, STATUSES

router = APIRouter(prefix="/open311/v2", tags=["open311"])
DEFAULT_WINDOW = timedelta(days=90)  # the spec's default when no dates are given
MAX_REQUESTS = 1000  # the spec's suggested maximum per response
CHANGESET = "2026-11-26T00:00:00+08:00"


@router.get("/discovery.{fmt}", summary="Service discovery")
def discovery(fmt: Format, request: Request) -> Response:
    """Where this GeoReport v2 endpoint is and which formats it speaks."""
    base = str(request.url_for("services", fmt="json")).rsplit("/", 1)[0]
    return open311.record(fmt, "discovery", {
        "changeset": CHANGESET,
        "contact": "文明城市创建工作办公室 (civilized city campaign office)",
        "key_service": "API keys are sitewatch tokens:"
                       " `sitewatch token create --role inspector --name NAME`",
        "endpoints": [{"specification": open311.SPEC, "url": base, "changeset": CHANGESET,
                       "type": "production", "formats": ["text/xml", "application/json"]}],
    })


# Services are grouped by the campaign's five rectification actions (五大整治行动); the
# seed catalog's code prefixes name them. Other categories fall back to their site layer or
# their urban-management event class.
ACTIONS = {"MKT": "农贸市场及周边", "CON": "建筑工地", "CTY": "市容环境", "CMP": "老旧小区",
           "BEH": "市民文明行为"}


def _service(row: categories.Category, layers: dict[str, str]) -> open311.Service:
    group = (ACTIONS.get(row.code.split("-")[0]) or layers.get(row.site_layer or "")
             or (row.dcm_event_class or "").split("/")[0])
    keywords = [row.site_layer, *(row.dcm_event_class or "").split("/")]
    return {
        "service_code": row.code,
        "service_name": row.name_zh,
        "description": f"{row.name_en}. 整改时限 deadline "
                       + (f"{row.deadline_working_days} 个工作日 working days"
                          if row.deadline_working_days else
                          f"{row.deadline_hours} 小时 hours")
                       + f"; 分值 points {row.points:g}",
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join(k for k in keywords if k) or None,
        "group": group or "其他",
    }


def _layer_names(conn: Conn) -> dict[str, str]:
    return {str(code): str(name) for code, name in
            conn.execute("SELECT code, name_zh FROM site_layer").fetchall()}


@router.get("/services.{fmt}", summary="Service list")
def services(fmt: Format, conn: Conn) -> Response:
    """The problem catalog as GeoReport services."""
    layers = _layer_names(conn)
    return open311.records(fmt, "services", "service",
                           [_service(r, layers) for r in categories.list_all(conn, active=True)])


@router.get("/services/{service_code}.{fmt}", summary="Service definition")
def service_definition(service_code: str, fmt: Format, conn: Conn) -> Response:
    """A service's extra attributes: none (every service has ``metadata`` false)."""
    category = categories.get(conn, service_code)
    if not category.active:
        raise NotFound(f"service_code {service_code!r} is no longer offered")
    return open311.record(fmt, "service_definition",
                          {"service_code": service_code, "attributes": []})


def _number(name: str, value: str | None, low: float, high: float) -> float:
    if value is None or not value.strip():
        raise ValidationFailed(f"{name} is required (addresses are not geocoded; send WGS84 "
                               "lat and long)")
    try:
        number = float(value)
    except ValueError:
        raise ValidationFailed(f"{name} must be a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValidationFailed(f"{name} must be between {low:g} and {high:g}")
    return number


@router.post("/requests.{fmt}", summary="POST Service Request", status_code=201)
def post_request(
    fmt: Format,
    conn: Conn,
    request: Request,
    api_key: Annotated[str | None, Form()] = None,
    service_code: Annotated[str | None, Form()] = None,
    lat: Annotated[str | None, Form()] = None,
    long: Annotated[str | None, Form()] = None,
    description: Annotated[str | None, Form()] = None,
    media_url: Annotated[str | None, Form()] = None,
    email: Annotated[str | None, Form()] = None,
    phone: Annotated[str | None, Form()] = None,
    first_name: Annotated[str | None, Form()] = None,
    last_name: Annotated[str | None, Form()] = None,
    device_id: Annotated[str | None, Form()] = None,
) -> Response:
    """Report a problem; it is stored at once, already assigned (``Idempotency-Key`` honoured)."""
    caller = authenticate(request, conn, api_key) if api_key else None
    if caller is None:
        raise Forbidden("api_key is missing, unknown, expired or revoked")
    if not roles.allows(caller.role, "report"):
        raise Forbidden(f"an api_key of role {caller.role!r} may not post requests")
    if not service_code:
        raise ValidationFailed("service_code is required")
    category = categories.get(conn, service_code)
    if not category.active:
        raise NotFound(f"service_code {service_code!r} is no longer offered")
    latitude = _number("lat", lat, -90, 90)
    longitude = _number("long", long, -180, 180)
    text = (description or "").strip() or category.name_zh
    if len(text) > 4000:
        raise ValidationFailed("description is longer than 4000 characters")
    typed = {"description": text, "first_name": first_name, "last_name": last_name,
             "email": email, "phone": phone, "device_id": device_id}
    for field, problem in ((n, unsafe_character(v or "")) for n, v in typed.items()):
        if problem is not None:
            raise ValidationFailed(f"{field} holds a control character ({problem})")
    if media_url and (len(media_url) > 500
                      or not media_url.startswith(("http://", "https://"))):
        raise ValidationFailed("media_url must be an http(s) URL of at most 500 characters")
    name = " ".join(p for p in (first_name, last_name) if p) or None
    contact = " ".join(p for p in (email, phone) if p) or None
    if (name and len(name) > 100) or (contact and len(contact) > 100):
        raise ValidationFailed("names and contact details are limited to 100 characters")
    new = records.NewIssue(category=service_code, lon=longitude, lat=latitude, description=text,
                          source="citizen", photos=(media_url,) if media_url else (),
                          reporter=name or device_id, reporter_contact=contact)
    fingerprint = {"service_code": service_code, "lat": lat, "long": long,
                   "description": description, "media_url": media_url}
    public_id, replayed = reporting.report(conn, request, caller, new, fingerprint)
    issue = records.get(conn, public_id)
    notice = (f"已交办 {issue.lead_unit_name}" if issue.lead_unit_name
              else "待分派 (waiting for assignment)")
    if issue.deadline is not None:
        notice += f"，整改时限 {issue.deadline.isoformat(timespec='minutes')}"
    response = open311.records(fmt, "service_requests", "request", [
        {"service_request_id": public_id, "service_notice": notice, "account_id": None}],
        status=201)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


@router.get("/requests.{fmt}", summary="GET Service Requests")
def get_requests(
    fmt: Format,
    conn: Conn,
    settings: AppSettings,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    page: Annotated[int, Query(ge=1, description="extension: page number")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_REQUESTS,
                                    description="extension: requests per page")] = MAX_REQUESTS,
) -> Response:
    """Requests newest first. ``service_request_id`` (comma-separated) overrides the other
    filters; without dates, the last 90 days."""
    ids = _split(service_request_id)
    period = read_period(conn, settings, since=start_date, until=end_date,
                         names=("start_date", "end_date"))
    since, until = period.since, period.until
    statuses = _split(status)
    if any(s not in ("open", "closed") for s in statuses):
        raise ValidationFailed("status is open, closed or both (comma-separated)")
    if ids:
        filters = records.IssueFilter(ids=ids, limit=MAX_REQUESTS)
    else:
        if since is None and until is None:
            since = datetime.now(UTC) - DEFAULT_WINDOW
        ours = [s for s in STATUSES if
                ("open" if s in OPEN_STATUSES else "closed") in statuses]
        filters = records.IssueFilter(category=_split(service_code), status=ours, since=since,
                                     until=until, limit=page_size,
                                     offset=(page - 1) * page_size)
    rows, _ = records.list_issues(conn, filters)
    return open311.records(fmt, "service_requests", "request",
                           [open311.request_record(r) for r in rows])


@router.get("/requests/{service_request_id}.{fmt}", summary="GET Service Request")
def get_request(service_request_id: str, fmt: Format, conn: Conn) -> Response:
    """One request, as a list of one (the spec's shape)."""
    return open311.records(fmt, "service_requests", "request",
                           [open311.request_record(records.get(conn, service_request_id))])


@router.get("/tokens/{token}.{fmt}", summary="GET service_request_id from a token")
def get_token(token: str, fmt: Format, conn: Conn) -> Response:
    """Requests are created at once, so a request's id is its own token."""
    issue = records.get(conn, token)
    return open311.records(fmt, "service_requests", "request",
                           [{"service_request_id": issue.public_id, "token": token}])
