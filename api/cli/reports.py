"""``sitewatch scores`` and ``sitewatch phases ...``: the ranking for meetings, on the terminal
or as a workbook, and the campaign phases it can be read by."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from api.cli.session import reported_errors, session
from layers.auth import scope
from layers.catalog import periods, phases
from layers.db.settings import Settings
from layers.errors import NotFound, ValidationFailed
from layers.supervision import handovers, score_sheet, scores

reports_app = typer.Typer()
phases_app = typer.Typer(help="Campaign phases (创建阶段) that scores can be read by.",
                         no_args_is_help=True)
reports_app.add_typer(phases_app, name="phases")
_SORTS: dict[str, scores.Sort] = {s: s for s in scores.SORTS}

_GROUPS: dict[str, scores.Group] = {g: g for g in scores.GROUPS}
DayOption = Annotated[str | None, typer.Option(help="YYYY-MM-DD, a local day, inclusive.")]


def _day(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{what} {text!r} is not a date (YYYY-MM-DD)") from None


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


@reports_app.command("scores")
def scores_command(
    group: Annotated[str, typer.Option(help="unit, community or site.")] = "unit",
    phase: Annotated[str | None, typer.Option(
        help="A campaign phase (attack, compliance, consolidation) instead of --since/--until."
    )] = None,
    year: Annotated[int | None, typer.Option(min=2000, max=2100,
                                             help="The phase's year (default: this year).")
                    ] = None,
    since: DayOption = None,
    until: DayOption = None,
    xlsx: Annotated[Path | None, typer.Option(help="Write the ranking to this XLSX file.")
                    ] = None,
    sort: Annotated[str, typer.Option(help=(
        "points, or a rate: rework_rate_adjusted, on_time_rate_adjusted, rework_rate,"
        " on_time_rate."))] = "points",
    street: Annotated[str | None, typer.Option(
        help="A street's code: that street's ranking, as its office's token reads it.")
                      ] = None,
) -> None:
    """Scores and rankings (谁丢分、谁负责): points at risk and lost, rework and on-time rates
    with their adjusted rates; the district's, or one street's with --street."""
    with reported_errors():
        chosen = _GROUPS.get(group)
        if chosen is None:
            raise ValidationFailed(f"group {group!r}: one of {', '.join(_GROUPS)}")
        order = _SORTS.get(sort)
        if order is None:
            raise ValidationFailed(f"sort {sort!r}: one of {', '.join(_SORTS)}")
    settings = Settings()
    zone, min_cases = settings.zone, settings.rank_min_cases
    with session(settings) as conn:
        street_name = _enter_street(conn, street) if street is not None else None
        period = periods.resolve(conn, zone, phase=phase, year=year, since=since,
                                 until=until, names=("--since", "--until")
                                 ).or_last(periods.RANKING_DAYS, datetime.now(zone))
        start, end = period.bounded
        rows = scores.ranking(conn, group=chosen, since=start, until=end, sort=order,
                              min_cases=min_cases)
        moves = handovers.matrix(conn, since=start, until=end) if xlsx else None
    zh_title, _ = score_sheet.title(chosen, start, end, period.phase, zone=zone,
                                    street=street_name)
    if xlsx is not None:
        xlsx.write_bytes(score_sheet.workbook(rows, chosen, start, end, zone=zone,
                                              phase=period.phase, min_cases=min_cases,
                                              handovers=moves, street=street_name))
        print(f"wrote {len(rows)} row(s) to {xlsx}")
        return
    # Made per call, so the width is the terminal's (COLUMNS) now, not at import.
    out = Console(highlight=False)
    table = Table(title=zh_title, caption=score_sheet.explanation(min_cases)[0])
    for label in ("排名", "编码", "名称", "问题数", "未结案", "超期未结", "风险分值", "失分",
                  "返工率", "返工率(调整)", "按期结案率", "按期结案率(调整)",
                  "平均整改用时(小时)"):
        table.add_column(label, justify="left" if label in ("编码", "名称") else "right")
    for r in rows:
        hours = "—" if r.avg_hours_to_rectify is None else f"{r.avg_hours_to_rectify:.1f}"
        rank = "案卷过少" if r.rank is None else str(r.rank)
        table.add_row(rank, r.code or "", r.name, str(r.issues), str(r.open),
                      str(r.overdue_open), f"{r.points_at_risk:.2f}", f"{r.points_lost:.2f}",
                      _percent(r.rework_rate), _percent(r.rework_rate_adjusted),
                      _percent(r.on_time_rate), _percent(r.on_time_rate_adjusted), hours)
    out.print(table)


def _enter_street(conn: psycopg.Connection[Any], code: str) -> str:
    """Scope the session to the street ``code`` (layers.auth.scope: what its office's token
    sees) and return its name; NotFound for anything but a street."""
    row = conn.execute("SELECT id, name FROM jurisdiction WHERE code = %s"
                       " AND level = 'street' AND parent_id IS NULL", [code]).fetchone()
    if row is None:
        raise NotFound(f"没有街道 {code!r} / no street {code!r}")
    scope.enter(conn, int(row[0]))
    return str(row[1])


@phases_app.command("list")
def phases_list(
    year: Annotated[int | None, typer.Option(min=2000, max=2100, help="Only this year.")] = None,
) -> None:
    """The campaign phases, by date."""
    with session() as conn:
        found = phases.list_phases(conn, year)
    for p in found:
        print(f"{p.year}  {p.code:14} {p.starts_on} – {p.ends_on}  {p.name_zh} {p.name_en}")


@phases_app.command("set")
def phases_set(
    code: Annotated[str, typer.Argument(help="e.g. attack, compliance, consolidation")],
    starts_on: Annotated[str, typer.Argument(help="First day, YYYY-MM-DD.")],
    ends_on: Annotated[str, typer.Argument(help="Last day, YYYY-MM-DD.")],
    name_zh: Annotated[str | None, typer.Option(help="e.g. 重点攻坚 (needed for a new code)")
                       ] = None,
    name_en: Annotated[str | None, typer.Option(help="e.g. Key attack (needed for a new code)")
                       ] = None,
) -> None:
    """Create or move a phase of the campaign year its first day falls in."""
    with session() as conn:
        phase = phases.set_phase(conn, code, _day(starts_on, "start"), _day(ends_on, "end"),
                                 name_zh=name_zh, name_en=name_en)
    print(f"{phase.year} {phase.code}: {phase.starts_on} – {phase.ends_on} "
          f"({phase.name_zh} {phase.name_en})")
