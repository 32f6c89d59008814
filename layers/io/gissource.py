"""The one GDAL data source an uploaded GIS file may be opened as, after a content check.

GDAL chooses a driver from a file's content, not its name: a ``.geojson`` holding a VRT or a
GDALG pipeline reads any file the server can read and fetches URLs. So each suffix names one
format, the first bytes must be that format's, and GDAL gets a source string that forces the
driver where GDAL has a prefix for it (``GeoJSON:``, ``GPKG:``). The path is always a local file
we wrote (never a string from the request). Zipped shapefiles are checked in ``gisfile``.
"""

from __future__ import annotations

from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, iterparse

from layers.errors import ValidationFailed

_GPKG_MAGIC = b"SQLite format 3\x00"
# The header's application_id: "GPKG" since GeoPackage 1.2, "GP10"/"GP11" before.
_GPKG_IDS = (b"GPKG", b"GP10", b"GP11")
_UTF8_BOM = b"\xef\xbb\xbf"


def gdal_source(path: Path, suffix: str) -> str:
    """The GDAL source string for ``path`` read as ``suffix`` says; ValidationFailed if the
    content is not that format."""
    if not path.is_file():
        raise ValidationFailed(f"{path.name}: not a file")
    if suffix in (".geojson", ".json"):
        _check_json(path)
        return f"GeoJSON:{path.resolve()}"
    if suffix == ".gpkg":
        # A GeoPackage cannot name other files; GDAL itself refuses one whose views or
        # triggers call its own SQL functions (which could fetch URLs).
        _check_gpkg(path)
        return f"GPKG:{path.resolve()}"
    if suffix == ".kml":
        # GDAL has no prefix for KML; only KML and LIBKML claim an XML document whose root is
        # <kml>, and both read it alone (LIBKML ignores network links and external styles).
        _check_kml(path)
        return str(path.resolve())
    raise ValueError(f"no GDAL source for suffix {suffix!r}")


def _check_json(path: Path) -> None:
    with path.open("rb") as file:
        head = file.read(4096)
    if not head.removeprefix(_UTF8_BOM).lstrip().startswith(b"{"):
        raise ValidationFailed(f"{path.name}: not a readable GeoJSON file (GeoJSON is JSON "
                               "that starts with '{')")


def _check_gpkg(path: Path) -> None:
    with path.open("rb") as file:
        header = file.read(100)
    if not header.startswith(_GPKG_MAGIC) or header[68:72] not in _GPKG_IDS:
        raise ValidationFailed(f"{path.name}: not a readable GeoPackage (damaged, truncated, "
                               "a plain SQLite database or another format named .gpkg)")


def _check_kml(path: Path) -> None:
    """Refuse anything but XML with a <kml> root, and any DTD (entities can expand without
    bound or name other files); only the prolog and root tag are read."""
    try:
        with path.open("rb") as file:
            for _, element in iterparse(file, events=("start",), forbid_dtd=True):
                if element.tag.rsplit("}", 1)[-1] == "kml":
                    return
                break
    except (DefusedXmlException, ParseError):
        raise ValidationFailed(f"{path.name}: not a readable KML file (not well-formed XML, "
                               "or it declares a DTD or entities)") from None
    raise ValidationFailed(f"{path.name}: not a readable KML file (its root is not <kml>)")
