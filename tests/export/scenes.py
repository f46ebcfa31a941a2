"""Synthetic splats for the export tests: random clouds, a marked scene on Earth, a sky shell, a georef.json."""

from __future__ import annotations

import math

import numpy as np

from spaceport.gaussians import SH_C0, GaussianCloud, concatenate
from spaceport.train.background import SHELL_GAUSSIANS
from spaceport.transform import fibonacci_sphere

# Lausanne's lake shore, as the drone sample scene's GPS places it.
ORIGIN = {"latitude": 46.5209, "longitude": 6.5653, "altitude_m": 413.0}
MARKER_COLOURS = {"east": (1.0, 0.1, 0.1), "north": (0.1, 1.0, 0.1), "up": (0.1, 0.2, 1.0)}
MARKER_OFFSETS = {"east": (10.0, 0.0, 0.0), "north": (0.0, 10.0, 0.0), "up": (0.0, 0.0, 10.0)}


def random_cloud(count: int, degree: int = 3, spread: float = 20.0, seed: int = 0) -> GaussianCloud:
    """Gaussians with every attribute drawn at random, inside the ranges SPZ can hold."""
    rng = np.random.default_rng(seed)
    rest = (degree + 1) ** 2 - 1
    return GaussianCloud(
        means=rng.uniform(-spread, spread, (count, 3)),
        sh0=rng.uniform(-2.0, 2.0, (count, 3)),
        shN=rng.uniform(-0.9, 0.9, (count, rest, 3)),
        opacities=rng.uniform(-4.0, 4.0, count),
        log_scales=rng.uniform(-6.0, 1.0, (count, 3)),
        quats=rng.normal(size=(count, 4)),
    )


def _flat_gaussians(centres: np.ndarray, colour: tuple[float, float, float], sigma: float,
                    thin: float) -> GaussianCloud:  # fmt: skip
    """Opaque discs lying flat (their thin axis up), one colour, SH degree 1 left at zero."""
    count = len(centres)
    return GaussianCloud(
        means=centres,
        sh0=np.tile((np.array(colour) - 0.5) / SH_C0, (count, 1)),
        shN=np.zeros((count, 3, 3)),
        opacities=np.full(count, 4.0),
        log_scales=np.tile(np.log([sigma, sigma, thin]), (count, 1)),
        quats=np.tile([1.0, 0.0, 0.0, 0.0], (count, 1)),
    )


def _ball(centre: tuple[float, float, float], colour: tuple[float, float, float], radius: float,
          count: int) -> GaussianCloud:  # fmt: skip
    points = np.array(centre) + radius * fibonacci_sphere(count)
    return _flat_gaussians(points, colour, radius * 0.35, radius * 0.35)


def marked_scene(ground_half_m: float = 14.0, spacing_m: float = 0.5) -> GaussianCloud:
    """A grey ground square at z = 0 with a checker of two greys, and three coloured balls 10 m east (red),
    north (green) and up (blue) of the origin: where each lands on screen tells the frame."""
    ticks = np.arange(-ground_half_m, ground_half_m + 1e-9, spacing_m)
    east, north = np.meshgrid(ticks, ticks)
    ground = np.stack([east.ravel(), north.ravel(), np.zeros(east.size)], axis=1)
    checker = (np.floor(ground[:, 0] / 4) + np.floor(ground[:, 1] / 4)) % 2 == 0
    parts = [
        _flat_gaussians(ground[checker], (0.55, 0.55, 0.5), spacing_m * 0.7, 0.02),
        _flat_gaussians(ground[~checker], (0.3, 0.32, 0.3), spacing_m * 0.7, 0.02),
    ]
    parts += [_ball(MARKER_OFFSETS[name], MARKER_COLOURS[name], 0.6, 300) for name in MARKER_OFFSETS]
    return concatenate(parts)


def with_sky_shell(cloud: GaussianCloud, radius_factor: float = 10.0) -> tuple[GaussianCloud, dict]:
    """``cloud`` followed by a shell like the train stage's (SHELL_GAUSSIANS flat, opaque, sky-blue Gaussians on a
    sphere around its centre), and the manifest's ``sky_shell`` description of it."""
    centre = cloud.means.mean(axis=0).astype(np.float64)
    radius = radius_factor * float(np.max(np.linalg.norm(cloud.means - centre, axis=1)))
    directions = fibonacci_sphere(SHELL_GAUSSIANS)
    spacing = radius * math.sqrt(4 * math.pi / SHELL_GAUSSIANS)
    shell = GaussianCloud(
        means=centre + radius * directions,
        sh0=np.tile((np.array([0.5, 0.7, 0.95]) - 0.5) / SH_C0, (SHELL_GAUSSIANS, 1)),
        shN=np.zeros((SHELL_GAUSSIANS, cloud.shN.shape[1], 3)),
        opacities=np.full(SHELL_GAUSSIANS, 5.0),
        log_scales=np.tile(np.log([spacing, spacing, spacing * 1e-3]), (SHELL_GAUSSIANS, 1)),
        quats=np.tile([1.0, 0.0, 0.0, 0.0], (SHELL_GAUSSIANS, 1)),
    )
    description = {"first": len(cloud), "gaussians": SHELL_GAUSSIANS, "centre": centre.tolist(), "radius": radius}
    return concatenate([cloud, shell]), description


def gps_georef(origin: dict | None = None) -> dict:
    """A ``georef.json`` of method ``gps`` as the sfm stage writes it (the parts the export reads)."""
    origin = origin or ORIGIN
    return {
        "version": 1,
        "method": "gps",
        "georeferenced": True,
        "frame": {
            "axes": "x east, y north, z up",
            "units": "metres",
            "proj_pipeline": "+proj=pipeline +step +proj=cart +ellps=WGS84 +step +proj=topocentric "
            f"+ellps=WGS84 +lat_0={origin['latitude']} +lon_0={origin['longitude']} "
            f"+h_0={origin['altitude_m']:g}",
        },  # fmt: skip
        "origin": {**origin, "datum": "WGS 84", "height_reference": "mean sea level"},
        "rms_m": 0.42,
        "warnings": [],
    }


def upright_georef() -> dict:
    return {"version": 1, "method": "upright", "georeferenced": False, "frame": {"axes": "z up"}, "origin": None,
            "warnings": []}  # fmt: skip
