"""``sitewatch orders``: write, escalate, list and print supervision orders (督办单).

``orders escalate`` is meant for a scheduler (cron, a systemd timer): each run escalates only
what became overdue since the last, so running it every hour or twice at once is harmless.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.cli.session import actor, session
from api.services import order_papers
from layers.supervision import orders

orders_app = typer.Typer(help="Supervision orders (督办单): issue, escalate, list, print.",
                         no_args_is_help=True)
out = Console(highlight=False)
UnitOption = Annotated[str | None, typer.Option(help="Only this unit (code or name).")]
NoteOption = Annotated[str | None, typer.Option(help="Instructions printed on the order.")]
SignedBy = Annotated[str | None, typer.Option(
    "--by", help="Who signs, as printed on the order (default: cli:<login>).")]


def _issuer(signed_by: str | None) -> orders.Issuer:
    return orders.Issuer(signed_by or actor(), "supervisor")


def _report(written: list[orders.Written], nothing: str) -> None:
    if not written:
        out.print(nothing)
        return
    table = Table("order", "unit", "kind", "level", "issues")
    for o in written:
        table.add_row(o.code, f"{o.unit_name} ({o.unit})", o.kind, str(o.level), str(o.issues))
    out.print(table)


@orders_app.command("issue")
def issue(unit: UnitOption = None, note: NoteOption = None, by: SignedBy = None) -> None:
    """One order per unit listing its open issues that no order has handed over yet."""
    with session() as conn:
        written = orders.issue_orders(conn, _issuer(by), unit=unit, note=note)
    _report(written, "nothing to hand over: every open issue is already on an order")


@orders_app.command("escalate")
def escalate(unit: UnitOption = None, note: NoteOption = None, by: SignedBy = None) -> None:
    """Escalate overdue open issues into new orders (each once per missed deadline)."""
    with session() as conn:
        written = orders.escalate(conn, _issuer(by), unit=unit, note=note)
    _report(written, "nothing newly overdue")


@orders_app.command("list")
def list_orders(
    unit: UnitOption = None,
    pending: Annotated[bool, typer.Option("--pending",
                                          help="Only orders not yet acknowledged.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
) -> None:
    """Orders, newest first, with what is still open and overdue on each."""
    with session() as conn:
        rows, total = orders.list_orders(conn, orders.OrderFilter(
            unit=unit, acknowledged=False if pending else None, limit=limit))
    table = Table("order", "unit", "kind", "issued", "issues", "open", "overdue", "received")
    for o in rows:
        table.add_row(o.code, o.unit_name, o.kind, o.issued_at.strftime("%Y-%m-%d %H:%M"),
                      str(o.issues), str(o.still_open), str(o.overdue_now),
                      o.acknowledged_at.strftime("%Y-%m-%d") if o.acknowledged_at else "-")
    out.print(table)
    out.print(f"{len(rows)} of {total} order(s)")


@orders_app.command("print")
def print_order(
    code: Annotated[str, typer.Argument(help="The order number, e.g. DB2026-0001.")],
    html: Annotated[Path | None, typer.Option(help="Write the printable page here.")] = None,
    xlsx: Annotated[Path | None, typer.Option(help="Write the workbook here.")] = None,
    lang: Annotated[str, typer.Option(help="zh or en labels.")] = "zh",
) -> None:
    """Write an order as a printable HTML page (A4) and/or an XLSX workbook."""
    if lang not in ("zh", "en"):
        raise typer.BadParameter("lang is zh or en", param_hint="--lang")
    target = html or (None if xlsx else Path(f"{code}.html"))
    with session() as conn:
        order = orders.get(conn, code)
        if target is not None:
            target.write_text(order_papers.page(conn, order, lang), encoding="utf-8")
            out.print(f"wrote {target}")
        if xlsx is not None:
            xlsx.write_bytes(order_papers.workbook(order, lang))
            out.print(f"wrote {xlsx}")
