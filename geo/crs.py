"""Coordinate reference systems met in China: WGS84, CGCS2000 and GCJ-02 ("Mars coordinates").

* **WGS84** (EPSG:4326) is what GPS receivers and every stored layer use.
* **CGCS2000** (EPSG:4490) is the national datum of official data (自然资源部 boundaries,
  surveys). Its realisation differs from WGS84 by a few centimetres, so — like pyproj, whose
  EPSG:4490 -> EPSG:4326 transformation is a null (ballpark) one — we treat the two as
  identical at the metre level that matters for assigning a point to a jurisdiction.
* **GCJ-02** (国测局坐标, "火星坐标") is what phone map SDKs in mainland China (AMap/Gaode,
  Tencent, the WeChat location API) return. It is WGS84 plus a deliberately obfuscating offset
  of a few hundred metres. The only definition of that offset is the forward formula that every
  open implementation shares (a polynomial/trigonometric series scaled on the Krasovsky 1940
  ellipsoid); there is no official inverse, so :func:`gcj02_to_wgs84` inverts the formula
  numerically. pyproj does not know GCJ-02, hence this module.
"""

from __future__ import annotations

from typing import Literal

import geopandas as gpd
import numpy as np
import shapely
from numpy.typing import ArrayLike, NDArray
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

__all__ = [
    "CGCS2000",
    "CRS_NAMES",
    "GCJ02",
    "WGS84",
    "CrsName",
    "gcj02_to_wgs84",
    "in_china_bbox",
    "lonlat_to_wgs84",
    "normalize_crs",
    "to_wgs84",
    "wgs84_to_gcj02",
]

FloatArray = NDArray[np.float64]

WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"
#: Canonical label for GCJ-02; not an EPSG code because GCJ-02 has none.
GCJ02 = "GCJ02"

#: The short names clients and importers give a CRS (API ``crs`` fields, ``--crs``).
CrsName = Literal["wgs84", "cgcs2000", "gcj02"]
#: Each short name's canonical label (see :func:`normalize_crs`).
CRS_NAMES: dict[CrsName, str] = {"wgs84": WGS84, "cgcs2000": CGCS2000, "gcj02": GCJ02}

_ALIASES = dict[str, str](CRS_NAMES.items()) | {
    "wgs 84": WGS84, "wgs-84": WGS84, "epsg:4326": WGS84, "4326": WGS84,
    "cgcs 2000": CGCS2000, "epsg:4490": CGCS2000, "4490": CGCS2000,
    "gcj-02": GCJ02, "gcj_02": GCJ02, "gcj 02": GCJ02,
}

# Krasovsky 1940 ellipsoid, on which the published GCJ-02 formula scales its offsets.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
# The rough mainland-China box every open implementation uses to decide whether to offset.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)
# 1e-9 degree is about 0.1 mm on the ground.
_INVERSE_TOL_DEG = 1e-9
# The offset's Jacobian is ~1e-3, so each iteration gains about three digits; 4 usually suffice.
_INVERSE_MAX_ITER = 30


def normalize_crs(name: str) -> str:
    """Return the canonical label of a coordinate reference system name.

    Parameters
    ----------
    name : str
        ``wgs84``, ``epsg:4326`` or ``4326``; ``cgcs2000``, ``epsg:4490``; ``gcj02`` or
        ``gcj-02`` (any case); any other EPSG code (``EPSG:4549`` or ``4549``), WKT or PROJ
        string that pyproj accepts.

    Returns
    -------
    str
        ``"EPSG:4326"``, ``"EPSG:4490"``, ``"GCJ02"``, ``"EPSG:<code>"`` when pyproj can
        identify an EPSG code, otherwise the CRS as WKT.

    Raises
    ------
    ValueError
        If the name is not a coordinate reference system we or pyproj know (the message is in
        English and Chinese, because it is shown to the people who import the files).

    Examples
    --------
    >>> normalize_crs("wgs84"), normalize_crs("GCJ-02"), normalize_crs("4549")
    ('EPSG:4326', 'GCJ02', 'EPSG:4549')
    >>> normalize_crs("+proj=utm +zone=51 +datum=WGS84 +units=m +no_defs")
    'EPSG:32651'
    """
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    user_input: str | int = int(key) if key.isdigit() else name.strip()
    try:
        crs = CRS.from_user_input(user_input)
    except CRSError as exc:
        raise ValueError(
            f"Unknown coordinate reference system {name!r}: use WGS84 (EPSG:4326), CGCS2000 "
            f"(EPSG:4490), GCJ-02, an EPSG code, WKT or a PROJ string. "
            f"无法识别的坐标系 {name!r}：请使用 WGS84（EPSG:4326）、CGCS2000（EPSG:4490）、"
            f"GCJ-02（火星坐标）、EPSG 代码、WKT 或 PROJ 字符串。"
        ) from exc
    authority = crs.to_authority()
    if authority is not None and authority[0] == "EPSG":
        return f"EPSG:{authority[1]}"
    return str(crs.to_wkt())


def in_china_bbox(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Tell which points fall in the rough mainland-China box where GCJ-02 applies an offset.

    The box (lon 72.004–137.8347, lat 0.8293–55.8271) is the customary test of the open
    implementations; it includes some neighbouring countries and the sea, which is what
    the phone SDKs do too. NaN coordinates are outside.

    Examples
    --------
    >>> in_china_bbox([120.70, 2.35], [31.31, 48.86]).tolist()
    [True, False]
    """
    lon_a, lat_a = _as_arrays(lon, lat)
    return (
        (lon_a >= _CHINA_LON[0]) & (lon_a <= _CHINA_LON[1])
        & (lat_a >= _CHINA_LAT[0]) & (lat_a <= _CHINA_LAT[1])
    )


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Shift WGS84 lon/lat to GCJ-02 with the published forward formula.

    Parameters
    ----------
    lon, lat : float or array_like
        WGS84 degrees; broadcast against each other.

    Returns
    -------
    tuple of numpy.ndarray
        GCJ-02 longitude and latitude, float64, in the broadcast shape of the inputs. Points
        outside :func:`in_china_bbox` are returned unchanged.

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(116.404, 39.915)
    >>> print(f"{lon:.9f} {lat:.9f}")
    116.410244499 39.916404282
    >>> wgs84_to_gcj02([2.35, 120.70], [48.86, 31.31])[0].round(5).tolist()
    [2.35, 120.70432]
    """
    lon_a, lat_a = _as_arrays(lon, lat)
    inside = in_china_bbox(lon_a, lat_a)
    gcj_lon, gcj_lat = lon_a.copy(), lat_a.copy()
    # Offsets only where they apply, so inf/NaN elsewhere never reach sin() and warn.
    dlon, dlat = _offset(lon_a[inside], lat_a[inside])
    gcj_lon[inside] += dlon
    gcj_lat[inside] += dlat
    return gcj_lon, gcj_lat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Recover WGS84 lon/lat from GCJ-02 by inverting the forward formula.

    GCJ-02 is defined only by its forward formula (:func:`wgs84_to_gcj02`); no official
    inverse exists. We solve ``forward(w) = g`` by fixed-point iteration
    ``w <- w - (forward(w) - g)`` starting from ``w = g``. The offset changes by about 1e-3
    degree per degree, so the iteration contracts fast and stops when every point's round
    trip is within 1e-9 degree (about 0.1 mm): the result is accurate to well under 0.01 m
    against the forward formula. The one-step "subtract the offset at g" shortcut common on the
    web is wrong by up to a few metres.

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 degrees; broadcast against each other.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitude and latitude, float64, in the broadcast shape of the inputs. Points
        outside :func:`in_china_bbox` are returned unchanged.

    Examples
    --------
    >>> lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(120.70, 31.31))
    >>> print(f"{lon:.9f} {lat:.9f}")
    120.700000000 31.310000000
    """
    gcj_lon, gcj_lat = _as_arrays(lon, lat)
    inside = in_china_bbox(gcj_lon, gcj_lat)
    g_lon, g_lat = gcj_lon[inside], gcj_lat[inside]
    w_lon, w_lat = g_lon.copy(), g_lat.copy()
    # The offset is applied without the box test while iterating: near the box edge the
    # masked forward is discontinuous and the iteration could oscillate across it.
    for _ in range(_INVERSE_MAX_ITER):
        dlon, dlat = _offset(w_lon, w_lat)
        err_lon = w_lon + dlon - g_lon
        err_lat = w_lat + dlat - g_lat
        w_lon -= err_lon
        w_lat -= err_lat
        if not err_lon.size or max(np.abs(err_lon).max(), np.abs(err_lat).max()) < (
                _INVERSE_TOL_DEG):
            break
    else:  # pragma: no cover - the map is a contraction; reaching here is a bug, say so
        raise ArithmeticError("GCJ-02 inverse did not converge / GCJ-02 逆变换未收敛")
    wgs_lon, wgs_lat = gcj_lon.copy(), gcj_lat.copy()
    wgs_lon[inside] = w_lon
    wgs_lat[inside] = w_lat
    return wgs_lon, wgs_lat


def lonlat_to_wgs84(
    lon: ArrayLike, lat: ArrayLike, crs: str
) -> tuple[FloatArray, FloatArray]:
    """Convert coordinate arrays in ``crs`` (GCJ-02 or anything pyproj knows) to WGS84.

    Parameters
    ----------
    lon, lat : float or array_like
        Coordinates in ``crs``: degrees for geographic systems, x/y (easting/northing) for
        projected ones. Broadcast against each other.
    crs : str
        Any name :func:`normalize_crs` accepts.

    Returns
    -------
    tuple of numpy.ndarray
        WGS84 longitude and latitude, float64, in the broadcast shape of the inputs.

    Examples
    --------
    >>> lon, lat = lonlat_to_wgs84(500000.0, 3465000.0, "EPSG:4549")
    >>> print(f"{lon:.6f} {lat:.6f}")
    120.000000 31.306891
    """
    label = normalize_crs(crs)
    x, y = _as_arrays(lon, lat)
    if label == GCJ02:
        return gcj02_to_wgs84(x, y)
    if label == WGS84:
        return x.copy(), y.copy()
    transformer = Transformer.from_crs(label, WGS84, always_xy=True)
    out_lon, out_lat = transformer.transform(x, y)
    return _as_arrays(out_lon, out_lat)


def to_wgs84(frame: gpd.GeoDataFrame, crs: str | None = None) -> gpd.GeoDataFrame:
    """Return a copy of ``frame`` in EPSG:4326, undoing GCJ-02 when the caller declares it.

    Parameters
    ----------
    frame : geopandas.GeoDataFrame
        Features in any CRS. GeoDataFrames cannot carry GCJ-02, so GCJ-02 data usually arrives
        labelled EPSG:4326 (e.g. from GeoJSON) or without a CRS; declare it with ``crs``.
    crs : str, optional
        What the coordinates really are (see :func:`normalize_crs`). ``None`` means trust
        ``frame.crs``. For GCJ-02 the frame's own CRS must be geographic or unset; for any other
        value it must be unset or equal to ``crs``, so a mislabelled file fails loudly instead
        of landing hundreds of metres off.

    Returns
    -------
    geopandas.GeoDataFrame
        Same rows and columns, geometries in EPSG:4326 (Z values are kept).

    Raises
    ------
    ValueError
        When the CRS is unknown, missing, or contradicts the frame's CRS.

    Examples
    --------
    >>> frame = gpd.GeoDataFrame(geometry=[shapely.Point(500000, 3465000)], crs="EPSG:4549")
    >>> p = to_wgs84(frame).geometry.iloc[0]
    >>> print(f"{p.x:.6f} {p.y:.6f}")
    120.000000 31.306891
    >>> gcj = gpd.GeoDataFrame(geometry=[shapely.Point(116.41024449916938, 39.91640428150164)])
    >>> p = to_wgs84(gcj, "gcj02").geometry.iloc[0]
    >>> print(f"{p.x:.9f} {p.y:.9f}")
    116.404000000 39.915000000
    """
    label = normalize_crs(crs) if crs is not None else None
    own = CRS.from_user_input(frame.crs) if frame.crs is not None else None
    if label is None and own is None:
        raise ValueError("The frame has no CRS and none was given / 数据未声明坐标系")
    if label == GCJ02:
        if own is not None and not own.is_geographic:
            raise ValueError(
                f"GCJ-02 was declared but the frame is in projected {frame.crs} / "
                f"声明为 GCJ-02，但数据为投影坐标系 {frame.crs}")
        geoms = shapely.transform(
            frame.geometry.to_numpy(), _gcj02_to_wgs84_xy, include_z=True)
        out = frame.copy()
        out[frame.geometry.name] = gpd.GeoSeries(geoms, index=frame.index, crs=WGS84)
        return out.set_crs(WGS84, allow_override=True)
    if label is not None:
        if own is None:
            return frame.set_crs(label).to_crs(WGS84)
        if own != CRS.from_user_input(label):
            raise ValueError(
                f"The frame declares {frame.crs} but {crs!r} was given / "
                f"数据声明坐标系 {frame.crs}，与指定的 {crs!r} 不符")
    return frame.to_crs(WGS84)


def _gcj02_to_wgs84_xy(coords: FloatArray) -> FloatArray:
    # shapely.transform hands over (N, 2) or (N, 3); only x and y move.
    out = coords.copy()
    out[:, 0], out[:, 1] = gcj02_to_wgs84(coords[:, 0], coords[:, 1])
    return out


def _as_arrays(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_a, lat_a = np.broadcast_arrays(
        np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    # broadcast_arrays returns read-only views; callers get arrays they own.
    return np.array(lon_a), np.array(lat_a)


def _offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 minus WGS84, in degrees, at WGS84 ``lon``/``lat`` (no box test)."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = 20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)
    # The series is in metres on the ellipsoid; the constants are the published ones.
    north = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
        + (common
           + 20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)
           + 160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y / 30.0 * np.pi)) * 2.0 / 3.0
    )
    east = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
        + (common
           + 20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)
           + 150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad_lat = np.radians(lat)
    w = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_w = np.sqrt(w)
    # Metres to degrees with the meridian and prime-vertical radii of curvature.
    meridian_radius = _KRASOVSKY_A * (1.0 - _KRASOVSKY_EE) / (w * sqrt_w)
    prime_vertical_radius = _KRASOVSKY_A / sqrt_w
    dlat = north * 180.0 / (meridian_radius * np.pi)
    dlon = east * 180.0 / (prime_vertical_radius * np.cos(rad_lat) * np.pi)
    return dlon, dlat

