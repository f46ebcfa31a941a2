"""Synthetic splats for the export tests: random clouds, a sky shell and a georef.json; the marked scene (coloured
balls 10 m east, north and up) is ``spaceport.scene.markers``."""

from __future__ import annotations

import math

import numpy as np

from spaceport.gaussians import SH_C0, GaussianCloud, concatenate
from spaceport.train.background import SHELL_GAUSSIANS
from spaceport.transform import fibonacci_sphere

# Lausanne's lake shore, as the drone sample scene's GPS places it.
ORIGIN = {"latitude": 46.5209, "longitude": 6.5653, "altitude_m": 413.0}


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
