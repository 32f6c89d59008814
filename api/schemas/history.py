"""An issue "as of" a moment (``GET /api/v1/issues/{id}?as_of=``): its answer of assignment
then, from its trail, and the versions of the lines valid then (layers.history)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.schemas.issues import IssueFeature
from layers import history


class LineVersion(BaseModel):
    """A version of a jurisdiction, site or responsibility rule, and when it held."""

    table: history.LineTable
    id: int
    version_id: int
    code: str | None = Field(description="a rule: category / community / site, '*' for any")
    name: str = Field(description="a rule: its task")
    unit: str | None
    valid_from: datetime
    valid_to: datetime | None = Field(description="null: still in force")


class Answer(BaseModel):
    """The issue's ground, site and units as the system answered then, by code and name."""

    jurisdiction: str | None
    jurisdiction_name: str | None
    site: str | None
    site_name: str | None
    territorial_unit: str | None
    territorial_unit_name: str | None
    functional_unit: str | None
    functional_unit_name: str | None
    lead_unit: str | None
    lead_unit_name: str | None
    on_boundary: bool | None
    outside_all: bool | None
    via_buffer: bool | None
    unknown: list[str] = Field(description=(
        "答案中无法从记录得知的字段 / fields of the answer the trail cannot tell (an admin's "
        "hand assignment records the unit it gave, not the one it took from); they are null"))


class AsOf(BaseModel):
    """The answer at ``at`` and the lines valid then."""

    at: datetime = Field(description="the moment answered for (reported: when the issue was "
                                     "recorded)")
    requested: str
    answer: Answer
    lines: list[LineVersion] = Field(description=(
        "versions valid then: the jurisdictions holding the point and those of the answer "
        "with their parents, the answer's site, the rules that could apply"))
    history_from: datetime | None = Field(description=(
        "the lines' history starts here; before it their versions are not known"))


class IssueAsOf(IssueFeature):
    """The issue as it is now, with its answer and lines as of the moment asked."""

    as_of: AsOf

    @classmethod
    def of(cls, now: IssueFeature, then: history.AsOf) -> IssueAsOf:
        """The feature with the as-of answer beside it."""
        return cls(**now.model_dump(), as_of=AsOf.model_validate(then, from_attributes=True))
