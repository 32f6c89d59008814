"""``sitewatch import ...`` and ``sitewatch export``: GIS files and spreadsheets in and out.

Imports are all or nothing; when a file has bad rows, each is printed on a line of its own
(``row N, field: message``) and the command exits 1 with nothing stored.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from api.cli.session import actor, err, session
from layers.db.settings import Settings
from layers.io import exports, imports

import_app = typer.Typer(help="Import GIS files and spreadsheets (all or nothing).",
                         no_args_is_help=True)
FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="GeoJSON, GeoPackage, zipped Shapefile, KML, "
                                              "CSV or XLSX.")]
CrsOption = Annotated[str | None, typer.Option(
    help="The file's coordinate system when it declares none: wgs84 (default for CSV/XLSX), "
         "cgcs2000, gcj02 or EPSG:xxxx.")]


def _import(what: str, run: Callable[[psycopg.Connection[Any]], imports.ImportReport]
            ) -> None:
    with session() as conn, err.status(f"importing {what}..."):
        report = run(conn)
    print(f"{report.kind}: {report.rows} row(s), {report.created} created, "
          f"{report.updated} updated")
    for repair in report.repaired:
        print(f"  row {repair['row']}: geometry repaired: {repair['repair']}")
    if report.reassigned:
        revision = report.reassigned.get("revision")
        stored = f"; stored as revision {revision}" if revision is not None else ""
        print(f"  open issues reassigned: {report.reassigned.get('changed', 0)} of "
              f"{report.reassigned.get('examined', 0)} changed{stored}")


@import_app.command("jurisdictions")
def import_jurisdictions(file: FileArg, crs: CrsOption = None) -> None:
    """Jurisdictions: code, name, level (street|community|grid), parent, [unit]."""
    _import("jurisdictions", lambda conn: imports.import_jurisdictions(
        conn, file, crs=crs, actor=actor()))


@import_app.command("sites")
def import_sites(
    file: FileArg,
    layer: Annotated[str | None, typer.Option(
        help="Site layer for every row (market, construction_site, ...).")] = None,
    crs: CrsOption = None,
) -> None:
    """Sites: name, layer (or --layer), [code, unit, buffer_m]; other columns are attributes."""
    _import("sites", lambda conn: imports.import_sites(
        conn, file, layer=layer, crs=crs, actor=actor()))


@import_app.command("issues")
def import_issues(file: FileArg, crs: CrsOption = None) -> None:
    """Issues: category, description, [reported_at, source, status] and a point or lon/lat."""
    _import("issues", lambda conn: imports.import_issues(
        conn, file, zone=Settings().zone, crs=crs, actor=actor(), actor_role="admin"))


@import_app.command("responsibilities")
def import_responsibilities(file: FileArg) -> None:
    """The task breakdown table (任务分解表): task, category, community or site, unit, ..."""
    _import("responsibility rules", lambda conn: imports.import_responsibilities(
        conn, file, actor=actor()))


def export(
    layer: Annotated[str, typer.Argument(
        help="jurisdictions, a site layer (market, construction_site, ...) or issues.")],
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="geojson, gpkg, csv or xlsx.")] = "geojson",
    out: Annotated[Path | None, typer.Option("--out", "-o",
                                             help="Output file (default LAYER.FORMAT).")] = None,
) -> None:
    """Export a layer to a GIS file or spreadsheet (EPSG:4326)."""
    target = out or Path(f"{layer}.{fmt}")
    with session() as conn, err.status(f"exporting {layer}..."):
        count = exports.export_layer(conn, layer, target, fmt=fmt)
    print(f"wrote {count} feature(s) to {target}")
