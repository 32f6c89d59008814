"""A supervision order on paper, composed for the route and the CLI: the printable page
(:func:`maps.orders.order_html`) and the workbook (the order's table from
:func:`maps.orders.order_table`, written by :func:`layers.io.xlsx.table_workbook`)."""

from __future__ import annotations

from typing import Any

import psycopg

from layers.errors import NotFound
from layers.io import xlsx
from layers.notify.messages import Enclosure, Papers
from layers.supervision import orders
from maps.orders import PrintedItem, PrintedOrder, order_html, order_table


def printed(order: orders.Order) -> PrintedOrder:
    """The order as the page and the sheet show it."""
    return PrintedOrder(
        code=order.code, kind=order.kind, level=order.level, street=order.street,
        unit_name=order.unit_name, unit_leader=order.unit_leader,
        unit_contact=order.unit_contact, issued_at=order.issued_at, issued_by=order.issued_by,
        note=order.note, acknowledged_at=order.acknowledged_at,
        acknowledged_by=order.acknowledged_by,
        items=[PrintedItem(position=i.position, public_id=i.public_id, category=i.category,
                           category_zh=i.category_zh, category_en=i.category_en,
                           site_name=i.site_name, jurisdiction_name=i.jurisdiction_name,
                           lon=i.lon, lat=i.lat, description=i.description,
                           reported_at=i.reported_at, deadline_listed=i.deadline_listed,
                           points=i.points) for i in order.items])


def page(conn: psycopg.Connection[Any], order: orders.Order, lang: str = "zh") -> str:
    """The printable A4 page, with the district's outlines for its location sketch."""
    return order_html(printed(order), orders.outlines(conn), lang)


def workbook(order: orders.Order, lang: str = "zh") -> bytes:
    """The order as XLSX bytes: the page's table, laid out as every workbook we write."""
    table = order_table(printed(order), lang)
    return xlsx.table_workbook(table.sheet, table.fields, table.labels, table.rows,
                               heading=table.heading, lines=table.lines)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def email_papers(conn: psycopg.Connection[Any], kind: str, payload: dict[str, Any]) -> Papers:
    """What an email of an event carries (layers.notify.deliveries.PaperSource): for an order
    issued or escalated, its printable page as the HTML body and its workbook attached, in
    Chinese, as the unit files them; nothing more for other events, or for an order no longer
    there."""
    if kind not in ("order.issued", "order.escalated") or not payload.get("order"):
        return Papers()
    try:
        order = orders.get(conn, str(payload["order"]))
    except NotFound:
        return Papers()
    return Papers(html=page(conn, order),
                  enclosures=(Enclosure(f"{order.code}.xlsx", XLSX, workbook(order)),))
