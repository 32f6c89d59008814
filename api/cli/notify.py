"""``sitewatch notify``: subscriptions of units (or the office) to events, by webhook, 企业微信
or 钉钉 group robot, or email; ``notify test`` sends one message at once and says what
became of it. The worker sends everything else."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from api.cli.session import actor, session
from layers.db.settings import Settings
from layers.notify import deliveries, outbox, targets
from layers.notify.outbox import CHANNELS, EVENT_KINDS

notify_app = typer.Typer(help="Notifications: subscribe units to events, list, test.",
                         no_args_is_help=True)
out = Console(highlight=False)


@notify_app.command("add")
def add(
    channel: Annotated[str, typer.Option(help=f"One of {', '.join(CHANNELS)}.")],
    target: Annotated[str, typer.Option(help="The robot or webhook URL, or email addresses "
                                             "(comma-separated).")],
    unit: Annotated[str | None, typer.Option(
        help="The unit's code; omitted: the office, told of every unit's events.")] = None,
    secret: Annotated[str | None, typer.Option(
        help="HMAC key of the webhook's X-Sitewatch-Signature, or 钉钉's signing secret.")
    ] = None,
    events: Annotated[list[str] | None, typer.Option(
        "--events", help=f"Event kinds wanted (repeatable); omitted: all of "
                         f"{', '.join(k for k in EVENT_KINDS if k != 'test')}.")] = None,
) -> None:
    """Subscribe a unit (or the office) to events on one channel."""
    settings = Settings()
    with session(settings) as conn:
        outbox.require_channel(channel)
        checked = targets.check(channel, target, allow_private=settings.webhook_allow_private)
        made = outbox.add(conn, unit=unit, channel=channel, target=checked, secret=secret,
                          events=events or [], created_by=actor())
    out.print(f"subscription {made.id}: {made.unit or '全部单位 every unit'} -> "
              f"{made.channel} {escape(made.target)}")


@notify_app.command("list")
def list_subscriptions() -> None:
    """Every subscription, with its pending and dead deliveries."""
    with session() as conn:
        found = outbox.list_all(conn)
        counts = dict(conn.execute(
            "SELECT subscription_id, count(*) FILTER (WHERE state = 'dead') FROM delivery"
            " GROUP BY subscription_id").fetchall())
    if not found:
        out.print("no subscriptions")
        return
    table = Table("id", "unit", "channel", "target", "events", "signed", "dead")
    for s in found:
        table.add_row(str(s.id), s.unit or "*", s.channel, escape(s.target),
                      ", ".join(s.events) or "all", "yes" if s.secret else "no",
                      str(counts.get(s.id, 0)))
    out.print(table)


@notify_app.command("test")
def test(subscription: Annotated[int, typer.Argument(help="The subscription's id.")]) -> None:
    """Send a test message to one subscription now and say whether it arrived."""
    settings = Settings()
    with session(settings) as conn:
        delivery_id = outbox.test(conn, subscription)
        conn.commit()
        deliveries.deliver_due(conn, settings, limit=1, only=delivery_id)
        result = deliveries.get(conn, delivery_id)
    if result.state == "delivered":
        out.print(f"已送达 delivered ({delivery_id})")
        return
    out.print(f"[red]未送达 not delivered[/red] ({delivery_id}, {result.state}): "
              f"{escape(result.last_error or '')}")
    raise typer.Exit(1)
