"""The frames an export crosses: the scene's east-north-up metres, glTF's y-up axes, and the Earth (ECEF).

- **glTF** is right-handed with +y up. An upright scene (x east, y north, z up) becomes (E, U, -N): a proper
  rotation of -90 degrees about x, baked into the Gaussians (positions, orientations and SH coefficients) rather
  than left to a node matrix, so every glTF reader sees the same splat.
- **3D Tiles** turns a glTF tile's y-up content back into z-up (+90 degrees about x) before the tile's
  ``transform``; the root ``transform`` then takes the local east-north-up frame to Earth-centred, Earth-fixed
  (ECEF) metres at the origin. Positions stay small (metres from the origin) in the content; only the transform
  holds ECEF's millions of metres, in float64.
- WGS 84 geodetic to ECEF and the ENU axes are the textbook formulas (EPSG method 9602 and 9837), written here so
  the compress container needs neither pyproj nor pycolmap; the tests check them against pyproj.
"""

from __future__ import annotations

import math

import numpy as np

from spaceport.transform import Similarity

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563
WGS84_E2 = WGS84_F * (2.0 - WGS84_F)

# glTF axes from ENU: x_gltf = E, y_gltf = U, z_gltf = -N (rows are the new axes in the old frame).
ENU_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def enu_to_gltf() -> Similarity:
    """The rotation from a z-up scene frame to glTF's y-up one (no scale, no offset)."""
    return Similarity(1.0, ENU_TO_GLTF, np.zeros(3))


def geodetic_to_ecef(latitude: float, longitude: float, height: float) -> np.ndarray:
    """(3,) ECEF metres of a WGS 84 position: degrees, and metres above the ellipsoid."""
    phi, lam = math.radians(latitude), math.radians(longitude)
    prime_vertical = WGS84_A / math.sqrt(1.0 - WGS84_E2 * math.sin(phi) ** 2)
    return np.array([
        (prime_vertical + height) * math.cos(phi) * math.cos(lam),
        (prime_vertical + height) * math.cos(phi) * math.sin(lam),
        (prime_vertical * (1.0 - WGS84_E2) + height) * math.sin(phi),
    ])  # fmt: skip


def enu_axes(latitude: float, longitude: float) -> np.ndarray:
    """(3, 3) the east, north and up unit vectors at a WGS 84 position, as columns in ECEF."""
    phi, lam = math.radians(latitude), math.radians(longitude)
    east = [-math.sin(lam), math.cos(lam), 0.0]
    north = [-math.sin(phi) * math.cos(lam), -math.sin(phi) * math.sin(lam), math.cos(phi)]
    up = [math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)]
    return np.array([east, north, up]).T


def enu_to_ecef_matrix(latitude: float, longitude: float, height: float) -> np.ndarray:
    """(4, 4) the affine map from east-north-up metres at the origin to ECEF metres."""
    matrix = np.eye(4)
    matrix[:3, :3] = enu_axes(latitude, longitude)
    matrix[:3, 3] = geodetic_to_ecef(latitude, longitude, height)
    return matrix


def column_major(matrix: np.ndarray) -> list[float]:
    """A 4x4 matrix as 3D Tiles and glTF store it: 16 numbers, column after column."""
    return [float(value) for value in np.asarray(matrix, dtype=np.float64).T.reshape(16)]
