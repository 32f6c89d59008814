"""``sitewatch inspect``: plan inspection rounds (巡查/督查) and list them.

``inspect plan`` only proposes unless given ``--save``, so the office can try sizes and seeds
before committing to a round; the stored round keeps its seed and parameters.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.cli.session import actor, session
from layers.db.settings import Settings
from layers.inspections import rounds

inspect_app = typer.Typer(help="Inspection rounds (巡查/督查): plan the next one, list them.",
                          no_args_is_help=True)
out = Console(highlight=False)


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _parse_start(value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lon, lat = (float(v) for v in value.split(","))
    except ValueError:
        raise typer.BadParameter("give the start as LON,LAT (WGS84), e.g. 120.70,31.31"
                                 ) from None
    return lon, lat


def why(stop: rounds.PlannedStop) -> str:
    """Why a stop was drawn, for people: the community or layer whose turn it is (and when
    it was last visited), or its risk."""
    reason = stop.reason
    if reason.get("why") != "stratum":
        return "风险抽样"
    since = reason.get("rounds_since")
    ago = "从未到过" if since is None else f"{since}轮前到过"
    if reason.get("stratum") == "community":
        return f"轮到社区（{ago}）"
    return f"轮到{stop.layer_name}（{ago}）"


@inspect_app.command("plan")
def plan(
    size: Annotated[int, typer.Option(min=1, max=500, help="Places to visit.")] = 8,
    seed: Annotated[int | None, typer.Option(
        min=0, max=rounds.MAX_SEED, help="Random seed (default: drawn and shown).")] = None,
    cover_rounds: Annotated[int, typer.Option(
        min=1, max=52, help="Visit every community and layer within this many rounds.")] = 3,
    on: Annotated[str | None, typer.Option(
        "--date", help="The round's date, YYYY-MM-DD (default: last round + interval).")
    ] = None,
    interval_days: Annotated[int, typer.Option(min=1, max=366,
                                               help="Days between rounds.")] = 10,
    start: Annotated[str | None, typer.Option(help="Where the walk starts: LON,LAT.")] = None,
    save: Annotated[bool, typer.Option("--save",
                                       help="Store the round (default: only propose).")] = False,
) -> None:
    """Propose the next round: a risk-weighted random sample of sites as a walking route."""
    request = rounds.PlanRequest(
        size=size, seed=seed, cover_rounds=cover_rounds, planned_for=_parse_date(on),
        interval_days=interval_days, start=_parse_start(start))
    settings = Settings()
    with session(settings) as conn:
        result = (rounds.plan_and_store(conn, request, zone=settings.zone, created_by=actor())
                  if save else rounds.propose(conn, request, zone=settings.zone))
    table = Table("seq", "site", "layer", "community", "risk", "why 原因")
    for s in result.stops:
        table.add_row(str(s.seq), f"{s.site_code or ''} {s.site_name}", s.layer_name,
                      s.community_name or "-", f"{s.risk:.2f}", why(s))
    out.print(f"巡查轮次 round of {result.planned_for} · seed {result.seed} · "
              f"{result.size} stops · every community and layer within "
              f"{result.cover_rounds} rounds (minimum size {result.min_size})")
    out.print(table)
    out.print(f"路线全长 route length: {result.route_length_m:,.0f} m "
              f"(nearest neighbour alone: {result.greedy_length_m:,.0f} m)")
    if result.uncoverable:
        out.print("无场所的社区 communities without sites (not coverable): "
                  + ", ".join(result.uncoverable))
    if isinstance(result, rounds.StoredPlan):
        out.print(f"已保存 stored as round {result.id}")
    else:
        out.print("仅为预览 dry run: nothing stored; add --save to store this round "
                  f"(same seed: --seed {result.seed})")


@inspect_app.command("list")
def list_rounds(limit: Annotated[int, typer.Option(min=1, max=500)] = 20) -> None:
    """Stored rounds, newest first, with their progress."""
    with session() as conn:
        rows = rounds.list_rounds(conn, limit=limit)
    table = Table("id", "date", "status", "stops", "visited", "findings", "route m", "seed")
    for r in rows:
        table.add_row(str(r.id), str(r.planned_for), r.status, str(r.stops), str(r.visited),
                      str(r.findings), f"{r.route_length_m:,.0f}", str(r.seed))
    out.print(table)
