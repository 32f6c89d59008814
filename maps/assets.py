"""Serve the map pages' JavaScript and CSS ourselves, so maps work with no internet.

folium links Leaflet, jQuery, Bootstrap, Font Awesome and its plugins' scripts from public
CDNs. The offices' networks (and our CI) may not reach them, and a map page that needs a CDN
shows nothing offline. The pages need only Leaflet and a few plugins; those ship in
``maps/static/vendor`` (each with its licence) and are linked from ``base_url``; our own
page script is ``maps/static/sitewatch``. :func:`inline_assets` turns a page into one
self-contained file for email.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any

import folium
from folium.plugins import Fullscreen, HeatMap, Search, VectorGridProtobuf

STATIC_DIR = Path(str(resources.files("maps") / "static"))

# The vendored file for each plugin we use: (attribute, key, path under vendor/).
_PLUGIN_FILES: dict[type, list[tuple[str, str, str]]] = {
    Fullscreen: [("default_js", "Control.Fullscreen.js",
                  "leaflet.fullscreen/Control.FullScreen.js"),
                 ("default_css", "Control.FullScreen.css",
                  "leaflet.fullscreen/Control.FullScreen.css")],
    HeatMap: [("default_js", "leaflet-heat.js", "leaflet.heat/leaflet-heat.js")],
    Search: [("default_js", "Leaflet.Search.js", "leaflet-search/dist/leaflet-search.min.js"),
             ("default_css", "Leaflet.Search.css", "leaflet-search/dist/leaflet-search.min.css")],
    VectorGridProtobuf: [("default_js", "vectorGrid",
                          "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js")],
}


def _vendor(base_url: str) -> str:
    return base_url.rstrip("/") + "/vendor"


def use_local_assets(fmap: folium.Map, base_url: str = "/static") -> folium.Map:
    """Point ``fmap`` and every plugin on it at the vendored files under ``base_url``."""
    vendor = _vendor(base_url)
    fmap.default_js = [("leaflet", f"{vendor}/leaflet/leaflet.js"),
                       ("sitewatch", f"{base_url.rstrip('/')}/sitewatch/sitewatch.js")]
    fmap.default_css = [("leaflet_css", f"{vendor}/leaflet/leaflet.css")]
    for child in _walk(fmap):
        for attribute, key, path in _PLUGIN_FILES.get(type(child), []):
            setattr(child, attribute, [(key, f"{vendor}/{path}")])
    return fmap


def _walk(element: Any) -> list[Any]:
    found = [element]
    for child in element._children.values():
        found += _walk(child)
    return found


def fullscreen_control(base_url: str = "/static") -> Fullscreen:
    """A fullscreen button whose script and style come from ``base_url``."""
    control = Fullscreen()  # type: ignore[no-untyped-call]  # folium's plugins are untyped
    for attribute, key, path in _PLUGIN_FILES[Fullscreen]:
        setattr(control, attribute, [(key, f"{_vendor(base_url)}/{path}")])
    return control


_LINK = re.compile(r'<link rel="stylesheet" href="(?P<url>[^"]+)"\s*/>')
_SCRIPT = re.compile(r'<script src="(?P<url>[^"]+)"></script>')


def inline_assets(html: str, base_url: str = "/static") -> str:
    """The page with every script and stylesheet under ``base_url`` inlined (for email).

    Anything else it links (basemap tiles, vector tiles from the server) still needs the
    network; the page says so in its legend.
    """
    prefix = base_url.rstrip("/") + "/"

    def local(url: str) -> Path | None:
        if not url.startswith(prefix):
            return None
        path = (STATIC_DIR / url[len(prefix):]).resolve()
        return path if path.is_file() and STATIC_DIR.resolve() in path.parents else None

    def script(match: re.Match[str]) -> str:
        path = local(match["url"])
        if path is None:
            return match[0]
        # "</script" inside a script would end it early; the vendored files have none, but
        # escaping the slash keeps that true whatever is vendored later.
        text = path.read_text(encoding="utf-8").replace("</script", "<\\/script")
        return f"<script>{text}</script>"

    def style(match: re.Match[str]) -> str:
        path = local(match["url"])
        return match[0] if path is None else f"<style>{path.read_text(encoding='utf-8')}</style>"

    return _SCRIPT.sub(script, _LINK.sub(style, html))
