"""Solid procedural textures: value noise, and the albedo of every surface a scene shows.

Solid textures are a function of the world position only, so every photo sees the same surface detail from a new
angle, which is what SIFT needs to match them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class NoiseField:
    """Multi-octave value noise from seeded lattice tables (table look-ups are far cheaper than hashing)."""

    TABLE_2D = 512
    TABLE_3D = 64

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.table_2d = rng.random((self.TABLE_2D, self.TABLE_2D), dtype=np.float32)
        self.table_3d = rng.random((self.TABLE_3D,) * 3, dtype=np.float32)
        # Per-octave offsets so the lattice period never lines up across octaves (no visible repeats).
        self.offsets = rng.uniform(0, 1000, size=(8, 3)).astype(np.float32)

    def value_2d(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        ix, iy = np.floor(x), np.floor(y)
        fx, fy = _smooth(x - ix), _smooth(y - iy)
        size = self.TABLE_2D
        ix, iy = ix.astype(np.int64) % size, iy.astype(np.int64) % size
        jx, jy = (ix + 1) % size, (iy + 1) % size
        t = self.table_2d
        top = t[ix, iy] * (1 - fx) + t[jx, iy] * fx
        bottom = t[ix, jy] * (1 - fx) + t[jx, jy] * fx
        return top * (1 - fy) + bottom * fy

    def value_3d(self, p: np.ndarray) -> np.ndarray:
        base = np.floor(p)
        f = _smooth(p - base)
        size = self.TABLE_3D
        i = base.astype(np.int64) % size
        j = (i + 1) % size
        t = self.table_3d
        result = np.zeros(len(p), dtype=np.float32)
        for cx in (0, 1):
            wx = f[:, 0] if cx else 1 - f[:, 0]
            x = j[:, 0] if cx else i[:, 0]
            for cy in (0, 1):
                wy = f[:, 1] if cy else 1 - f[:, 1]
                y = j[:, 1] if cy else i[:, 1]
                for cz in (0, 1):
                    wz = f[:, 2] if cz else 1 - f[:, 2]
                    z = j[:, 2] if cz else i[:, 2]
                    result += wx * wy * wz * t[x, y, z]
        return result

    def cell_values(self, column: np.ndarray, row: np.ndarray) -> np.ndarray:
        """One value in [0, 1) per integer cell: a per-brick or per-window random draw, without smoothing."""
        size = self.TABLE_2D
        return self.table_2d[column.astype(np.int64) % size, row.astype(np.int64) % size]

    def fbm_2d(self, xy: np.ndarray, base_frequency: float, octaves: int) -> np.ndarray:
        """Fractal noise in [0, 1] on the plane: each octave doubles the frequency and halves the weight."""
        total = np.zeros(len(xy), dtype=np.float32)
        weight_sum = 0.0
        for octave in range(octaves):
            frequency, weight = base_frequency * 2**octave, 0.5**octave
            offset = self.offsets[octave]
            total += weight * self.value_2d(xy[:, 0] * frequency + offset[0], xy[:, 1] * frequency + offset[1])
            weight_sum += weight
        return total / weight_sum

    def fbm_3d(self, p: np.ndarray, base_frequency: float, octaves: int) -> np.ndarray:
        """Fractal solid noise in [0, 1]."""
        total = np.zeros(len(p), dtype=np.float32)
        weight_sum = 0.0
        for octave in range(octaves):
            frequency, weight = base_frequency * 2**octave, 0.55**octave
            total += weight * self.value_3d(p * frequency + self.offsets[octave])
            weight_sum += weight
        return total / weight_sum


def _smooth(t: np.ndarray) -> np.ndarray:
    """Hermite fade: continuous derivative across lattice cells, so no grid lines show."""
    return (t * t * (3 - 2 * t)).astype(np.float32)


@dataclass(frozen=True)
class Material:
    """A solid texture: two colours mixed by noise, optionally overlaid with stripes or a checker."""

    colour_a: tuple[float, float, float]
    colour_b: tuple[float, float, float]
    pattern: str  # "noise", "stripes", "checker" or "rings"
    scale: float  # pattern cells per world unit
    noise_frequency: float = 4.0


def shade_material(material: Material, points: np.ndarray, noise: NoiseField) -> np.ndarray:
    """Albedo (N, 3) of a material at world points."""
    if material.pattern == "facade":
        return facade_albedo(material, points, noise)
    if material.pattern == "building":
        # Along a wall facing +-y the bricks run with x, along one facing +-x with y: x + y serves both, and
        # runs on round a corner, so every face of an axis-aligned building is brickwork with windows.
        return facade_albedo(material, np.stack([points[:, 0] + points[:, 1], points[:, 1], points[:, 2]], axis=1),
                             noise)  # fmt: skip
    grain = noise.fbm_3d(points, material.noise_frequency, octaves=5)
    if material.pattern == "stripes":
        mix = 0.5 + 0.5 * np.sin(points[:, 2] * material.scale * 2 * np.pi + 3 * grain)
    elif material.pattern == "checker":
        cells = np.floor(points * material.scale).astype(np.int64).sum(axis=1) % 2
        mix = 0.25 + 0.5 * cells + 0.5 * (grain - 0.5)
    elif material.pattern == "rings":
        radius = np.hypot(points[:, 0], points[:, 1])
        mix = 0.5 + 0.5 * np.sin(radius * material.scale * 2 * np.pi + 4 * grain + points[:, 2] * 5)
    else:
        mix = grain
    mix = np.clip(mix + 0.35 * (noise.fbm_3d(points + 17.0, material.noise_frequency * 4, octaves=3) - 0.5), 0, 1)
    a, b = np.asarray(material.colour_a, np.float32), np.asarray(material.colour_b, np.float32)
    return a * (1 - mix[:, None]) + b * mix[:, None]


def ground_albedo(points: np.ndarray, noise: NoiseField) -> np.ndarray:
    """Gravel and grass: coarse patches of grass, fine speckled stones, and dark cracks."""
    xy = points[:, :2]
    patches = noise.fbm_2d(xy, 0.35, octaves=3)
    gravel = noise.fbm_2d(xy, 6.0, octaves=4)
    speckle = noise.fbm_2d(xy + 300.0, 22.0, octaves=2)
    grass = np.stack([0.22 + 0.2 * gravel, 0.36 + 0.25 * gravel, 0.12 + 0.08 * speckle], axis=1)
    stone = np.stack([0.45 + 0.35 * gravel, 0.41 + 0.3 * gravel, 0.36 + 0.28 * speckle], axis=1)
    blend = np.clip((patches - 0.42) * 6, 0, 1)[:, None]
    albedo = grass * (1 - blend) + stone * blend
    # Pebbles: distinct dark and light blobs a few pixels across, the blob-like detail SIFT's
    # difference-of-Gaussians detects best and matches most reliably.
    pebbles = noise.fbm_2d(xy + 700.0, 3.0, octaves=2)
    dark = np.clip((pebbles - 0.62) * 8, 0, 1)[:, None]
    light = np.clip((0.36 - pebbles) * 8, 0, 1)[:, None]
    albedo = albedo * (1 - 0.6 * dark) + 0.35 * light
    # Speckle contrast is what SIFT locks onto on the ground; keep it strong.
    return np.clip(albedo * (0.65 + 0.7 * speckle[:, None]), 0, 1)


# A facade's grid, in world units: running-bond bricks, and one window per bay and storey.
BRICK_LENGTH, BRICK_HEIGHT, MORTAR_WIDTH = 0.42, 0.16, 0.03
BAY_WIDTH, STOREY_HEIGHT = 2.8, 2.2
WINDOW_WIDTH, WINDOW_HEIGHT, WINDOW_SILL, FRAME_WIDTH = 1.2, 1.3, 0.8, 0.09
GLASS_COLOUR = np.array([0.10, 0.14, 0.20], dtype=np.float32)
CURTAIN_COLOUR = np.array([0.75, 0.62, 0.45], dtype=np.float32)


def facade_albedo(material: Material, points: np.ndarray, noise: NoiseField) -> np.ndarray:
    """A brick facade (``colour_a`` bricks) with framed windows (``colour_b`` frames) on a wall facing -y.

    Every brick and every window draws its own shade, so the regular grid never repeats exactly: SIFT
    needs each patch of wall to look unlike the next one, or neighbouring photos match the wrong bricks.
    """
    along, up = points[:, 0], points[:, 2]
    albedo = brick_albedo(material, along, up, noise)
    frame, glass = window_masks(along, up)
    trim = noise.fbm_2d(points[frame][:, [0, 2]], 6.0, octaves=2)[:, None]
    albedo[frame] = np.asarray(material.colour_b, np.float32) * (0.85 + 0.15 * trim)
    albedo[glass] = window_glass_albedo(along[glass], up[glass], noise)
    # Weathering: broad stains darken the wall unevenly, as on a real one.
    grime = noise.fbm_2d(np.stack([along, up], axis=1) + 900.0, 0.6, octaves=3)
    return np.clip(albedo * (0.7 + 0.5 * grime[:, None]), 0, 1)


def brick_albedo(material: Material, along: np.ndarray, up: np.ndarray, noise: NoiseField) -> np.ndarray:
    """Bricks in running bond (each course shifted half a brick), each its own shade, in light mortar."""
    row = np.floor(up / BRICK_HEIGHT)
    course = along / BRICK_LENGTH + 0.5 * (row % 2)
    column = np.floor(course)
    shade = noise.cell_values(column, row)[:, None]
    warmth = noise.cell_values(column + 211, row + 97)[:, None]
    grain = noise.fbm_2d(np.stack([along, up], axis=1) + 50.0, 9.0, octaves=3)[:, None]
    brick = np.asarray(material.colour_a, np.float32) * (0.5 + 0.9 * shade) * (0.7 + 0.6 * grain)
    brick = brick * np.array([1.0, 0.85, 0.7], dtype=np.float32) ** (warmth - 0.5)
    mortar = np.array([0.78, 0.76, 0.7], dtype=np.float32) * (0.8 + 0.4 * grain)
    in_mortar = ((up - row * BRICK_HEIGHT) < MORTAR_WIDTH) | ((course - column) * BRICK_LENGTH < MORTAR_WIDTH)
    return np.where(in_mortar[:, None], mortar, brick).astype(np.float32)


def window_masks(along: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame and glass masks: one window per bay and storey, a cross of glazing bars inside its frame."""
    x = np.mod(along, BAY_WIDTH) - BAY_WIDTH / 2
    z = np.mod(up, STOREY_HEIGHT) - WINDOW_SILL
    opening = (np.abs(x) < WINDOW_WIDTH / 2) & (z > 0) & (z < WINDOW_HEIGHT)
    pane = (np.abs(x) < WINDOW_WIDTH / 2 - FRAME_WIDTH) & (z > FRAME_WIDTH) & (z < WINDOW_HEIGHT - FRAME_WIDTH)
    glazing_bar = (np.abs(x) < FRAME_WIDTH / 3) | (np.abs(z - 0.62 * WINDOW_HEIGHT) < FRAME_WIDTH / 3)
    glass = pane & ~glazing_bar
    return opening & ~glass, glass


def window_glass_albedo(along: np.ndarray, up: np.ndarray, noise: NoiseField) -> np.ndarray:
    """Dark glass with blotchy reflections; some windows have curtains (folds), drawn per window."""
    bay, storey = np.floor(along / BAY_WIDTH), np.floor(up / STOREY_HEIGHT)
    curtained = (noise.cell_values(bay + 401, storey + 13) > 0.5)[:, None]
    reflection = noise.fbm_2d(np.stack([along, up], axis=1) * np.array([0.7, 1.4]) + 400.0, 2.0, octaves=3)
    glass = GLASS_COLOUR + 0.35 * (reflection[:, None] - 0.3)
    folds = 0.6 + 0.4 * np.sin(along * 2 * np.pi * 7.0 + 3 * reflection)[:, None]
    return np.clip(np.where(curtained, CURTAIN_COLOUR * folds, glass), 0, 1).astype(np.float32)


def backdrop_albedo(points: np.ndarray, noise: NoiseField) -> np.ndarray:
    """A rough painted wall: broad warm and cool patches, blob-like stains a few pixels across, speckle."""
    tint = np.clip((noise.fbm_3d(points, 0.5, octaves=2) - 0.4) * 4, 0, 1)[:, None]
    warm = np.array([0.78, 0.56, 0.34], dtype=np.float32)
    cool = np.array([0.3, 0.52, 0.6], dtype=np.float32)
    albedo = warm * (1 - tint) + cool * tint
    # Blobs, as on the ground: difference-of-Gaussians detects them best and matches them most reliably.
    blobs = noise.fbm_3d(points + 40.0, 3.0, octaves=2)
    dark = np.clip((blobs - 0.6) * 8, 0, 1)[:, None]
    light = np.clip((0.4 - blobs) * 8, 0, 1)[:, None]
    albedo = albedo * (1 - 0.65 * dark) + 0.3 * light
    speckle = noise.fbm_3d(points + 90.0, 14.0, octaves=2)[:, None]
    return np.clip(albedo * (0.6 + 0.8 * speckle), 0, 1).astype(np.float32)
