"""``/api/v1/scores``: who is losing points (谁丢分、谁负责), per unit, community or site; the
same ranking as a workbook for meetings (``/api/v1/scores.xlsx``); the line/block hand-over
matrix (``/api/v1/scores/handovers``); the campaign phases a ranking can be read by
(``/api/v1/scores/phases``); the street ranking of a district (``/api/v1/scores/streets``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import AppSettings, Conn
from api.gate import request_gate
from api.periods import read_period
from layers.analysis import budget
from layers.catalog import periods, phases
from layers.catalog.periods import Period
from layers.io.exports import MEDIA_TYPES
from layers.supervision import handovers, score_sheet, scores, street_ranking

router = APIRouter(prefix="/api/v1/scores", tags=["scores"])


def score_period(
    conn: Conn,
    settings: AppSettings,
    since: Annotated[str | None, Query(max_length=40, description=(
        "ISO 8601 date or date-time (a date: its first instant); default: 30 days before"
        " until"))] = None,
    until: Annotated[str | None, Query(max_length=40, description=(
        "ISO 8601 date or date-time, exclusive (a date: the whole day); default: now"))] = None,
    phase: Annotated[str | None, Query(max_length=40, description=(
        "a campaign phase (attack, compliance, consolidation, ...) instead of since/until"
    ))] = None,
    year: Annotated[int | None, Query(ge=2000, le=2100, description=(
        "the phase's campaign year; default: this year"))] = None,
) -> Period:
    """since/until, or a campaign phase of a year; never both."""
    found = read_period(conn, settings, since=since, until=until, phase=phase, year=year)
    return found.or_last(periods.RANKING_DAYS, datetime.now(settings.zone))


GroupQuery = Annotated[scores.Group, Query(description="unit, community or site")]
SortQuery = Annotated[scores.Sort, Query(description=(
    "points (default: points lost, then at risk), or a rate to rank by, worst first:"
    " rework_rate_adjusted, on_time_rate_adjusted (empirical Bayes, the ones offered),"
    " rework_rate, on_time_rate; under a rate, groups with fewer cases than"
    " SITEWATCH_RANK_MIN_CASES follow unranked (too_few_cases)"))]
PeriodDep = Annotated[Period, Depends(score_period)]


@router.get("", response_model=list[scores.Score])
def ranking(conn: Conn, request: Request, settings: AppSettings, period: PeriodDep,
            group: GroupQuery = "unit", sort: SortQuery = "points") -> list[scores.Score]:
    """Points at risk (open issues) and points lost (external assessment, overdue), with
    rework rate, on-time closure rate (each with its cases, 95 % Wilson interval and
    empirical-Bayes adjusted rate) and time to rectify, ranked worst first; issues count in
    the period by when they were reported, in whole local days (a bound inside a day takes
    the day). Counted from the tallies, whatever the number of issues; the ranking runs in an
    analysis slot (503 while all are busy)."""
    since, until = period.bounded
    with request_gate(request).slot():
        return scores.ranking(conn, group=group, since=since, until=until, sort=sort,
                              min_cases=settings.rank_min_cases)


@router.get("/streets", response_model=list[street_ranking.StreetScore],
            responses={s: {"content": {"application/problem+json": {}}}
                       for s in (401, 404, 422)})
def street_scores(
    conn: Conn, request: Request, settings: AppSettings, period: PeriodDep,
    by: Annotated[street_ranking.Measure, Query(description=(
        "the measure the list is ordered by, worst first: points_lost (扣分, default),"
        " on_time_rate (按期办结率), rework_rate (返工率)"))] = "points_lost",
    street: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_.-]{1,40}$",
                                        description="one street's code: its row alone, "
                                                    "ranked among all")] = None,
) -> list[street_ranking.StreetScore]:
    """The street ranking (街道排名) of the district for a period or campaign phase, as the
    assessors rank streets: points lost, on-time closure rate and rework rate, each street's
    rank on each (the rates raw, over streets with at least SITEWATCH_RANK_MIN_CASES cases);
    the same rules and tallies as the units' ranking, so a street's figures are its
    communities' sums. Every street is listed; an unknown ``street`` is 404."""
    since, until = period.bounded
    with request_gate(request).slot():
        return street_ranking.ranking(conn, since=since, until=until, by=by,
                                      min_cases=settings.rank_min_cases, street=street)


@router.get("/handovers", response_model=handovers.Matrix)
def handover_matrix(conn: Conn, request: Request, settings: AppSettings,
                    period: PeriodDep) -> handovers.Matrix:
    """The line/block hand-over matrix (条块移交矩阵): how often the issues reported in the
    period passed between territorial and functional units by reassignment, assignment and
    rework, per kind of pair and per pair of units, highest first. Bounded and gated as the
    ranking is."""
    since, until = period.bounded
    scores.check_budget(conn, since=since, until=until,
                        limit=budget.limits(settings))
    with request_gate(request).slot():
        return handovers.matrix(conn, since=since, until=until)


@router.get("/phases", response_model=list[phases.Phase])
def campaign_phases(
    conn: Conn, year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> list[phases.Phase]:
    """The campaign phases (重点攻坚, 全面达标, 巩固提高, ...), of one year or all, by date."""
    return phases.list_phases(conn, year)


# The router's prefix plus ".xlsx": /api/v1/scores.xlsx, a file beside the JSON ranking.
@router.get(".xlsx", response_class=Response, responses={
    200: {"content": {MEDIA_TYPES["xlsx"]: {}}, "description": "the ranking workbook"}})
def ranking_workbook(conn: Conn, request: Request, settings: AppSettings, period: PeriodDep,
                     group: GroupQuery = "unit", sort: SortQuery = "points") -> Response:
    """The ranking as an XLSX workbook for meetings: title, how to read the rates (Chinese,
    then English), bilingual headers, percentages; the hand-over matrix as a second sheet,
    the street ranking (街道排名) as a third; bounded and gated as the JSON ranking is."""
    since, until = period.bounded
    scores.check_budget(conn, since=since, until=until,
                        limit=budget.limits(settings))
    with request_gate(request).slot():
        rows = scores.ranking(conn, group=group, since=since, until=until, sort=sort,
                              min_cases=settings.rank_min_cases)
        moves = handovers.matrix(conn, since=since, until=until)
        streets = street_ranking.ranking(conn, since=since, until=until,
                                         min_cases=settings.rank_min_cases)
    body = score_sheet.workbook(rows, group, since, until, zone=settings.zone,
                                phase=period.phase, min_cases=settings.rank_min_cases,
                                handovers=moves, streets=streets)
    name = score_sheet.filename(group, since, until, zone=settings.zone)
    zh_name = f"得分排名-{name.removeprefix('scores-')}"
    return Response(body, media_type=MEDIA_TYPES["xlsx"], headers={
        "Content-Disposition": f"attachment; filename=\"{name}\"; "
                               f"filename*=UTF-8''{quote(zh_name)}"})
