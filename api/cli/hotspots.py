"""``sitewatch hotspots``: significant hotspot areas, cells or emerging hotspots to a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import geopandas as gpd
import typer
from rich.console import Console

from api.cli.session import reported_errors, session
from api.schemas.hotspots import HotspotCollection
from api.services.hotspot_features import area_features, cell_features, emerging_features
from layers.analysis import hotspots
from layers.analysis.hotspots import DEFAULTS
from layers.assignment import load_assigner
from layers.catalog import periods
from layers.db.settings import Settings
from layers.errors import ValidationFailed

out = Console(highlight=False)
Output = Literal["areas", "cells", "emerging"]


def hotspots_command(
    out_file: Annotated[Path, typer.Option("--out", help="FILE.geojson or FILE.gpkg")],
    period: Annotated[str | None, typer.Option(
        help="START/END in ISO 8601 dates or date-times, e.g. 2026-05-01/2026-11-20 (a date"
             " as the end: the whole day; default: all issues).")
    ] = None,
    output: Annotated[str, typer.Option(help="areas, cells or emerging.")] = "areas",
    method: Annotated[str, typer.Option(help="h3 or fishnet.")] = DEFAULTS.method,
    resolution: Annotated[int, typer.Option(help="H3 resolution.")] = DEFAULTS.resolution,
    ring: Annotated[int, typer.Option(help="Neighbours within this many rings.")
                    ] = DEFAULTS.ring,
    category: Annotated[list[str] | None, typer.Option(help="Category code (repeatable).")
                        ] = None,
    layer: Annotated[str | None, typer.Option(help="Only issues at sites of this layer.")
                     ] = None,
    confidence: Annotated[int, typer.Option(help="90, 95 or 99.")] = DEFAULTS.confidence,
) -> None:
    """Getis-Ord Gi* hotspots with FDR (areas split by jurisdiction, or cells), or emerging
    hotspots in 10-day steps, written as GeoJSON or GeoPackage."""
    with reported_errors():
        if output not in ("areas", "cells", "emerging"):
            raise ValidationFailed("--output 须为 areas、cells 或 emerging / must be areas,"
                                   " cells or emerging")
        suffix = out_file.suffix.lower()
        if suffix not in (".geojson", ".json", ".gpkg"):
            raise ValidationFailed("--out 须为 .geojson 或 .gpkg 文件 / --out must end in"
                                   " .geojson or .gpkg")
        settings = Settings()
        found = periods.parse_range(period, settings.zone)
        query = hotspots.HotspotQuery(
            method="fishnet" if method == "fishnet" else "h3", resolution=resolution,
            ring=ring, since=found.since, until=found.until,
            categories=tuple(sorted(category or ())), layer=layer, confidence=confidence)
    with session(settings) as conn:
        assigner = load_assigner(conn)
        if output == "emerging":
            features = emerging_features(hotspots.emerging(conn, assigner, query))
        else:
            result = hotspots.hotspots(conn, assigner, query)
            jurisdictions, units = hotspots.names(conn)
            features = (cell_features(result.cells) if output == "cells" else
                        area_features(result.areas, jurisdictions, units))
    body = HotspotCollection(features=features, parameters={"output": output}).model_dump(
        mode="json", exclude_none=True)
    if suffix == ".gpkg":
        frame = gpd.GeoDataFrame.from_features(body["features"], crs="EPSG:4326")
        for column in frame.columns:
            if frame[column].map(lambda v: isinstance(v, list | dict)).any():
                frame[column] = frame[column].map(lambda v: json.dumps(v, ensure_ascii=False))
        frame.to_file(out_file, driver="GPKG", layer=output)
    else:
        out_file.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
    out.print(f"wrote {len(features)} {output} feature(s) to {out_file}")
