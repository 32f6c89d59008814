"""``sitewatch import ...`` and ``sitewatch export``: GIS files and spreadsheets in and out.

Imports are all or nothing; when a file has bad rows, each is printed on a line of its own
(``row N, field: message``) and the command exits 1 with nothing stored. ``--preview`` on the
imports of jurisdictions, sites and responsibilities prints what the import would do (rows,
open issues that would move per unit and per pair, points at risk, data quality) and stores
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer
from rich.console import Console
from rich.table import Table

from api.cli.session import actor, err, session
from api.services import map_pages
from layers import line_previews
from layers.db.settings import Settings
from layers.io import exports, import_preview, imports
from layers.preview import Preview
from maps.assets import inline_assets

out = Console(highlight=False)
#: The most from -> to pairs a preview prints (the largest; the counts cover them all).
TOP_PAIRS = 20

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


PreviewOption = Annotated[bool, typer.Option(
    "--preview", help="Show what the import would change (rows, open issues that would move "
                      "between units, points at risk, data quality); store nothing.")]


MapOption = Annotated[Path | None, typer.Option(
    "--map", help="With --preview: also write its map (lines now and in the file, the issues "
                  "that would move) as one self-contained FILE.html.")]


def _preview(kind: str, file: Path, *, crs: str | None = None, layer: str | None = None,
             map_file: Path | None = None) -> None:
    settings = Settings()
    html = None
    with session(settings) as conn, err.status(f"previewing {kind}..."):
        shown = import_preview.preview_import(conn, kind, file, crs=crs, layer=layer)
        token = line_previews.save(conn, shown, source=file.name, actor=actor())
        if token is not None and map_file is not None:
            html = map_pages.revision_preview(conn, token, zone=settings.zone,
                                              tianditu_key=settings.tianditu_key)
    print_preview(shown, file.name)
    if token is None:
        out.print("地图过大，未保存 the map would be too large; not kept")
        return
    out.print(f"地图 map (24 小时内有效 kept 24 h; 管理员或督查组令牌 admin or supervisor "
              f"token): /maps/revisions/preview/{token}")
    if html is not None and map_file is not None:
        map_file.write_text(inline_assets(html, "/static"), encoding="utf-8")
        out.print(f"{map_file}: {map_file.stat().st_size / 1e6:.2f} MB")


def _needs_preview(preview: bool, map_file: Path | None) -> None:
    if map_file is not None and not preview:
        raise typer.BadParameter("--map 需与 --preview 同用 / --map goes with --preview")


def print_preview(shown: Preview, name: str) -> None:
    """The preview's summary: Chinese labels first, then English; the largest pairs."""
    rows = shown.rows
    out.print(f"预览 preview of {name}: 未保存任何内容 nothing stored")
    out.print(f"行 rows: 新增 added {rows.added}, 删除 removed {rows.removed}, "
              f"变更 changed {rows.changed}")
    for label, codes, count in (("新增 added", rows.added_codes, rows.added),
                                ("删除 removed", rows.removed_codes, rows.removed),
                                ("变更 changed", rows.changed_codes, rows.changed)):
        if codes:
            more = f" (+{count - len(codes)} more)" if count > len(codes) else ""
            out.print(f"  {label}: {', '.join(codes)}{more}")
    out.print(f"在办问题 open issues: 检查 examined {shown.examined}, 将改变 would change "
              f"{shown.changed}, 牵头单位变更 lead unit changes {shown.lead_changed}; "
              f"转移分值 points at risk changing hands {shown.points_moved:g}")
    for repair in shown.repaired:
        out.print(f"  row {repair['row']}: 几何已修复 geometry repaired: {repair['repair']}")
    if shown.units:
        table = Table("单位 unit", "名称 name", "增加 gained", "减少 lost",
                      "增加分值 points gained", "减少分值 points lost")
        for u in shown.units:
            table.add_row(u.unit, u.name, str(u.gained), str(u.lost), f"{u.points_gained:g}",
                          f"{u.points_lost:g}")
        out.print(table)
    if shown.pairs:
        table = Table("原单位 from", "新单位 to", "问题 issues", "分值 points")
        for p in shown.pairs[:TOP_PAIRS]:
            table.add_row(p.from_unit or "(待分派 unassigned)", p.to_unit or
                          "(待分派 unassigned)", str(p.issues), f"{p.points:g}")
        out.print(table)
        if len(shown.pairs) > TOP_PAIRS:
            out.print(f"  前 {TOP_PAIRS} 对 top {TOP_PAIRS} of {len(shown.pairs)} pairs")
    if shown.quality is not None:
        out.print("数据质量 data quality: " + ", ".join(
            f"{k} {v}" for k, v in shown.quality.counts.items()))
        for finding in shown.quality.findings:
            out.print(f"  {finding.kind:15} {','.join(finding.codes)}  {finding.detail_zh}")


@import_app.command("jurisdictions")
def import_jurisdictions(file: FileArg, crs: CrsOption = None,
                         preview: PreviewOption = False, map_file: MapOption = None) -> None:
    """Jurisdictions: code, name, level (street|community|grid), parent, [unit]."""
    _needs_preview(preview, map_file)
    if preview:
        _preview("jurisdictions", file, crs=crs, map_file=map_file)
        return
    _import("jurisdictions", lambda conn: imports.import_jurisdictions(
        conn, file, crs=crs, actor=actor()))


@import_app.command("sites")
def import_sites(
    file: FileArg,
    layer: Annotated[str | None, typer.Option(
        help="Site layer for every row (market, construction_site, ...).")] = None,
    crs: CrsOption = None,
    preview: PreviewOption = False,
    map_file: MapOption = None,
) -> None:
    """Sites: name, layer (or --layer), [code, unit, buffer_m]; other columns are attributes."""
    _needs_preview(preview, map_file)
    if preview:
        _preview("sites", file, crs=crs, layer=layer, map_file=map_file)
        return
    _import("sites", lambda conn: imports.import_sites(
        conn, file, layer=layer, crs=crs, actor=actor()))


@import_app.command("issues")
def import_issues(file: FileArg, crs: CrsOption = None) -> None:
    """Issues: category, description, [reported_at, source, status] and a point or lon/lat."""
    _import("issues", lambda conn: imports.import_issues(
        conn, file, zone=Settings().zone, crs=crs, actor=actor(), actor_role="admin"))


@import_app.command("responsibilities")
def import_responsibilities(file: FileArg, preview: PreviewOption = False,
                            map_file: MapOption = None) -> None:
    """The task breakdown table (任务分解表): task, category, community or site, unit, ..."""
    _needs_preview(preview, map_file)
    if preview:
        _preview("responsibilities", file, map_file=map_file)
        return
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
