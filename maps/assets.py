"""Serve the map pages' JavaScript and CSS ourselves, so maps work with no internet.

folium links Leaflet, jQuery, Bootstrap and Font Awesome from public CDNs. The offices'
networks (and our CI) may not reach them, and a map page that needs a CDN shows nothing
offline. The pages only need Leaflet and the fullscreen control; those ship in
``maps/static/vendor`` (with their licences) and are linked from ``base_url``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import folium
from folium.plugins import Fullscreen

STATIC_DIR = Path(str(resources.files("maps") / "static"))


def _vendor(base_url: str) -> str:
    return base_url.rstrip("/") + "/vendor"


def use_local_assets(fmap: folium.Map, base_url: str = "/static") -> folium.Map:
    """Point ``fmap`` at the vendored Leaflet under ``base_url`` instead of the CDNs."""
    vendor = _vendor(base_url)
    fmap.default_js = [("leaflet", f"{vendor}/leaflet/leaflet.js")]
    fmap.default_css = [("leaflet_css", f"{vendor}/leaflet/leaflet.css")]
    return fmap


def fullscreen_control(base_url: str = "/static") -> Fullscreen:
    """A fullscreen button whose script and style come from ``base_url``."""
    vendor = _vendor(base_url) + "/leaflet.fullscreen"
    control = Fullscreen()  # type: ignore[no-untyped-call]  # folium's plugins are untyped
    control.default_js = [("Control.Fullscreen.js", f"{vendor}/Control.FullScreen.js")]
    control.default_css = [("Control.FullScreen.css", f"{vendor}/Control.FullScreen.css")]
    return control
