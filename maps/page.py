"""What every map page shares: basemaps, the GCJ-02 shift, escaping, title, legend and the
page configuration read by ``static/sitewatch/sitewatch.js``."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from geo.crs import wgs84_to_gcj02
from maps.assets import fullscreen_control, use_local_assets

STATUS_COLOURS = {
    "reported": "#f39c12", "assigned": "#e67e22", "rectified": "#3498db",
    "verified": "#27ae60", "rejected": "#95a5a6", "duplicate": "#95a5a6",
}
# Open issues take the deadline traffic light's colour; closed ones their status colour.
LIGHT_COLOURS = {"green": "#27ae60", "yellow": "#f1c40f", "red": "#c0392b"}
TIANDITU = ("https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
            "&VERSION=1.0.0&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
            "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}")
GAODE = ("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
         "&x={x}&y={y}&z={z}")
# Where the basemaps' tiles come from (folium's "OpenStreetMap" and the two above): the
# pages' Content-Security-Policy admits images from these and nowhere else (api.guards).
BASEMAP_ORIGINS = ("https://tile.openstreetmap.org", "https://*.tianditu.gov.cn",
                   "https://*.is.autonavi.com")
BLANK_TILE = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42"
              "mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")
# The GCJ-02 offset is sampled on this lattice (degrees, ≈ 1 km) and interpolated in the
# browser: the offset's shortest wave is ~30 km, so bilinear interpolation is within
# centimetres, and the published formula lives once, in geo.crs.
SHIFT_STEP = 0.01


# The tally job folds every 2 s; a lag beyond this means the worker is down or swamped, and a
# reader should know the latest reports are not in the counts yet.
BEHIND_SHOWN = timedelta(seconds=30)


@dataclass(frozen=True)
class AsOf:
    """When a page's analysis was computed (district time) and whether data changed since
    (then a newer one is being computed: layers/analysis/snapshots.py)."""

    computed_at: datetime
    current: bool = True
    # How far the counts are behind the reports (the tallies' lag: layers.analysis.tallies).
    behind: timedelta = timedelta(0)

    def text(self, t: dict[str, str]) -> str:
        """The line the page shows, e.g. "统计于 2026-11-26 09:10（数据已变动，正在更新）"."""
        line = f'{t["as_of"]} {self.computed_at:%Y-%m-%d %H:%M}'
        if self.behind >= BEHIND_SHOWN:
            seconds = self.behind.total_seconds()
            line += t["behind"].format(t["minutes"].format(round(seconds / 60))
                                       if seconds >= 60 else t["seconds"].format(round(seconds)))
        return line if self.current else f'{line} {t["updating"]}'


@dataclass(frozen=True)
class PeriodMenu:
    """The period a page shows and the choices of its period form."""

    phases: Sequence[tuple[str, str]] = ()  # (value "code:year", label)
    selection: Mapping[str, str] = field(default_factory=dict)  # phase or since/until chosen
    label: str = ""  # the period in the page's language; empty: all time

    def text(self, t: dict[str, str], as_of: AsOf | None = None) -> str:
        """The line the page shows, e.g. "时段: 2026 巩固提高 · 统计于 2026-11-26 09:10"."""
        period = f'{t["period"]}: {self.label or t["all_time"]}'
        return f"{period} · {as_of.text(t)}" if as_of else period


@dataclass(frozen=True)
class PageOptions:
    """Per-request page settings."""

    zone: tzinfo  # the district's time zone (the settings): times are shown in it
    lang: str = "zh"
    static_url: str = "/static"
    tianditu_key: str = ""
    # Where vector tiles come from; None: a standalone page without a server.
    tiles_url: str | None = "/tiles/issues/{z}/{x}/{y}.mvt"


def escape_frame(frame: gpd.GeoDataFrame | pd.DataFrame, zone: tzinfo) -> Any:
    """Text columns HTML-escaped, timestamps as "YYYY-MM-DD HH:MM" local in ``zone``,
    missing as "".

    folium's popups and tooltips build HTML from property values, so user input (site names,
    descriptions) must arrive escaped: ``<img onerror=...>`` then shows as text.
    """
    out = frame.copy()
    geometry = out.geometry.name if isinstance(out, gpd.GeoDataFrame) else None
    for column in out.columns:
        if column == geometry:
            continue
        values = out[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            if getattr(values.dt, "tz", None) is not None:
                values = values.dt.tz_convert(zone)
            out[column] = values.dt.strftime("%Y-%m-%d %H:%M").fillna("")
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            out[column] = values.map(lambda v: "" if v is None or v is pd.NaT
                                     else html.escape(str(v)))
    return out


def basemaps(fmap: folium.Map, t: dict[str, str], options: PageOptions) -> None:
    """OpenStreetMap (default), Tianditu when a key is set, AutoNavi (GCJ-02), none."""
    folium.TileLayer("OpenStreetMap", name=t["basemap_osm"]).add_to(fmap)
    if options.tianditu_key:
        folium.TileLayer(
            TIANDITU.replace("{layer}", "vec").replace("{key}", options.tianditu_key),
            name=t["basemap_tianditu"], attr="© 天地图 Tianditu", subdomains="01234567",
            max_zoom=18, show=False).add_to(fmap)
    folium.TileLayer(GAODE, name=t["basemap_gaode"], attr="© 高德地图 AutoNavi",
                     subdomains="1234", max_zoom=18, sw_gcj=True, show=False).add_to(fmap)
    # A base layer with no tiles: the map is readable offline without failed tile requests.
    folium.TileLayer(BLANK_TILE, name=t["basemap_none"], attr=" ", show=False).add_to(fmap)
    if options.tianditu_key:
        folium.TileLayer(
            TIANDITU.replace("{layer}", "cva").replace("{key}", options.tianditu_key),
            name=t["basemap_tianditu_label"], attr="© 天地图 Tianditu", subdomains="01234567",
            overlay=True, show=False, max_zoom=18).add_to(fmap)


def shift_lattice(bounds: Sequence[float]) -> dict[str, Any]:
    """The GCJ-02 offset (degrees) on a lattice covering ``bounds`` (minx, miny, maxx, maxy)
    with a margin, for the browser to shift overlays when a GCJ-02 basemap is chosen."""
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    lon0, lat0 = np.floor(minx / SHIFT_STEP) * SHIFT_STEP - SHIFT_STEP, \
        np.floor(miny / SHIFT_STEP) * SHIFT_STEP - SHIFT_STEP
    nx = int(np.ceil((maxx - lon0) / SHIFT_STEP)) + 2
    ny = int(np.ceil((maxy - lat0) / SHIFT_STEP)) + 2
    lon, lat = np.meshgrid(lon0 + SHIFT_STEP * np.arange(nx), lat0 + SHIFT_STEP * np.arange(ny))
    glon, glat = wgs84_to_gcj02(lon.ravel(), lat.ravel())
    return {"lon0": round(float(lon0), 6), "lat0": round(float(lat0), 6), "step": SHIFT_STEP,
            "nx": nx, "ny": ny,
            "dlon": np.round(glon - lon.ravel(), 9).tolist(),
            "dlat": np.round(glat - lat.ravel(), 9).tolist()}


def add_html(fmap: folium.Map, markup: str, *, to: str = "html") -> None:
    """Add raw ``markup`` to the page's body (``to="html"``) or head (``to="header"``).

    The caller escapes what it puts in. (folium's root Figure declares no types for its
    ``html``/``header`` elements; this is the one place that reaches them.)
    """
    getattr(fmap.get_root(), to).add_child(folium.Element(markup))


def add_title(fmap: folium.Map, text: str, subtitle: str = "") -> None:
    """The page title, top left, escaped."""
    sub = f'<div id="sw-subtitle" style="font-size:12px">{html.escape(subtitle)}</div>' \
        if subtitle else ""
    block = (f'<div id="sw-head" style="position:absolute;z-index:1000;left:150px;top:4px;'
             f'max-width:calc(100% - 420px);background:#fffd;padding:2px 8px;'
             f'border-radius:4px;font:13px sans-serif"><h3 id="sw-title" style="margin:2px 0;'
             f'font-size:16px">{html.escape(text)}</h3>{sub}</div>')
    add_html(fmap, block)


def add_legend(fmap: folium.Map, title: str, rows: list[tuple[str, str]],
               notes: Sequence[str] = ()) -> None:
    """A legend box, bottom right: (colour, label) rows, then notes; all escaped."""
    items = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;margin-right:4px;'
        f'vertical-align:middle;background:{html.escape(colour)};border:1px solid #555">'
        f'</span>{html.escape(label)}</div>' for colour, label in rows)
    extra = "".join(f'<div style="color:#555;margin-top:4px">{html.escape(n)}</div>'
                    for n in notes)
    block = (f'<div id="sw-legend" class="leaflet-control" style="position:absolute;'
             f'z-index:1000;right:10px;bottom:24px;background:#fffe;padding:6px 8px;'
             f'border-radius:4px;font:12px sans-serif;max-width:240px;max-height:45vh;'
             f'overflow:auto"><b>{html.escape(title)}</b>{items}{extra}</div>')
    add_html(fmap, block)


def add_period_form(fmap: folium.Map, t: dict[str, str], menu: PeriodMenu, lang: str,
                    extra: str = "") -> None:
    """A plain GET form: the server builds the page for the chosen period (phase or days).
    ``extra`` is the page's own fields (markup the caller escaped), before the button."""
    sel = menu.selection
    phase_options = [f'<option value="">{html.escape(t["all_time"])}</option>'] + [
        f'<option value="{html.escape(v)}"{" selected" if sel.get("phase") == v else ""}>'
        f'{html.escape(label)}</option>' for v, label in menu.phases]
    form = (
        f'<form id="sw-period" method="get" style="position:absolute;z-index:1000;left:50px;'
        f'top:62px;background:#fffd;padding:4px 8px;border-radius:4px;font:12px sans-serif">'
        f'<input type="hidden" name="lang" value="{"en" if lang == "en" else "zh"}">'
        f'<label>{html.escape(t["phase"])} <select name="phase">{"".join(phase_options)}'
        f'</select></label> <label>{html.escape(t["since"])} <input type="date" name="since"'
        f' value="{html.escape(sel.get("since", ""))}"></label> '
        f'<label>{html.escape(t["until"])} <input type="date" name="until"'
        f' value="{html.escape(sel.get("until", ""))}"></label>{extra}'
        f' <button type="submit">{html.escape(t["apply"])}</button></form>')
    add_html(fmap, form)


def add_config(fmap: folium.Map, config: dict[str, Any]) -> None:
    """``window.SW``: what sitewatch.js needs (map name, labels, lattice, layers)."""
    text = json.dumps({"map": fmap.get_name(), **config}, ensure_ascii=False)
    # JSON inside <script>: "<" escaped so no value can close the element.
    text = text.replace("<", "\\u003c")
    script = f"<script>window.SW = {text};</script>"
    add_html(fmap, script, to="header")


def new_map(bounds: Sequence[float] | None) -> folium.Map:
    """A map with a scale bar, canvas rendering, no default tiles, fitted to ``bounds``."""
    fmap = folium.Map(tiles=None, control_scale=True, prefer_canvas=True)
    if bounds is not None and np.all(np.isfinite(bounds)):
        fmap.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    return fmap


def layer_control(fmap: folium.Map, options: PageOptions, *, collapsed: bool = False
                  ) -> folium.LayerControl:
    """The full-screen button and the layer switcher (folded, ``collapsed``, on a phone page)."""
    fullscreen_control(options.static_url).add_to(fmap)
    control = folium.LayerControl(collapsed=collapsed)
    control.add_to(fmap)
    return control


def finish(fmap: folium.Map, control: folium.LayerControl, bounds: Sequence[float] | None,
           t: dict[str, str], options: PageOptions, **config: Any) -> folium.Map:
    """The page's configuration for sitewatch.js (its words ``t``, the layer switcher, the
    GCJ-02 lattice over ``bounds`` and the page's own ``config``), then the map served with
    the project's own scripts and styles."""
    add_config(fmap, {"t": t, "control": control.get_name(), **config,
                      "shift": shift_lattice(bounds) if bounds is not None else None})
    return use_local_assets(fmap, options.static_url)
