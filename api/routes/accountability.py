"""``/api/v1/accountability``: the 问责 register of one unit for a period."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AliasChoices, BaseModel, Field

from api.auth import Caller
from api.deps import AppSettings, Conn
from api.periods import read_period
from layers.auth import access
from layers.issues.records import IssueEvent
from layers.supervision import accountability

router = APIRouter(prefix="/api/v1/accountability", tags=["scores"])

# The register's "overdue" (a public field name, kept) is layers' ran_past_deadline.
_RAN_PAST = AliasChoices("ran_past_deadline", "overdue")


class Entry(BaseModel):
    """An issue the unit is answerable for."""

    public_id: str
    category: str
    category_zh: str
    points: float
    source: str
    status: str
    reported_at: datetime
    deadline: datetime | None
    closed_at: datetime | None
    rework_count: int
    overdue: bool = Field(validation_alias=_RAN_PAST, description=(
        "超时：截止后仍未办结，或在截止后才办结 / ran past its deadline: still open after it, or"
        " closed after it (wider than an issue's `overdue`, which is open and past it now)"))
    hours_late: float | None
    found_by_assessors: bool
    events: list[IssueEvent]


class RegisterUnit(BaseModel):
    """The unit the register is about."""

    code: str
    name: str
    leader: str | None


class Register(BaseModel):
    """The unit's register for the period, with totals."""

    unit: RegisterUnit
    since: datetime
    until: datetime
    overdue: int = Field(validation_alias=_RAN_PAST, description=(
        "超时问题数 / entries that ran past their deadline (open after it or closed after it)"))
    reworks: int
    found_by_assessors: int
    points_lost: float
    entries: list[Entry]


@router.get("", response_model=Register)
def unit_register(
    conn: Conn,
    caller: Caller,
    unit: Annotated[str, Query(max_length=40, description="unit code")],
    settings: AppSettings,
    since: Annotated[str, Query(min_length=1, max_length=40, description=(
        "ISO 8601 date or date-time (a date: its first instant)"))],
    until: Annotated[str, Query(min_length=1, max_length=40, description=(
        "ISO 8601 date or date-time, exclusive (a date: the whole day)"))],
) -> Register:
    """Issues the unit let run overdue, had to redo (返工) or lost at external assessment,
    each with its audit trail."""
    since_at, until_at = read_period(conn, settings, since=since, until=until).bounded
    found = accountability.register(conn, unit, since=since_at, until=until_at)
    access.require_own_unit(caller, found.unit.id, "read_accountability",
                            "accountability register")
    return Register.model_validate(found, from_attributes=True)
