"""``/api/v1/orders``: supervision orders (督办单) — issue, escalate, read, print, acknowledge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from api.auth import Caller, require_permission
from api.deps import Conn
from api.services import order_papers
from layers.auth import access, roles
from layers.auth.tokens import Principal
from layers.supervision import orders

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])
Supervisor = Annotated[Principal, Depends(require_permission("write_orders"))]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Lang = Annotated[Literal["zh", "en"], Query(description="labels: zh (default) or en")]


class OrderRequest(BaseModel):
    """Which unit (default: every unit with issues to hand over) and what to tell it."""

    unit: str | None = Field(default=None, max_length=100, description="unit code or name")
    note: str | None = Field(default=None, max_length=2000,
                             examples=["请于期限内整改到位并上传整改后照片"])


class Written(BaseModel):
    """An order just written."""

    code: str
    unit: str
    unit_name: str
    kind: str
    level: int
    issues: int


class OrderSummary(BaseModel):
    """An order with its counts now."""

    code: str
    kind: Literal["order", "escalation"]
    level: int
    unit: str
    unit_name: str
    unit_leader: str | None
    issued_at: datetime
    issued_by: str
    note: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    issues: int
    still_open: int
    overdue_now: int


class Order(OrderSummary):
    """An order with its issues."""

    items: list[orders.OrderItem]  # the layers' record: the API adds nothing to it


class OrderList(BaseModel):
    """A page of orders, newest first."""

    orders: list[OrderSummary]
    total: int
    limit: int
    offset: int


def _written(rows: list[orders.Written], response: Response) -> list[Written]:
    response.status_code = 201 if rows else 200
    return [Written.model_validate(r, from_attributes=True) for r in rows]


def _issuer(caller: Principal) -> orders.Issuer:
    return orders.Issuer(caller.actor, caller.role)


@router.post("", response_model=list[Written], status_code=201,
             responses={200: {"description": "nothing new to hand over (empty list)"}})
def issue_orders(body: OrderRequest, conn: Conn, caller: Supervisor, response: Response
                 ) -> list[Written]:
    """Hand every open issue that no order lists yet to its unit: one new order per unit.

    Safe to repeat: a second call lists nothing twice and answers 200 with an empty list.
    """
    return _written(orders.issue_orders(conn, _issuer(caller), unit=body.unit,
                                        note=body.note), response)


@router.post("/escalate", response_model=list[Written], status_code=201,
             responses={200: {"description": "nothing newly overdue (empty list)"}})
def escalate(body: OrderRequest, conn: Conn, caller: Supervisor, response: Response
             ) -> list[Written]:
    """Escalate open issues past their deadline into new orders (升级督办).

    Each issue escalates once per deadline it missed, so a scheduler may call this as often
    as it likes.
    """
    return _written(orders.escalate(conn, _issuer(caller), unit=body.unit, note=body.note),
                    response)


@router.get("", response_model=OrderList)
def list_orders(
    conn: Conn,
    caller: Caller,
    unit: Annotated[str | None, Query(max_length=40, description="unit code")] = None,
    kind: Literal["order", "escalation"] | None = None,
    acknowledged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> OrderList:
    """Orders newest first; ``acknowledged=false`` lists those still waiting for receipt.

    A unit sees its own orders only, whatever ``unit`` says.
    """
    access.require(caller, "read_orders")
    if roles.own_only(caller.role, "read_orders"):
        unit = _own_unit_code(conn, caller)
    rows, total = orders.list_orders(conn, orders.OrderFilter(
        unit=unit, kind=kind, acknowledged=acknowledged, limit=limit, offset=offset))
    return OrderList(orders=[OrderSummary.model_validate(r, from_attributes=True)
                             for r in rows], total=total, limit=limit, offset=offset)


def _own_unit_code(conn: Conn, caller: Principal) -> str:
    row = conn.execute("SELECT code FROM unit WHERE id = %s", [caller.unit_id]).fetchone()
    return str(row[0]) if row else ""


def _readable(conn: Conn, caller: Principal, code: str) -> orders.Order:
    order = orders.get(conn, code)
    access.require_own_unit(caller, order.unit_id, "read_orders", "supervision orders")
    return order


@router.get("/{code}", response_model=Order)
def get_order(code: str, conn: Conn, caller: Caller) -> Order:
    """The order with its issues as listed and as they stand now."""
    return Order.model_validate(_readable(conn, caller, code), from_attributes=True)


@router.get("/{code}/print", response_class=HTMLResponse)
def print_order(code: str, conn: Conn, caller: Caller, lang: Lang = "zh") -> HTMLResponse:
    """The order as a printable A4 page (Chinese; ``lang=en`` for English labels)."""
    return HTMLResponse(order_papers.page(conn, _readable(conn, caller, code), lang))


@router.get("/{code}/xlsx", response_class=Response,
            responses={200: {"content": {XLSX: {}}, "description": "the order as XLSX"}})
def order_workbook(code: str, conn: Conn, caller: Caller, lang: Lang = "zh") -> Response:
    """The order as an Excel workbook, for the unit's files."""
    body = order_papers.workbook(_readable(conn, caller, code), lang)
    return Response(body, media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="{code}.xlsx"'})


@router.post("/{code}/acknowledge", response_model=Order,
             responses={403: {"description": "not the unit the order is addressed to"}})
def acknowledge(code: str, conn: Conn, caller: Caller) -> Order:
    """The addressed unit signs for the order (签收); the first receipt stands."""
    return Order.model_validate(orders.acknowledge(conn, code, caller), from_attributes=True)
