"""``/api/v1/subscriptions`` and ``/api/v1/deliveries`` (admin): who is told of what, by which
channel, and what became of each message. Sending is the worker's (layers.notify.deliveries);
nothing here sends."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, Field

from api.auth import require_permission
from api.deps import AppSettings, Conn
from layers.auth.tokens import Principal
from layers.notify import deliveries, outbox, targets
from layers.notify.deliveries import Delivery, DeliveryState
from layers.notify.outbox import Channel, EventKind

router = APIRouter(prefix="/api/v1", tags=["notifications"])
Manager = Annotated[Principal, Depends(require_permission("manage_notifications"))]
SubscriptionId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class SubscriptionRequest(BaseModel):
    """A unit's (or, without one, the office's) subscription to events on one channel."""

    unit: str | None = Field(default=None, max_length=40, description="unit code; none: all")
    channel: Channel
    target: str = Field(min_length=1, max_length=2000,
                        examples=["https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"])
    secret: str | None = Field(default=None, max_length=200,
                               description="webhook HMAC key, or 钉钉's signing secret")
    events: list[EventKind] = Field(default=[], max_length=20,
                                    description="event kinds wanted; empty: all")


class SubscriptionOut(BaseModel):
    """A subscription as listed: the secret itself is never answered."""

    id: int
    unit: str | None
    channel: Channel
    target: str
    signed: bool
    events: list[str]
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, s: outbox.Subscription) -> SubscriptionOut:
        """The listing of a stored subscription."""
        return cls(id=s.id, unit=s.unit, channel=s.channel, target=s.target,
                   signed=bool(s.secret), events=s.events, created_by=s.created_by,
                   created_at=s.created_at)


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED)
def add_subscription(conn: Conn, settings: AppSettings, caller: Manager,
                     body: SubscriptionRequest) -> SubscriptionOut:
    """Subscribe a unit (or the office) to events; the target is checked first."""
    target = targets.check(body.channel, body.target,
                           allow_private=settings.webhook_allow_private)
    return SubscriptionOut.of(outbox.add(
        conn, unit=body.unit, channel=body.channel, target=target, secret=body.secret,
        events=list(body.events), created_by=caller.actor))


@router.get("/subscriptions")
def list_subscriptions(conn: Conn, _: Manager,
                       limit: Annotated[int, Query(ge=1, le=1000)] = 1000
                       ) -> list[SubscriptionOut]:
    """Subscriptions, oldest first."""
    return [SubscriptionOut.of(s) for s in outbox.list_all(conn, limit)]


@router.delete("/subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response)
def delete_subscription(conn: Conn, _: Manager, subscription_id: SubscriptionId) -> None:
    """Remove a subscription and its deliveries."""
    outbox.delete(conn, subscription_id)


@router.get("/deliveries")
def list_deliveries(conn: Conn, _: Manager,
                    state: Annotated[DeliveryState | None, Query()] = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[Delivery]:
    """Deliveries, newest first; ``state=dead`` lists those given up, with their last error."""
    return deliveries.list_deliveries(conn, state, limit)


@router.post("/deliveries/{delivery_id}/retry")
def retry_delivery(conn: Conn, _: Manager,
                   delivery_id: Annotated[str, Path(max_length=36)]) -> Delivery:
    """Send a dead delivery again (at the worker's next round)."""
    return deliveries.retry(conn, delivery_id)
