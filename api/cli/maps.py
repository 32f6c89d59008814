"""``sitewatch map``: the map pages as standalone HTML files (for email)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.cli.session import reported_errors, session
from api.services import map_pages
from layers.analysis.snapshots import Snapshots
from layers.db.settings import Settings
from layers.errors import ValidationFailed
from layers.supervision import orders
from maps.assets import inline_assets
from maps.page import PageOptions

out = Console(highlight=False)


def map_command(
    out_file: Annotated[Path, typer.Option("--out", help="FILE.html to write.")],
    page: Annotated[str, typer.Option(help="overview, hotspots or unit.")] = "overview",
    unit: Annotated[str | None, typer.Option(help="Unit code (with --page unit).")] = None,
    lang: Annotated[str, typer.Option(help="zh or en.")] = "zh",
    phase: Annotated[str | None, typer.Option(
        help="Campaign phase code (overview/hotspots).")] = None,
    year: Annotated[int | None, typer.Option(help="Campaign year of --phase.")] = None,
    since: Annotated[str | None, typer.Option(
        help="First day YYYY-MM-DD (overview/hotspots).")] = None,
    until: Annotated[str | None, typer.Option(
        help="Last day YYYY-MM-DD (overview/hotspots).")] = None,
) -> None:
    """Write a map page as one self-contained HTML file: scripts and styles inlined, no
    server needed. Basemap tiles still load from the internet when there is one; single
    issues (vector tiles) need the server, so the file carries the H3 counts instead. The
    analysis is current (a stale snapshot is computed again and stored). A unit page embeds
    the unit's supervision orders: send it to that unit only."""
    with reported_errors():
        if page not in ("overview", "hotspots", "unit"):
            raise ValidationFailed("--page 须为 overview、hotspots 或 unit / --page must be"
                                   " overview, hotspots or unit")
        if page == "unit" and not unit:
            raise ValidationFailed("--page unit 需要 --unit / --page unit needs --unit")
    settings = Settings()
    zone = settings.zone
    options = PageOptions(zone=zone, lang="en" if lang == "en" else "zh",
                          tianditu_key=settings.tianditu_key, tiles_url=None)
    with session(settings) as conn:
        period = map_pages.parse_period(conn, settings, phase, year, since, until)
        if page == "overview":
            html = map_pages.overview(conn, Snapshots(), period, zone=zone, options=options)
        elif page == "hotspots":
            html = map_pages.hotspots_page(conn, Snapshots(), zone=zone, options=options,
                                           period=period)
        else:
            assert unit is not None
            rows = orders.list_orders(
                conn, orders.OrderFilter(unit=unit, limit=500))[0]
            html = map_pages.unit(conn, unit, zone=zone, orders=rows, options=options)
    out_file.write_text(inline_assets(html, options.static_url), encoding="utf-8")
    out.print(f"{out_file}: {out_file.stat().st_size / 1e6:.2f} MB")
