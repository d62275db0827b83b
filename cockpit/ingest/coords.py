"""Chinese web-map coordinates (GCJ-02, BD-09) back to WGS-84, for boundaries drawn on those maps.

GCJ-02 (国测局, used by AMap/Tencent) is WGS-84 shifted by a published nonlinear offset of a
few hundred metres; BD-09 (Baidu) is GCJ-02 shifted and rotated once more. Only the forward
transforms are published, so the inverses here are fixed-point iterations against them:
after a few steps the forward transform of the result reproduces the input to < 1e-9 degrees,
so the error is that of the forward formulas themselves (the public offset model, 1-2 m
against the official one), not of the inversion. Points outside mainland China are not
shifted by GCJ-02 and are left as they are.

Everything works on numpy arrays: a boundary file's vertices are converted in one call.
"""
from __future__ import annotations

import numpy as np

_A = 6378245.0                      # Krasovsky 1940 semi-major axis, as the GCJ-02 formula uses it
_EE = 0.00669342162296594323        # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0      # BD-09's own constant

_ITERATIONS = 30
_CONVERGED = 1e-10


def _in_china(lon, lat):
    return (lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271)


def _offset(lon, lat):
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
            + (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad) * np.pi)
    inside = _in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon, lat):
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_bd09(lon, lat):
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _invert(forward, lon, lat):
    """The point whose forward transform is (lon, lat): w <- w + (target - forward(w))."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wlon, wlat = lon.copy(), lat.copy()
    for _ in range(_ITERATIONS):
        flon, flat = forward(wlon, wlat)
        elon, elat = lon - flon, lat - flat
        wlon, wlat = wlon + elon, wlat + elat
        if np.all(np.abs(elon) < _CONVERGED) and np.all(np.abs(elat) < _CONVERGED):
            break
    return wlon, wlat


def gcj02_to_wgs84(lon, lat):
    return _invert(wgs84_to_gcj02, lon, lat)


def bd09_to_gcj02(lon, lat):
    return _invert(gcj02_to_bd09, lon, lat)


def bd09_to_wgs84(lon, lat):
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}


def xy_to_wgs84(system: str):
    """A function for shapely.transform: an (N, 2) array of lon/lat in `system` -> WGS-84."""
    convert = TO_WGS84[system]

    def apply(xy: np.ndarray) -> np.ndarray:
        lon, lat = convert(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])
    return apply
