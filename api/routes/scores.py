"""``/api/v1/scores``: who is losing points (谁丢分、谁负责), per unit or community."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.deps import Conn
from layers import scores
from layers.errors import ValidationFailed

router = APIRouter(prefix="/api/v1/scores", tags=["scores"])


class Score(BaseModel):
    """One unit's or community's standing in the period."""

    rank: int
    code: str
    name: str
    kind: str
    issues: int
    open: int
    overdue_open: int
    points_at_risk: float
    points_lost: float
    reworks: int
    on_time_rate: float | None


@router.get("", response_model=list[Score])
def ranking(
    conn: Conn,
    group: Annotated[Literal["unit", "community"], Query()] = "unit",
    since: Annotated[datetime | None, Query(description="default: 30 days ago")] = None,
    until: Annotated[datetime | None, Query(description="default: now")] = None,
) -> list[Score]:
    """Points at risk (open issues) and points lost (external assessment, overdue), ranked
    worst first; issues count in the period by when they were reported."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=30)
    if since.tzinfo is None or until.tzinfo is None:
        raise ValidationFailed("since and until need a time zone, e.g. 2026-05-01T00:00:00+08:00")
    if since >= until:
        raise ValidationFailed("since must be before until")
    return [Score.model_validate(r) for r in scores.ranking(conn, group=group, since=since,
                                                            until=until)]
