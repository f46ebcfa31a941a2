"""A splat that tells its frame: a checker ground and three coloured balls 10 m east, north and up of the origin.

Gaussians, not photos: the export's tests and the globe benchmark put it on Earth and look where each ball lands
on screen (a frame off by a rotation, a mirror or a wrong origin moves them). The ground lies 1.5 m below the
origin so that nothing sits exactly at the origin, where an error of the root transform would hide.
"""

from __future__ import annotations

import numpy as np

from spaceport.gaussians import SH_C0, GaussianCloud, concatenate
from spaceport.transform import fibonacci_sphere

MARKER_COLOURS = {"east": (1.0, 0.1, 0.1), "north": (0.1, 1.0, 0.1), "up": (0.1, 0.2, 1.0)}
MARKER_OFFSETS = {"east": (10.0, 0.0, 0.0), "north": (0.0, 10.0, 0.0), "up": (0.0, 0.0, 10.0)}
GROUND_M = -1.5
MARKER_RADIUS_M, MARKER_GAUSSIANS = 0.6, 300
# The checker's squares, metres, and their two greys (linear 0-1 colours).
CHECKER_M = 4.0
CHECKER_GREYS = ((0.55, 0.55, 0.5), (0.3, 0.32, 0.3))


def flat_gaussians(centres: np.ndarray, colour: tuple[float, float, float], sigma: float,
                   thin: float) -> GaussianCloud:  # fmt: skip
    """Opaque discs lying flat (standard deviation ``sigma`` across, ``thin`` up), one colour, SH degree 1 at 0."""
    count = len(centres)
    return GaussianCloud(
        means=np.asarray(centres, dtype=np.float64),
        sh0=np.tile((np.array(colour) - 0.5) / SH_C0, (count, 1)),
        shN=np.zeros((count, 3, 3)),
        opacities=np.full(count, 4.0),
        log_scales=np.tile(np.log([sigma, sigma, thin]), (count, 1)),
        quats=np.tile([1.0, 0.0, 0.0, 0.0], (count, 1)),
    )


def ball(centre: tuple[float, float, float], colour: tuple[float, float, float], radius: float,
         count: int) -> GaussianCloud:  # fmt: skip
    """A ball of ``count`` round Gaussians on a sphere: it looks the same from every side."""
    points = np.array(centre) + radius * fibonacci_sphere(count)
    return flat_gaussians(points, colour, radius * 0.35, radius * 0.35)


def marked_scene(ground_half_m: float = 14.0, spacing_m: float = 0.5) -> GaussianCloud:
    """A square ground (a checker of two greys, one flat disc every ``spacing_m``) 1.5 m below the origin, and
    three coloured balls: red 10 m east, green 10 m north and blue 10 m up of the origin.

    The defaults give 4,149 Gaussians; a 200 m half-width at 0.231 m spacing gives about 3 million.
    """
    ticks = np.arange(-ground_half_m, ground_half_m + 1e-9, spacing_m)
    east, north = np.meshgrid(ticks, ticks)
    ground = np.stack([east.ravel(), north.ravel(), np.full(east.size, GROUND_M)], axis=1)
    light = (np.floor(ground[:, 0] / CHECKER_M) + np.floor(ground[:, 1] / CHECKER_M)) % 2 == 0
    parts = [
        flat_gaussians(ground[light], CHECKER_GREYS[0], spacing_m * 0.7, 0.02),
        flat_gaussians(ground[~light], CHECKER_GREYS[1], spacing_m * 0.7, 0.02),
    ]
    parts += [ball(MARKER_OFFSETS[name], MARKER_COLOURS[name], MARKER_RADIUS_M, MARKER_GAUSSIANS)
              for name in MARKER_OFFSETS]  # fmt: skip
    return concatenate(parts)
