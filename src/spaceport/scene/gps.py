"""Where a scene lies on Earth: each photo's true WGS 84 position and the fix its GPS receiver writes.

GPS (``SceneConfig.gps``, on by default for the drone and the grid, as real drones write it): each photo's EXIF
carries the WGS 84 position of its camera, the world placed on Earth by ``GPS_SURVEY`` (origin, metres per world
unit, heading), with receiver noise and one deliberately wrong fix; ``ground_truth.json`` records the true and the
written positions and names the wrong one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spaceport.scene.cameras import CameraPose
from spaceport.scene.layouts import SceneConfig

WGS84_A, WGS84_F = 6378137.0, 1 / 298.257223563
WGS84_E2 = WGS84_F * (2 - WGS84_F)


@dataclass(frozen=True)
class GpsSurvey:
    """Where a scene lies on Earth and how its GPS receiver errs.

    Attributes:
        latitude, longitude: WGS 84 degrees of the world origin (deliberately not round: the pipeline picks its
            own, rounded, origin).
        altitude: metres of the world origin (the ground, z = 0), written as EXIF GPSAltitude.
        metres_per_unit: world units to metres (the drone's high ring is then 30 m out and 23 m up).
        heading_deg: the world's +x axis points this many degrees north of east.
        horizontal_noise_m, vertical_noise_m: standard deviation of each fix's error, independent from photo to
            photo (a consumer drone's error is larger but mostly a slow drift, which moves the whole scene).
        wrong_fix_m: east, north, up error of the one wrong fix (a multipath glitch), far beyond the noise.
    """

    latitude: float = 46.520871
    longitude: float = 6.565294
    altitude: float = 412.3
    metres_per_unit: float = 4.0
    heading_deg: float = 25.0
    horizontal_noise_m: float = 0.35
    vertical_noise_m: float = 0.5
    wrong_fix_m: tuple[float, float, float] = (31.0, -24.0, 9.0)

    def world_to_enu(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) world points as east, north, up metres from the world origin."""
        heading = math.radians(self.heading_deg)
        rotation = np.array([[math.cos(heading), -math.sin(heading), 0.0],
                             [math.sin(heading), math.cos(heading), 0.0], [0.0, 0.0, 1.0]])  # fmt: skip
        return self.metres_per_unit * np.asarray(points, dtype=np.float64) @ rotation.T


GPS_SURVEY = GpsSurvey()


def geodetic_to_ecef(lat_lon_alt: np.ndarray) -> np.ndarray:
    """(N, 3) WGS 84 latitude, longitude (degrees) and height (metres) to Earth-centred Cartesian metres."""
    lat, lon, alt = np.radians(lat_lon_alt[:, 0]), np.radians(lat_lon_alt[:, 1]), lat_lon_alt[:, 2]
    normal = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    return np.stack([(normal + alt) * np.cos(lat) * np.cos(lon), (normal + alt) * np.cos(lat) * np.sin(lon),
                     (normal * (1 - WGS84_E2) + alt) * np.sin(lat)], axis=1)  # fmt: skip


def ecef_to_geodetic(ecef: np.ndarray) -> np.ndarray:
    """(N, 3) Earth-centred metres back to latitude, longitude (degrees) and height (fixed-point iteration)."""
    x, y, z = ecef.T
    lon = np.arctan2(y, x)
    distance = np.hypot(x, y)
    lat = np.arctan2(z, distance * (1 - WGS84_E2))
    for _ in range(8):  # converges to well under a millimetre in a few rounds at any height a drone flies
        normal = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
        alt = distance / np.cos(lat) - normal
        lat = np.arctan2(z, distance * (1 - WGS84_E2 * normal / (normal + alt)))
    normal = WGS84_A / np.sqrt(1 - WGS84_E2 * np.sin(lat) ** 2)
    return np.stack([np.degrees(lat), np.degrees(lon), distance / np.cos(lat) - normal], axis=1)


def enu_to_geodetic(enu: np.ndarray, origin: tuple[float, float, float]) -> np.ndarray:
    """(N, 3) east, north, up metres around ``origin`` (latitude, longitude, height) to WGS 84 positions."""
    lat, lon = math.radians(origin[0]), math.radians(origin[1])
    axes = np.array([[-math.sin(lon), math.cos(lon), 0.0],
                     [-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat)],
                     [math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)]])  # fmt: skip
    return ecef_to_geodetic(geodetic_to_ecef(np.array([origin])) + np.asarray(enu, dtype=np.float64) @ axes)


@dataclass
class GpsFixes:
    """Each photo's true camera position on Earth, the fix written to its EXIF, and which fix is wrong."""

    survey: GpsSurvey
    true: np.ndarray  # (N, 3) latitude, longitude, altitude
    written: np.ndarray  # (N, 3) the same with receiver noise, and one wrong
    wrong_index: int

    def ground_truth(self, poses: list[CameraPose]) -> dict:
        survey = self.survey
        return {
            "origin": {"latitude": survey.latitude, "longitude": survey.longitude, "altitude_m": survey.altitude},
            "datum": "WGS 84; altitudes are EXIF GPSAltitude, made as ellipsoidal heights",
            "world_to_enu": {
                "metres_per_unit": survey.metres_per_unit,
                "heading_deg": survey.heading_deg,
                "meaning": "enu = metres_per_unit * Rz(heading_deg) @ world",
            },  # fmt: skip
            "noise_m": {"horizontal": survey.horizontal_noise_m, "vertical": survey.vertical_noise_m},
            "wrong_fix": poses[self.wrong_index].name,
            "images": [
                {"name": pose.name, "true": true.tolist(), "exif": written.tolist()}
                for pose, true, written in zip(poses, self.true, self.written, strict=True)
            ],  # fmt: skip
        }


def gps_fixes(config: SceneConfig, poses: list[CameraPose], survey: GpsSurvey = GPS_SURVEY) -> GpsFixes:
    """Every photo's position on Earth, then the fixes a drone's receiver would record (noise, one wrong)."""
    origin = (survey.latitude, survey.longitude, survey.altitude)
    true_enu = survey.world_to_enu(np.array([pose.center for pose in poses]))
    # A stream of its own: the poses' and textures' random draws stay what they were without GPS.
    rng = np.random.default_rng([config.seed, 0x475053])
    noise = rng.normal(size=true_enu.shape) * [survey.horizontal_noise_m, survey.horizontal_noise_m,
                                               survey.vertical_noise_m]  # fmt: skip
    wrong = int(rng.integers(len(poses)))
    noise[wrong] += survey.wrong_fix_m
    return GpsFixes(survey, enu_to_geodetic(true_enu, origin), enu_to_geodetic(true_enu + noise, origin), wrong)
