"""Open311 GeoReport v2 wire formats: the spec's field names in JSON and XML, and its errors.

Every GeoReport resource is a list of flat records (``services``/``service``,
``service_requests``/``request``, ...) or, for discovery and service definitions, one record
with nested lists. One writer renders both formats from the same Python values, so the JSON
and XML of a resource cannot drift apart. Dates are ISO 8601 with their UTC offset, as the
spec requires.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypedDict

# Building documents only; nothing here parses XML from clients.
from xml.etree.ElementTree import Element, SubElement, tostring

from fastapi.responses import Response

from layers.issues.records import Issue
from layers.text import xml_safe
from layers.vocab import OPEN_STATUSES, Status

Format = Literal["json", "xml"]
SPEC = "http://wiki.open311.org/GeoReport_v2"
MEDIA = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# The element name of one member of each nested list in XML.
_MEMBER = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute",
           "values": "value"}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return xml_safe(str(value))


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _fill(parent: Element, record: Mapping[str, Any]) -> None:
    for key, value in record.items():
        child = SubElement(parent, key)
        if isinstance(value, list | tuple):
            for member in value:
                if isinstance(member, Mapping):
                    _fill(SubElement(child, _MEMBER.get(key, "item")), member)
                else:
                    SubElement(child, _MEMBER.get(key, "item")).text = _text(member)
        elif isinstance(value, Mapping):
            _fill(child, value)
        elif value is not None:
            child.text = _text(value)


def _xml(root: Element) -> bytes:
    document: bytes = tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def records(fmt: Format, root: str, member: str, rows: Sequence[Mapping[str, Any]],
            status: int = 200) -> Response:
    """A list resource: a JSON array, or ``<root><member>...</member>...</root>``."""
    if fmt == "json":
        body = json.dumps([_json_value(r) for r in rows], ensure_ascii=False).encode()
    else:
        element = Element(root)
        for row in rows:
            _fill(SubElement(element, member), row)
        body = _xml(element)
    return Response(body, status_code=status, media_type=MEDIA[fmt])


def record(fmt: Format, root: str, row: Mapping[str, Any]) -> Response:
    """A single resource: a JSON object, or ``<root>...</root>``."""
    if fmt == "json":
        body = json.dumps(_json_value(row), ensure_ascii=False).encode()
    else:
        element = Element(root)
        _fill(element, row)
        body = _xml(element)
    return Response(body, media_type=MEDIA[fmt])


def error(fmt: Format, status: int, description: str) -> Response:
    """The spec's error document: ``[{"code": 400, "description": "..."}]`` or
    ``<errors><error><code>400</code><description>...</description></error></errors>``."""
    return records(fmt, "errors", "error", [{"code": status, "description": description}],
                   status=status)


def format_of(path: str) -> Format:
    """The format a path asks for (``.xml`` or, by default, JSON)."""
    return "xml" if path.endswith(".xml") else "json"


# Our statuses to GeoReport's two (open: layers.vocab.OPEN_STATUSES), with our stage kept for
# status_notes (Chinese first).
STAGES: dict[Status, str] = {
    "reported": "已发现", "assigned": "已交办", "rectified": "已整改待核查",
    "verified": "已核查办结", "rejected": "不予受理", "duplicate": "重复问题"}


class Service(TypedDict):
    """A GeoReport ``service``: a category of the problem catalog."""

    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str | None
    group: str


class ServiceRequest(TypedDict):
    """A GeoReport ``request``, the spec's fields in the spec's order."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None


def request_record(row: Issue) -> ServiceRequest:
    """One issue as a GeoReport ``request`` (public fields only: no reporter data, no photos)."""
    stage = f"{STAGES[row.status]} ({row.status})"
    if row.overdue:
        stage += "; 已超期 (overdue)"
    if row.rework_count:
        stage += f"; 返工 {row.rework_count} 次 (reworked)"
    place = " ".join(p for p in (row.jurisdiction_name, row.site_name) if p)
    return {
        "service_request_id": row.public_id,
        "status": "open" if row.status in OPEN_STATUSES else "closed",
        "status_notes": stage,
        "service_name": row.category_zh,
        "service_code": row.category,
        "description": row.description,
        "agency_responsible": row.lead_unit_name,
        "service_notice": None,
        "requested_datetime": row.reported_at,
        "updated_datetime": row.updated_at,
        "expected_datetime": row.deadline,
        "address": place or None,
        "address_id": None,
        "zipcode": None,
        "lat": row.lat,
        "long": row.lon,
        # Reads are anonymous and photos are never public (docs/access.md): they may show
        # people, plates, homes. A photo a citizen posted is kept for the staff, not echoed.
        "media_url": None,
    }
