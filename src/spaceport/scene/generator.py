"""Small, photo-like synthetic scenes with exact camera poses, in one of several capture layouts.

The scene is ray cast in pure numpy with analytic intersections: a textured ground disc, a handful of
boxes, spheres and cylinders with solid (3D) procedural textures, a sky gradient (or a textured backdrop
wall around the scene), a sun with hard shadows plus sky ambient, and supersampling. Solid textures are a
function of the world position only, so every photo sees the same surface detail from a new angle, which
is what SIFT needs to match them.

Layouts (``SceneConfig.layout``), so benchmarks can measure on captures unlike the default one:

- ``orbit``: one drone orbit around boxes, spheres and cylinders (the bundled sample scene).
- ``drone``: a drone double orbit, a high, wide ring looking steeply down and a low, close one.
- ``facade``: a one-sided walk along a brick facade with windows; nothing is seen from behind.
- ``object``: a close orbit around one object on a pedestal, inside a textured backdrop wall.
- ``grid``: a drone mapping flight, lawn-mower strips over a field of scattered objects (GPS on by default).
- ``walk``: a long walk around a city block, photos facing its brick buildings, ending where it began.

The grid and the walk grow with the photo count (``images``): at a fixed overlap between neighbouring photos,
more photos cover a larger field or block, with more objects in it, so no two photos see the same thing. Their
worlds hold hundreds of objects, so each photo is traced against only the objects its view (and their shadows)
can reach.

GPS (``SceneConfig.gps``, on by default for the drone and the grid, as real drones write it): each photo's EXIF carries
the WGS 84 position of its camera, the world placed on Earth by ``GPS_SURVEY`` (origin, metres per world unit,
heading), with receiver noise and one deliberately wrong fix; ``ground_truth.json`` records the true and the
written positions and names the wrong one.

World frame: z up, the ground is ``z = 0``. Poses follow COLMAP / OpenCV: ``x_cam = R x_world + t`` with
the camera looking along +z, x to the right and y down.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

# A camera sensor that does not exist: only the EXIF ratios matter (focal in pixels = f_35mm / 43.27 * diagonal).
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
CAMERA_MAKE = "Spaceport"
CAMERA_MODEL = "Synthetic Orbit Camera"
SENSOR_WIDTH_MM = 6.17
EXIF_IFD = 0x8769
TAG_MAKE, TAG_MODEL = 0x010F, 0x0110
TAG_FOCAL_LENGTH, TAG_FOCAL_35MM = 0x920A, 0xA405

SUN_DIRECTION = np.array([0.45, -0.35, 0.82]) / np.linalg.norm([0.45, -0.35, 0.82])
SUN_COLOUR = np.array([1.0, 0.95, 0.85], dtype=np.float32)
AMBIENT_COLOUR = np.array([0.32, 0.36, 0.45], dtype=np.float32)
GROUND_RADIUS = 14.0


@dataclass(frozen=True)
class SceneConfig:
    """What to render.

    Fields left at None take the layout's default (see ``LAYOUTS``), so ``SceneConfig(layout="drone")``
    is a complete capture; after construction only the fields a layout has no use for stay None (the facade's
    and walk's orbit fields, the grid's orbit radius).

    Attributes:
        images: photos in the capture (orbit 32, drone 36, facade 32, object 32, grid 32, walk 32).
        width: image width in pixels.
        height: image height in pixels.
        seed: drives the procedural textures and the wobble of the camera path.
        horizontal_fov_deg: horizontal field of view of the pinhole camera.
        orbit_radius: distance of the camera from the scene centre's vertical axis (drone: of the low ring;
            the high ring is ``DRONE_HIGH_RING_SCALE`` times wider and higher). The facade walk has none.
        orbit_height: mean camera height above the ground (drone: of the low ring; grid: the flight's).
        height_variation: amplitude of the camera's height wobble around the orbit (grid: along the flight).
        supersampling: samples per pixel along each axis (anti-aliasing).
        jpeg_quality: JPEG quality of the written photos.
        layout: the capture layout, one of ``LAYOUTS``: "orbit", "drone", "facade", "object", "grid" or "walk".
        gps: write EXIF GPS positions (``GPS_SURVEY``); by default only the drone and grid layouts do.
    """

    images: int | None = None
    width: int = 320
    height: int = 240
    seed: int = 7
    horizontal_fov_deg: float = 60.0
    orbit_radius: float | None = None
    orbit_height: float | None = None
    height_variation: float | None = None
    supersampling: int = 2
    jpeg_quality: int = 92
    # Last, so positional construction and the key order of ground_truth.json's "config" stay as they were.
    layout: str = "orbit"
    # After layout for the same reason; None takes the layout's default.
    gps: bool | None = None

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; valid layouts: {', '.join(LAYOUTS)}")
        for name, default in asdict(LAYOUTS[self.layout].defaults).items():
            if getattr(self, name) is None:
                # A frozen dataclass is filled in this way, once, while it is being constructed.
                object.__setattr__(self, name, default)
            elif default is None:
                raise ValueError(f"the {self.layout} layout has no {name}; leave it unset")


@dataclass(frozen=True)
class LayoutDefaults:
    """What a layout puts in ``SceneConfig`` fields left at None (None here: the layout has no such thing)."""

    images: int
    orbit_radius: float | None
    orbit_height: float | None
    height_variation: float | None
    gps: bool = False


@dataclass
class CameraPose:
    """One photo's pose: ``x_cam = rotation @ x_world + translation`` (OpenCV / COLMAP)."""

    name: str
    rotation: list[list[float]]
    translation: list[float]
    center: list[float]


@dataclass
class SampleScene:
    """Where a rendered sample scene lies, and its ground truth.

    Attributes:
        root: the output folder.
        images_dir: ``root/images``, the photos.
        ground_truth_file: ``root/ground_truth.json``.
        width, height: image size in pixels.
        focal_px: focal length in pixels (fx = fy); the principal point is the image centre.
        poses: one pose per photo, in photo order.
    """

    root: Path
    images_dir: Path
    ground_truth_file: Path
    width: int
    height: int
    focal_px: float
    poses: list[CameraPose] = field(default_factory=list)

    @property
    def image_paths(self) -> list[Path]:
        return [self.images_dir / pose.name for pose in self.poses]

    def camera_centers(self) -> np.ndarray:
        """(N, 3) camera centres in world coordinates, in photo order."""
        return np.array([pose.center for pose in self.poses], dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# Procedural textures
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """A box resting on its centre ``center``, rotated by ``yaw_deg`` about the vertical axis."""

    center: tuple[float, float, float]
    half_size: tuple[float, float, float]
    yaw_deg: float
    material: Material

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Slab test in the box's own frame; returns distances (inf on a miss) and world normals."""
        yaw = math.radians(self.yaw_deg)
        rot = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0], [0, 0, 1]])
        local_o = (origins - np.asarray(self.center)) @ rot
        local_d = directions @ rot
        half = np.asarray(self.half_size)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / np.where(np.abs(local_d) < 1e-12, 1e-12, local_d)
        t1, t2 = (-half - local_o) * inv, (half - local_o) * inv
        t_near_axes = np.minimum(t1, t2)
        t_near = t_near_axes.max(axis=1)
        t_far = np.maximum(t1, t2).min(axis=1)
        hit = (t_near <= t_far) & (t_near > 1e-4)
        axis = t_near_axes.argmax(axis=1)
        local_n = np.zeros_like(local_o)
        rows = np.arange(len(local_o))
        local_n[rows, axis] = -np.sign(local_d[rows, axis])
        return np.where(hit, t_near, np.inf), local_n @ rot.T

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        return np.asarray(self.center), float(np.linalg.norm(self.half_size))


@dataclass(frozen=True)
class Sphere:
    center: tuple[float, float, float]
    radius: float
    material: Material

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        oc = origins - np.asarray(self.center)
        b = np.einsum("ij,ij->i", oc, directions)
        c = np.einsum("ij,ij->i", oc, oc) - self.radius**2
        disc = b * b - c
        root = np.sqrt(np.maximum(disc, 0))
        t = np.where(-b - root > 1e-4, -b - root, -b + root)
        t = np.where((disc >= 0) & (t > 1e-4), t, np.inf)
        points = origins + directions * np.where(np.isfinite(t), t, 0)[:, None]
        return t, (points - np.asarray(self.center)) / self.radius

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        return np.asarray(self.center), self.radius


@dataclass(frozen=True)
class Cylinder:
    """An upright cylinder standing on the ground at ``(x, y)``, with a flat top cap."""

    x: float
    y: float
    radius: float
    height: float
    material: Material

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ox, oy = origins[:, 0] - self.x, origins[:, 1] - self.y
        dx, dy = directions[:, 0], directions[:, 1]
        a = dx * dx + dy * dy
        b = ox * dx + oy * dy
        c = ox * ox + oy * oy - self.radius**2
        disc = b * b - a * c
        with np.errstate(divide="ignore", invalid="ignore"):
            t_side = (-b - np.sqrt(np.maximum(disc, 0))) / a
            t_cap = (self.height - origins[:, 2]) / directions[:, 2]
        z_side = origins[:, 2] + t_side * directions[:, 2]
        side_ok = (disc >= 0) & (a > 1e-12) & (t_side > 1e-4) & (z_side >= 0) & (z_side <= self.height)
        cap_x, cap_y = ox + t_cap * dx, oy + t_cap * dy
        cap_ok = np.isfinite(t_cap) & (t_cap > 1e-4) & (cap_x**2 + cap_y**2 <= self.radius**2)
        t_side = np.where(side_ok, t_side, np.inf)
        t_cap = np.where(cap_ok, t_cap, np.inf)
        t = np.minimum(t_side, t_cap)
        side_normal = np.stack([ox + t_side * dx, oy + t_side * dy, np.zeros_like(ox)], axis=1) / self.radius
        normal = np.where((t_cap < t_side)[:, None], np.array([0.0, 0.0, 1.0]), np.nan_to_num(side_normal))
        return t, normal

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        return np.array([self.x, self.y, self.height / 2]), math.hypot(self.radius, self.height / 2)


def bounding_sphere_hits(objects: list, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(N, K) mask: does ray n meet object k's bounding sphere in front of its origin?

    Written as matrix products over all objects at once (``o - c`` is never formed per object), which
    is what keeps this pre-test cheap next to the exact intersections it saves.
    """
    centers = np.array([obj.bounding_sphere()[0] for obj in objects])
    radii = np.array([obj.bounding_sphere()[1] for obj in objects])
    if origins.strides[0] == 0:
        # Primary rays share one origin: a ray meets a sphere (seen from outside) when its angle to the
        # sphere's centre is within the sphere's angular radius, one product and one comparison.
        to_centers = centers - origins[0]
        distances = np.linalg.norm(to_centers, axis=1)
        if np.all(distances > radii):
            cos_limit = np.sqrt(1 - (radii / distances) ** 2)
            return directions @ (to_centers / distances[:, None]).T >= cos_limit
    o_dot_d = np.einsum("ij,ij->i", origins, directions)[:, None]
    b = o_dot_d - directions @ centers.T
    c = (np.einsum("ij,ij->i", origins, origins)[:, None] - 2 * origins @ centers.T
         + (centers**2).sum(axis=1) - radii**2)  # fmt: skip
    return (b * b - c >= 0) & ((b < 0) | (c < 0))


@dataclass(frozen=True)
class BackdropWall:
    """The inside of an upright cylinder around the scene's vertical axis: a background at one distinct depth.

    Not an object: it casts no shadows (the sun shines over it) and is hit only from inside.
    """

    radius: float
    height: float

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """Distance to the wall along each ray from inside (inf above or below it)."""
        a = directions[:, 0] ** 2 + directions[:, 1] ** 2
        b = origins[:, 0] * directions[:, 0] + origins[:, 1] * directions[:, 1]
        c = origins[:, 0] ** 2 + origins[:, 1] ** 2 - self.radius**2
        with np.errstate(divide="ignore", invalid="ignore"):
            # The far root: from inside the cylinder, the near one lies behind the ray's origin.
            t = (-b + np.sqrt(np.maximum(b * b - a * c, 0))) / a
        z = origins[:, 2] + t * directions[:, 2]
        inside = (a > 1e-12) & (t > 1e-4) & (z >= 0) & (z <= self.height)
        return np.where(inside, t, np.inf)

    def normals(self, points: np.ndarray) -> np.ndarray:
        """Unit normals facing the scene (inwards) at points on the wall."""
        return np.stack([-points[:, 0], -points[:, 1], np.zeros(len(points))], axis=1) / self.radius


def build_objects(layout: str = "orbit") -> list[Box | Sphere | Cylinder]:
    """What stands where in a layout (the seed changes textures, never the objects)."""
    return LAYOUTS[layout].objects()


def orbit_objects() -> list[Box | Sphere | Cylinder]:
    """The sample scene: boxes, spheres and cylinders within about 2.5 units of the centre."""
    return [
        Box((1.3, 0.9, 0.5), (0.55, 0.4, 0.5), 20, Material((0.75, 0.25, 0.15), (0.95, 0.8, 0.55), "checker", 3.0)),
        Box((1.3, 0.9, 1.2), (0.25, 0.25, 0.2), -15, Material((0.15, 0.35, 0.7), (0.85, 0.9, 0.95), "stripes", 6.0)),
        Box((-1.4, -1.0, 0.3), (0.4, 0.65, 0.3), -35, Material((0.2, 0.55, 0.3), (0.9, 0.85, 0.3), "stripes", 4.0)),
        Box((0.2, -2.3, 0.22), (0.7, 0.3, 0.22), 60, Material((0.5, 0.45, 0.4), (0.2, 0.18, 0.2), "noise", 1.0, 8.0)),
        Sphere((-1.1, 1.3, 0.6), 0.6, Material((0.85, 0.75, 0.2), (0.35, 0.1, 0.45), "rings", 3.0)),
        Sphere((1.0, -1.3, 0.4), 0.4, Material((0.9, 0.9, 0.9), (0.1, 0.3, 0.55), "checker", 5.0)),
        Cylinder(0.0, 0.0, 0.35, 1.5, Material((0.55, 0.3, 0.2), (0.95, 0.65, 0.4), "stripes", 5.0)),
        Cylinder(-2.3, 0.4, 0.25, 0.9, Material((0.25, 0.25, 0.3), (0.7, 0.75, 0.8), "rings", 6.0)),
        Cylinder(2.4, -0.8, 0.3, 0.6, Material((0.6, 0.15, 0.2), (0.95, 0.9, 0.85), "noise", 1.0, 6.0)),
    ]


def drone_objects() -> list[Box | Sphere | Cylinder]:
    """A few boxes and spheres spread over about 6 units, for a double orbit to look down on."""
    return [
        Box((0.0, 0.0, 0.6), (0.9, 0.6, 0.6), 10, Material((0.7, 0.3, 0.2), (0.95, 0.85, 0.6), "checker", 3.0)),
        Box((2.3, 1.6, 0.4), (0.5, 0.8, 0.4), -25, Material((0.2, 0.4, 0.7), (0.9, 0.9, 0.85), "stripes", 5.0)),
        Box((-2.2, -1.7, 0.3), (0.7, 0.4, 0.3), 40, Material((0.3, 0.55, 0.25), (0.85, 0.8, 0.3), "noise", 1.0, 7.0)),
        Box((1.6, -2.4, 0.5), (0.35, 0.35, 0.5), 5, Material((0.55, 0.5, 0.45), (0.15, 0.15, 0.2), "checker", 4.0)),
        Sphere((-1.9, 1.7, 0.7), 0.7, Material((0.85, 0.7, 0.2), (0.3, 0.1, 0.4), "rings", 3.0)),
        Sphere((2.6, -0.6, 0.45), 0.45, Material((0.9, 0.9, 0.9), (0.1, 0.3, 0.55), "checker", 5.0)),
        Sphere((-0.4, 2.7, 0.35), 0.35, Material((0.8, 0.3, 0.3), (0.95, 0.9, 0.6), "stripes", 6.0)),
    ]


# The facade's front face lies in the plane y = FACADE_FRONT_Y and faces -y, where the camera walks.
FACADE_FRONT_Y = 4.0
FACADE_HALF_LENGTH = 12.0
FACADE_HEIGHT = 4.4


def facade_objects() -> list[Box | Sphere | Cylinder]:
    """A long brick wall with windows, and street furniture in front of it (bench, planter, bollard, bush)."""
    wall = Box((0.0, FACADE_FRONT_Y + 0.4, FACADE_HEIGHT / 2), (FACADE_HALF_LENGTH, 0.4, FACADE_HEIGHT / 2), 0,
               Material((0.62, 0.28, 0.18), (0.88, 0.86, 0.8), "facade", 1.0))  # fmt: skip
    return [
        wall,
        Box((-2.0, 3.2, 0.25), (1.0, 0.25, 0.25), 0, Material((0.45, 0.3, 0.15), (0.75, 0.55, 0.3), "stripes", 8.0)),
        Cylinder(2.4, 2.6, 0.45, 0.8, Material((0.5, 0.5, 0.52), (0.2, 0.22, 0.25), "rings", 6.0)),
        Cylinder(-5.2, 1.8, 0.18, 1.0, Material((0.2, 0.2, 0.25), (0.85, 0.75, 0.2), "stripes", 5.0)),
        Sphere((5.4, 3.1, 0.55), 0.55, Material((0.15, 0.4, 0.12), (0.5, 0.7, 0.25), "noise", 1.0, 9.0)),
        Box((0.8, 3.5, 0.3), (0.3, 0.3, 0.3), 25, Material((0.7, 0.6, 0.4), (0.35, 0.25, 0.15), "checker", 6.0)),
    ]


# The single object of the object layout, its centre (what the cameras look at) and the wall around it.
OBJECT_TARGET = np.array([0.0, 0.0, 0.6])
OBJECT_BACKDROP = BackdropWall(radius=6.0, height=3.5)


def single_object() -> list[Box | Sphere | Cylinder]:
    """A checkered sphere on a stone pedestal, 1.2 units tall: detail on every side, for a close orbit."""
    return [
        Box((0.0, 0.0, 0.25), (0.3, 0.3, 0.25), 15, Material((0.55, 0.5, 0.45), (0.15, 0.15, 0.2), "noise", 1.0, 9.0)),
        Sphere((0.0, 0.0, 0.85), 0.35, Material((0.9, 0.75, 0.2), (0.2, 0.25, 0.6), "checker", 6.0, 6.0)),
    ]


@dataclass(frozen=True)
class World:
    """Everything a layout puts in front of its cameras besides the ground and the sky.

    Attributes:
        objects: what stands on the ground.
        backdrop: a wall around the scene, if any.
        ground_radius: the ground is a disc this wide around the origin (beyond it: sky).
        cull: trace each photo against only the objects that can show in it or shadow what shows (large worlds).
    """

    objects: list[Box | Sphere | Cylinder]
    backdrop: BackdropWall | None = None
    ground_radius: float = GROUND_RADIUS
    cull: bool = False


def build_world(layout: str, config: SceneConfig | None = None) -> World:
    """The objects and backdrop of a layout (``LAYOUTS``); the grid's and walk's grow with ``config.images``."""
    spec = LAYOUTS[layout]
    if spec.world is not None:
        return spec.world(config or SceneConfig(layout=layout))
    return World(build_objects(layout), spec.backdrop)


def intersect_ground(origins: np.ndarray, directions: np.ndarray, radius: float = GROUND_RADIUS) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origins[:, 2] / directions[:, 2]
    points_xy = origins[:, :2] + directions[:, :2] * np.where(np.isfinite(t), t, 0)[:, None]
    inside = np.isfinite(t) & (t > 1e-4) & (np.hypot(points_xy[:, 0], points_xy[:, 1]) <= radius)
    return np.where(inside, t, np.inf)


# --------------------------------------------------------------------------------------------------
# Cameras and rendering
# --------------------------------------------------------------------------------------------------


def look_at(center: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera rotation and translation for a camera at ``center`` looking at ``target`` (z up)."""
    forward = target - center
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    return rotation, -rotation @ center


def poses_looking_at(centers: np.ndarray, targets: np.ndarray) -> list[CameraPose]:
    """Named poses, in order, for cameras at ``centers`` (N, 3) each looking at its target ((N, 3) or (3,))."""
    poses = []
    for index, (center, target) in enumerate(zip(centers, np.broadcast_to(targets, centers.shape), strict=True)):
        rotation, translation = look_at(center, target)
        poses.append(CameraPose(f"frame_{index:03d}.jpg", rotation.tolist(), translation.tolist(), center.tolist()))
    return poses


def ring_centers(count: int, radius: float, height: float, height_variation: float, phase: float,
                 angle_offset: float = 0.0) -> np.ndarray:  # fmt: skip
    """(count, 3) camera centres evenly spaced on a circle, their height wobbling three times per turn."""
    centers = []
    for index in range(count):
        angle = 2 * np.pi * index / count + angle_offset
        z = height + height_variation * math.sin(3 * angle + phase)
        centers.append([radius * math.cos(angle), radius * math.sin(angle), z])
    return np.array(centers, dtype=np.float64).reshape(-1, 3)


def orbit_poses(config: SceneConfig) -> list[CameraPose]:
    """Camera poses on a circle around the scene, with a gentle height wobble, all looking at its centre."""
    rng = np.random.default_rng(config.seed)
    phase = rng.uniform(0, 2 * np.pi)
    centers = ring_centers(config.images, config.orbit_radius, config.orbit_height, config.height_variation, phase)
    return poses_looking_at(centers, np.array([0.0, 0.0, 0.5]))


# The drone's high ring, relative to its low ring: wider and much higher, so it looks down more steeply.
DRONE_HIGH_RING_SCALE = (1.5, 2.4)  # (radius, height)
DRONE_TARGET = np.array([0.0, 0.0, 0.4])


def drone_poses(config: SceneConfig) -> list[CameraPose]:
    """A drone double orbit: first the high, wide ring (half the photos), then the low, close one.

    The low ring is turned by half a step, so its photos fall between the high ring's, which gives the
    matcher views of every direction at two distances and pitches.
    """
    rng = np.random.default_rng(config.seed)
    high_phase, low_phase = rng.uniform(0, 2 * np.pi, size=2)
    high_count = config.images // 2
    low_count = config.images - high_count
    radius_scale, height_scale = DRONE_HIGH_RING_SCALE
    high = ring_centers(high_count, config.orbit_radius * radius_scale, config.orbit_height * height_scale,
                        config.height_variation, high_phase)  # fmt: skip
    low = ring_centers(low_count, config.orbit_radius, config.orbit_height, config.height_variation, low_phase,
                       angle_offset=np.pi / low_count)  # fmt: skip
    return poses_looking_at(np.concatenate([high, low]), DRONE_TARGET)


@dataclass(frozen=True)
class FacadeWalk:
    """A walk along the facade, in world units.

    Attributes:
        length: from the first photo to the last, along the wall (x).
        distance: of the walk's ends from the wall's front face.
        bow: how much closer to the wall the middle of the walk comes (a gently curved pavement).
        camera_height: mean eye height above the ground.
        height_variation: amplitude of the camera's bobbing up and down along the walk.
        look_height: where on the wall the cameras aim: below eye level, so the ground shows too.
        yaw_variation_deg: amplitude of the camera's turn left and right of facing the wall.
    """

    length: float = 12.0
    distance: float = 5.5
    bow: float = 0.8
    camera_height: float = 1.7
    height_variation: float = 0.2
    look_height: float = 1.2
    yaw_variation_deg: float = 6.0


FACADE_WALK = FacadeWalk()


def facade_poses(config: SceneConfig) -> list[CameraPose]:
    """Photos along a gently curved walk in front of the facade, each turned a little left or right of it."""
    walk = FACADE_WALK
    rng = np.random.default_rng(config.seed)
    yaw_phase, height_phase = rng.uniform(0, 2 * np.pi, size=2)
    progress = np.linspace(0.0, 1.0, config.images) if config.images > 1 else np.array([0.5])
    x = walk.length * (progress - 0.5)
    wall_distance = walk.distance - walk.bow * (1 - (2 * progress - 1) ** 2)
    z = walk.camera_height + walk.height_variation * np.sin(2 * np.pi * 3 * progress + height_phase)
    centers = np.stack([x, FACADE_FRONT_Y - wall_distance, z], axis=1)
    yaw = np.radians(walk.yaw_variation_deg) * np.sin(2 * np.pi * 2.5 * progress + yaw_phase)
    targets = np.stack([x + wall_distance * np.tan(yaw), np.full_like(x, FACADE_FRONT_Y),
                        np.full_like(x, walk.look_height)], axis=1)  # fmt: skip
    return poses_looking_at(centers, targets)


def object_poses(config: SceneConfig) -> list[CameraPose]:
    """A close orbit around the single object, looking at its centre, the backdrop wall behind it."""
    rng = np.random.default_rng(config.seed)
    phase = rng.uniform(0, 2 * np.pi)
    centers = ring_centers(config.images, config.orbit_radius, config.orbit_height, config.height_variation, phase)
    return poses_looking_at(centers, OBJECT_TARGET)


# --------------------------------------------------------------------------------------------------
# Large layouts: a mapping flight's grid and a walk around a block, both growing with the photo count
# --------------------------------------------------------------------------------------------------

# Objects placed by the large layouts draw from these streams, never from the config's seed (which drives
# textures and camera wobble), so a world is the same whatever the seed.
GRID_OBJECT_SEED, WALK_OBJECT_SEED = 0x67726964, 0x77616C6B
# A shadow ray from a visible point meets an object at most this many times the object's top height away.
SHADOW_REACH_PER_HEIGHT = 1.0 / SUN_DIRECTION[2]
# Rays traced at once in a large world: bounds the (rays x objects) intersection arrays at 1600 px.
TRACE_CHUNK_RAYS = 1 << 18


@dataclass(frozen=True)
class GridFlight:
    """A lawn-mower mapping flight: parallel strips flown back and forth, in a photo's footprint's terms.

    Attributes:
        forward_overlap: share of a photo's ground footprint that the next photo on its strip sees again.
        side_overlap: share that the photo beside it on the next strip sees again (mapping flights: 60-70 %).
        tilt_deg: the camera's pitch off nadir, forward along the strip (slightly oblique, as flights for 3D
            models fly, so objects show their sides).
        position_jitter: how far (world units) the drone strays from each planned waypoint.
        object_spacing: the field holds at most one object per square cell this wide.
        object_chance: the chance that a cell holds one.
    """

    forward_overlap: float = 0.75
    side_overlap: float = 0.65
    tilt_deg: float = 12.0
    position_jitter: float = 0.05
    object_spacing: float = 3.2
    object_chance: float = 0.85


GRID_FLIGHT = GridFlight()


@dataclass(frozen=True)
class GridPlan:
    """Where a grid's photos go: ``strips`` strips along y, ``per_strip`` photos on each (the last may have fewer)."""

    strips: int
    per_strip: int
    side_spacing: float
    along_spacing: float
    half_x: float  # the ground the photos see: |x| <= half_x, |y| <= half_y
    half_y: float


def grid_plan(config: SceneConfig) -> GridPlan:
    """Strips and spacings for the config's photo count, so the field is about as wide as it is long."""
    flight = GRID_FLIGHT
    across = 2 * config.orbit_height * math.tan(math.radians(config.horizontal_fov_deg) / 2)
    along = across * config.height / config.width
    side_spacing = (1 - flight.side_overlap) * across
    along_spacing = (1 - flight.forward_overlap) * along
    # strips * side_spacing ~ per_strip * along_spacing, with strips * per_strip ~ images.
    strips = max(1, round(math.sqrt(config.images * along_spacing / side_spacing)))
    per_strip = math.ceil(config.images / strips)
    strips = math.ceil(config.images / per_strip)
    tilt_shift = config.orbit_height * math.tan(math.radians(flight.tilt_deg))
    half_x = (strips - 1) / 2 * side_spacing + across / 2
    half_y = (per_strip - 1) / 2 * along_spacing + along / 2 + tilt_shift
    return GridPlan(strips, per_strip, side_spacing, along_spacing, half_x, half_y)


def grid_poses(config: SceneConfig) -> list[CameraPose]:
    """Photos in flight order: strip after strip, every other one flown back, the camera facing the flight."""
    flight, plan = GRID_FLIGHT, grid_plan(config)
    rng = np.random.default_rng(config.seed)
    phase = rng.uniform(0, 2 * np.pi)
    index = np.arange(config.images)
    strip, step = np.divmod(index, plan.per_strip)
    step = np.where(strip % 2 == 1, plan.per_strip - 1 - step, step)
    x = (strip - (plan.strips - 1) / 2) * plan.side_spacing
    y = (step - (plan.per_strip - 1) / 2) * plan.along_spacing
    z = config.orbit_height + config.height_variation * np.sin(2 * np.pi * index / plan.per_strip + phase)
    centers = np.stack([x, y, z], axis=1).astype(np.float64)
    centers[:, :2] += rng.normal(scale=flight.position_jitter, size=(config.images, 2))
    # The drone turns round at the end of each strip and the camera, pitched forward, turns with it: photos of
    # neighbouring strips face opposite ways (as in a course-aligned mapping mission). With one heading for all,
    # every photo would see the near-flat field from one direction, and its focal length could not be told from
    # its height.
    tilt = math.radians(flight.tilt_deg)
    heading = np.where(strip % 2 == 1, -1.0, 1.0)
    forward = np.stack([np.zeros(config.images), heading * math.sin(tilt), np.full(config.images, -math.cos(tilt))],
                       axis=1)  # fmt: skip
    return poses_looking_at(centers, centers + forward)


def random_material(rng: np.random.Generator) -> Material:
    """Two random colours mixed by one of the solid patterns: every object looks unlike the next."""
    colour_a, colour_b = rng.uniform(0.08, 0.95, size=(2, 3)).tolist()
    pattern = ("noise", "checker", "stripes", "rings")[int(rng.integers(4))]
    return Material(tuple(colour_a), tuple(colour_b), pattern, float(rng.uniform(2.0, 7.0)),
                    float(rng.uniform(3.0, 9.0)))  # fmt: skip


def random_object(rng: np.random.Generator, x: float, y: float) -> Box | Sphere | Cylinder:
    """A box (a shed, a car, a crate), a ball or a post of random size standing at (x, y)."""
    material = random_material(rng)
    kind = rng.random()
    if kind < 0.5:
        half = rng.uniform([0.3, 0.3, 0.2], [1.2, 1.2, 1.0])
        return Box((x, y, float(half[2])), tuple(half.tolist()), float(rng.uniform(0, 90)), material)
    if kind < 0.75:
        radius = float(rng.uniform(0.3, 0.8))
        return Sphere((x, y, radius), radius, material)
    return Cylinder(x, y, float(rng.uniform(0.2, 0.6)), float(rng.uniform(0.5, 2.5)), material)


def grid_objects(half_x: float, half_y: float) -> list[Box | Sphere | Cylinder]:
    """Objects scattered over the field, one cell at a time: each cell draws from its own stream, so a larger
    field holds the smaller one's objects plus new ones around them."""
    flight = GRID_FLIGHT
    spacing = flight.object_spacing
    objects = []
    for i in range(-math.ceil(half_x / spacing), math.ceil(half_x / spacing) + 1):
        for j in range(-math.ceil(half_y / spacing), math.ceil(half_y / spacing) + 1):
            rng = np.random.default_rng([GRID_OBJECT_SEED, i + (1 << 16), j + (1 << 16)])
            if rng.random() >= flight.object_chance:
                continue
            x, y = (np.array([i, j]) + rng.uniform(-0.3, 0.3, size=2)) * spacing
            if abs(x) <= half_x and abs(y) <= half_y:
                objects.append(random_object(rng, float(x), float(y)))
    return objects


def grid_world(config: SceneConfig) -> World:
    plan = grid_plan(config)
    radius = math.hypot(plan.half_x, plan.half_y) + 2 * config.orbit_height
    return World(grid_objects(plan.half_x, plan.half_y), ground_radius=radius, cull=True)


@dataclass(frozen=True)
class WalkLoop:
    """A walk around a square block of buildings, photos facing them, in world units.

    The path keeps ``distance`` from the facades: straight along each side, a quarter circle round each
    corner, so it ends where it began. Its length is ``step`` per photo, which sets the block's size; a
    capture too short for the smallest block spaces its photos further apart.

    Attributes:
        step: path length between photos.
        distance: from the path to the facades.
        min_half_side: half the side of the smallest block.
        depth: of the buildings, from their facade inwards.
        camera_height: mean eye height; height_variation: the bobbing of a walker around it.
        look_height: where on the facades the cameras aim (below eye level, so the pavement shows too).
        yaw_variation_deg: amplitude of the camera's turn left and right of facing the block.
        building_width, building_height: ranges of each building's frontage and height.
        furniture_spacing, furniture_chance: along each facade, a planter, bollard, bush or bench stands on the
            pavement at this spacing, with this chance (things in front of the wall, for parallax).
    """

    step: float = 0.5
    distance: float = 4.5
    min_half_side: float = 1.5
    depth: float = 4.0
    camera_height: float = 1.7
    height_variation: float = 0.12
    look_height: float = 1.5
    yaw_variation_deg: float = 8.0
    building_width: tuple[float, float] = (2.5, 6.0)
    building_height: tuple[float, float] = (2.6, 6.5)
    furniture_spacing: float = 1.8
    furniture_chance: float = 0.65


WALK_LOOP = WalkLoop()
BRICK_COLOURS = ((0.62, 0.28, 0.18), (0.74, 0.58, 0.34), (0.5, 0.48, 0.46), (0.45, 0.3, 0.2), (0.8, 0.74, 0.6))
FRAME_COLOURS = ((0.9, 0.9, 0.86), (0.15, 0.3, 0.2), (0.12, 0.12, 0.14), (0.55, 0.2, 0.15), (0.3, 0.4, 0.6))


def walk_half_side(config: SceneConfig) -> float:
    """Half the block's side: the path (4 sides, 4 quarter circles) is ``step`` long per photo."""
    walk = WALK_LOOP
    return max(walk.min_half_side, (config.images * walk.step - 2 * np.pi * walk.distance) / 8)


def _quarter_turns(points: np.ndarray, turns: int) -> np.ndarray:
    """(N, 2) points turned by ``turns`` quarter turns anticlockwise about the origin."""
    for _ in range(turns % 4):
        points = np.stack([-points[:, 1], points[:, 0]], axis=1)
    return points


def walk_path(config: SceneConfig) -> tuple[np.ndarray, np.ndarray, float]:
    """Each photo's (x, y) on the path, the unit direction it faces (towards the block), and the path length.

    The path is four copies of one piece, each turned a quarter further: along the south side eastwards,
    then round the south-east corner.
    """
    walk, half = WALK_LOOP, walk_half_side(config)
    piece = 2 * half + np.pi * walk.distance / 2
    length = 4 * piece
    along = np.arange(config.images) * length / config.images
    turns, local = np.divmod(along, piece)
    straight = local < 2 * half
    angle = -np.pi / 2 + np.maximum(local - 2 * half, 0) / walk.distance
    radial = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    on_side = np.stack([local - half, np.full_like(local, -half - walk.distance)], axis=1)
    on_corner = np.array([half, -half]) + walk.distance * radial
    points = np.where(straight[:, None], on_side, on_corner)
    facing = np.where(straight[:, None], np.array([0.0, 1.0]), -radial)
    for turn in range(1, 4):
        rows = turns == turn
        points[rows], facing[rows] = _quarter_turns(points[rows], turn), _quarter_turns(facing[rows], turn)
    return points, facing, length


def walk_poses(config: SceneConfig) -> list[CameraPose]:
    """Photos along the loop, each facing the block, turned a little left or right, the walker bobbing."""
    walk = WALK_LOOP
    rng = np.random.default_rng(config.seed)
    yaw_phase, height_phase = rng.uniform(0, 2 * np.pi, size=2)
    points, facing, _ = walk_path(config)
    progress = np.arange(config.images) / config.images
    # Whole periods around the loop, so its end meets its start smoothly.
    yaw = np.radians(walk.yaw_variation_deg) * np.sin(2 * np.pi * 7 * progress + yaw_phase)
    cos, sin = np.cos(yaw), np.sin(yaw)
    turned = np.stack([cos * facing[:, 0] - sin * facing[:, 1], sin * facing[:, 0] + cos * facing[:, 1]], axis=1)
    z = walk.camera_height + walk.height_variation * np.sin(2 * np.pi * 11 * progress + height_phase)
    centers = np.column_stack([points, z])
    targets = np.column_stack([points + walk.distance * turned, np.full(config.images, walk.look_height)])
    return poses_looking_at(centers, targets)


def _frontages(rng: np.random.Generator, start: float, end: float) -> list[tuple[float, float]]:
    """Split [start, end] into building frontages of random width (a short remainder joins the last one)."""
    low, high = WALK_LOOP.building_width
    edges = [start]
    while end - edges[-1] > high:
        edges.append(edges[-1] + float(rng.uniform(low, high)))
    if end - edges[-1] < low and len(edges) > 1:
        edges.pop()
    edges.append(end)
    return list(zip(edges[:-1], edges[1:], strict=True))


def _street_furniture(rng: np.random.Generator, x: float, front: float) -> Box | Sphere | Cylinder:
    """A planter, bollard, bush or bench on the pavement at ``x``, in front of a facade at y = ``front``."""
    y = front - float(rng.uniform(0.6, 1.6))
    kind = int(rng.integers(4))
    material = random_material(rng)
    if kind == 0:
        return Cylinder(x, y, float(rng.uniform(0.3, 0.5)), float(rng.uniform(0.4, 0.8)), material)
    if kind == 1:
        return Cylinder(x, y, 0.1, 0.9, material)
    if kind == 2:
        radius = float(rng.uniform(0.35, 0.6))
        return Sphere((x, y, 0.8 * radius), radius, material)
    return Box((x, y, 0.22), (0.8, 0.25, 0.22), 0.0, material)


def _turned_object(obj: Box | Sphere | Cylinder, turns: int) -> Box | Sphere | Cylinder:
    """An object of the south side moved onto another side, ``turns`` quarter turns round the block."""
    if isinstance(obj, Cylinder):
        x, y = _quarter_turns(np.array([[obj.x, obj.y]]), turns)[0].tolist()
        return dataclasses.replace(obj, x=x, y=y)
    x, y = _quarter_turns(np.array([obj.center[:2]]), turns)[0].tolist()
    if isinstance(obj, Sphere):
        return dataclasses.replace(obj, center=(x, y, obj.center[2]))
    half = obj.half_size if turns % 2 == 0 else (obj.half_size[1], obj.half_size[0], obj.half_size[2])
    return dataclasses.replace(obj, center=(x, y, obj.center[2]), half_size=half)


def walk_objects(config: SceneConfig) -> list[Box | Sphere | Cylinder]:
    """Brick buildings round the block's four sides, and street furniture on the pavement in front of them.

    Each side is laid out as the south side (facades at y = -half) and turned into place; the east and west
    rows stop short of the corners, which the south and north rows fill.
    """
    walk, half = WALK_LOOP, walk_half_side(config)
    depth = min(walk.depth, half)
    rng = np.random.default_rng([WALK_OBJECT_SEED, config.images])
    objects = []
    for turns in range(4):
        start, end = (-half, half) if turns % 2 == 0 else (-half + depth, half - depth)
        side: list[Box | Sphere | Cylinder] = []
        for left, right in _frontages(rng, start, end) if end > start else []:
            height = float(rng.uniform(*walk.building_height))
            brick = np.array(BRICK_COLOURS[int(rng.integers(len(BRICK_COLOURS)))]) * rng.uniform(0.85, 1.15)
            frame = FRAME_COLOURS[int(rng.integers(len(FRAME_COLOURS)))]
            material = Material(tuple(np.clip(brick, 0, 1).tolist()), frame, "building", 1.0)
            side.append(Box(((left + right) / 2, -half + depth / 2, height / 2),
                            ((right - left) / 2, depth / 2, height / 2), 0.0, material))  # fmt: skip
        for x in np.arange(-half + 0.8, half - 0.4, walk.furniture_spacing):
            if rng.random() < walk.furniture_chance:
                side.append(_street_furniture(rng, float(x + rng.uniform(-0.5, 0.5)), -half))
        objects += [_turned_object(obj, turns) for obj in side]
    return objects


def walk_world(config: SceneConfig) -> World:
    radius = (walk_half_side(config) + WALK_LOOP.distance) * math.sqrt(2) + 10.0
    return World(walk_objects(config), ground_radius=radius, cull=True)


def visible_world(world: World, pose: CameraPose, config: SceneConfig) -> World:
    """The world with only the objects that can show in this photo or shade what it shows.

    An object is kept when its bounding sphere, widened by the furthest a shadow ray can travel to it
    (``SHADOW_REACH_PER_HEIGHT`` times its top's height), meets the cone around the view's corner rays. That keeps
    a superset of what could be hit, so the photo is the one the whole world would give, traced far faster.
    """
    if not world.objects:
        return dataclasses.replace(world, cull=False)
    spheres = [obj.bounding_sphere() for obj in world.objects]
    centres = np.array([centre for centre, _ in spheres], dtype=np.float64)
    radii = np.array([radius for _, radius in spheres], dtype=np.float64)
    reach = radii + np.maximum(centres[:, 2] + radii, 0.0) * SHADOW_REACH_PER_HEIGHT
    offsets = centres - np.asarray(pose.center)
    distances = np.linalg.norm(offsets, axis=1)
    forward = np.asarray(pose.rotation)[2]
    half_angle = math.atan(math.hypot(config.width, config.height) / 2 / focal_length_px(config))
    with np.errstate(divide="ignore", invalid="ignore"):
        angles = np.arccos(np.clip(offsets @ forward / distances, -1.0, 1.0))
        widening = np.arcsin(np.clip(reach / distances, 0.0, 1.0))
    keep = (distances <= reach) | (angles <= half_angle + widening)
    return dataclasses.replace(world, objects=[obj for obj, kept in zip(world.objects, keep, strict=True) if kept],
                               cull=False)  # fmt: skip


def trace_in_chunks(directions: np.ndarray, centre: np.ndarray, world: World, noise: NoiseField) -> np.ndarray:
    """``trace`` over batches of rays from one camera centre (each batch keeps the shared-origin fast path)."""
    parts = []
    for start in range(0, len(directions), TRACE_CHUNK_RAYS):
        batch = directions[start : start + TRACE_CHUNK_RAYS]
        parts.append(trace(np.broadcast_to(centre, batch.shape), batch, world, noise))
    return np.concatenate(parts)


def camera_poses(config: SceneConfig) -> list[CameraPose]:
    """The config's layout's camera poses, in photo order."""
    return LAYOUTS[config.layout].poses(config)


@dataclass(frozen=True)
class Layout:
    """A capture layout: its config defaults, what stands in its world and where its cameras go."""

    defaults: LayoutDefaults
    objects: Callable[[], list[Box | Sphere | Cylinder]]
    poses: Callable[[SceneConfig], list[CameraPose]]
    backdrop: BackdropWall | None = None
    # A world that depends on the config (its size grows with the photo count); None: objects and backdrop.
    world: Callable[[SceneConfig], World] | None = None


LAYOUTS: dict[str, Layout] = {
    "orbit": Layout(LayoutDefaults(images=32, orbit_radius=6.0, orbit_height=3.2, height_variation=0.4),
                    orbit_objects, orbit_poses),
    # The low ring; the high one is DRONE_HIGH_RING_SCALE times wider and higher (7.5 units out, 5.8 up).
    "drone": Layout(LayoutDefaults(images=36, orbit_radius=5.0, orbit_height=2.4, height_variation=0.15, gps=True),
                    drone_objects, drone_poses),
    "facade": Layout(LayoutDefaults(images=32, orbit_radius=None, orbit_height=None, height_variation=None),
                     facade_objects, facade_poses),
    "object": Layout(LayoutDefaults(images=32, orbit_radius=2.6, orbit_height=1.4, height_variation=0.2),
                     single_object, object_poses, OBJECT_BACKDROP),
    # Flown 7 units (28 m) up; the field and its objects grow with the photo count (grid_plan).
    "grid": Layout(LayoutDefaults(images=32, orbit_radius=None, orbit_height=7.0, height_variation=0.05, gps=True),
                   lambda: build_world("grid").objects, grid_poses, world=grid_world),
    # The block and its buildings grow with the photo count (WalkLoop).
    "walk": Layout(LayoutDefaults(images=32, orbit_radius=None, orbit_height=None, height_variation=None),
                   lambda: build_world("walk").objects, walk_poses, world=walk_world),
}  # fmt: skip


def focal_length_px(config: SceneConfig) -> float:
    return 0.5 * config.width / math.tan(math.radians(config.horizontal_fov_deg) / 2)


def camera_directions(config: SceneConfig) -> np.ndarray:
    """Unit ray directions in camera coordinates, one per sub-pixel sample, row-major (same for every pose)."""
    ss = config.supersampling
    focal = focal_length_px(config)
    # COLMAP puts pixel centres at +0.5; sub-samples sit at the centres of an ss x ss grid inside each pixel.
    u = (np.arange(config.width * ss) + 0.5) / ss
    v = (np.arange(config.height * ss) + 0.5) / ss
    uu, vv = np.meshgrid(u, v)
    cam = np.stack([(uu - config.width / 2) / focal, (vv - config.height / 2) / focal, np.ones_like(uu)], axis=-1)
    cam = cam.reshape(-1, 3)
    return cam / np.linalg.norm(cam, axis=1, keepdims=True)


def sky_colour(directions: np.ndarray) -> np.ndarray:
    elevation = np.clip(directions[:, 2], -0.2, 1.0)[:, None]
    horizon = np.array([0.78, 0.84, 0.9], dtype=np.float32)
    zenith = np.array([0.32, 0.52, 0.85], dtype=np.float32)
    blend = np.sqrt(np.clip(elevation, 0, 1))
    return horizon * (1 - blend) + zenith * blend


def nearest_object_hits(objects: list, origins: np.ndarray, directions: np.ndarray, t_max: np.ndarray) -> tuple:
    """Nearest object hit per ray closer than ``t_max``: distance, object index (-1: none) and normal.

    Exact tests run only on rays that pass an object's bounding sphere (most rays miss most objects),
    and results go into running buffers rather than one full-size array per object.
    """
    best_t = t_max.copy()
    best_id = np.full(len(origins), -1)
    best_normal = np.zeros(origins.shape)
    if not objects:  # a culled view of a large world can hold none
        return best_t, best_id, best_normal
    candidates = bounding_sphere_hits(objects, origins, directions)
    for index, obj in enumerate(objects):
        rays = np.flatnonzero(candidates[:, index])
        if not len(rays):
            continue
        t, normal = obj.intersect(origins[rays], directions[rays])
        closer = t < best_t[rays]
        rays = rays[closer]
        best_t[rays], best_id[rays], best_normal[rays] = t[closer], index, normal[closer]
    return best_t, best_id, best_normal


def in_shadow(points: np.ndarray, normals: np.ndarray, objects: list) -> np.ndarray:
    """Hard shadows: does anything block the sun? (The ground never shadows, it is below everything.)"""
    origins = points + normals * 1e-3
    directions = np.broadcast_to(SUN_DIRECTION, points.shape)
    _, blocker, _ = nearest_object_hits(objects, origins, directions, np.full(len(points), np.inf))
    return blocker >= 0


def trace(origins: np.ndarray, directions: np.ndarray, world: World, noise: NoiseField) -> np.ndarray:
    """Linear RGB (N, 3) seen along each ray."""
    t_ground = intersect_ground(origins, directions, world.ground_radius)
    t_backdrop = world.backdrop.intersect(origins, directions) if world.backdrop else np.full(len(origins), np.inf)
    t_surface = np.minimum(t_ground, t_backdrop)
    t_hit, object_id, normal = nearest_object_hits(world.objects, origins, directions, t_surface)
    on_backdrop = (object_id < 0) & (t_backdrop < t_ground)
    ground = (object_id < 0) & np.isfinite(t_ground) & ~on_backdrop
    normal[ground] = (0.0, 0.0, 1.0)
    colour = sky_colour(directions).astype(np.float32)
    hit = np.isfinite(t_hit)
    points = origins + directions * np.where(hit, t_hit, 0)[:, None]
    albedo = np.zeros_like(colour)
    albedo[ground] = ground_albedo(points[ground], noise)
    if world.backdrop is not None:
        normal[on_backdrop] = world.backdrop.normals(points[on_backdrop])
        albedo[on_backdrop] = backdrop_albedo(points[on_backdrop], noise)
    for index, obj in enumerate(world.objects):
        mask = object_id == index
        if mask.any():
            albedo[mask] = shade_material(obj.material, points[mask], noise)
    colour[hit] = lit_surface_colour(albedo[hit], normal[hit], points[hit], t_hit[hit], colour[hit], world.objects)
    return colour


def lit_surface_colour(albedo: np.ndarray, normals: np.ndarray, points: np.ndarray, distances: np.ndarray,
                       sky: np.ndarray, objects: list) -> np.ndarray:  # fmt: skip
    """Linear RGB of surface points: sun (unless shadowed) plus sky ambient, fading into the sky with distance."""
    lambert = np.clip(normals @ SUN_DIRECTION, 0, 1).astype(np.float32)
    lit = ~in_shadow(points, normals, objects)
    # Sky light comes mostly from above: surfaces facing up get more ambient than vertical ones.
    ambient = AMBIENT_COLOUR * (0.75 + 0.25 * normals[:, 2:3]).astype(np.float32)
    light = ambient + SUN_COLOUR * (lambert * lit)[:, None]
    surface_colour = albedo * light
    # Aerial perspective: far ground fades into the horizon haze (also hides aliasing at grazing angles).
    haze = (1 - np.exp(-np.maximum(distances - 8.0, 0) / 16.0))[:, None].astype(np.float32)
    return surface_colour * (1 - haze) + sky * haze


def render_image(
    config: SceneConfig, pose: CameraPose, world: World, noise: NoiseField, camera_rays: np.ndarray
) -> Image.Image:
    directions = camera_rays @ np.asarray(pose.rotation)  # R^T d, for row vectors
    if world.cull:
        linear = trace_in_chunks(directions, np.asarray(pose.center), visible_world(world, pose, config), noise)
    else:
        origins = np.broadcast_to(np.asarray(pose.center), directions.shape)
        linear = trace(origins, directions, world, noise)
    ss = config.supersampling
    # Box-filter the supersamples, then encode to sRGB-like gamma.
    linear = linear.reshape(config.height, ss, config.width, ss, 3).mean(axis=(1, 3))
    encoded = np.clip(linear, 0, 1) ** (1 / 2.2)
    return Image.fromarray(np.round(encoded * 255).astype(np.uint8), mode="RGB")


# --------------------------------------------------------------------------------------------------
# GPS
# --------------------------------------------------------------------------------------------------

GPS_IFD = 0x8825
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


def _dms(degrees: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """EXIF degrees, minutes, seconds of an absolute angle; seconds to 1e-4 (3 mm on the ground)."""
    tenth_milliseconds = round(abs(degrees) * 3600 * 10000)
    whole_degrees, remainder = divmod(tenth_milliseconds, 3600 * 10000)
    minutes, seconds = divmod(remainder, 60 * 10000)
    return IFDRational(whole_degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000)


def exif_with_gps(config: SceneConfig, fix: np.ndarray) -> Image.Exif:
    """The camera's EXIF plus a GPS block as drones write it: WGS 84 position, altitude above sea level."""
    exif = camera_exif(config)
    latitude, longitude, altitude = (float(value) for value in fix)
    gps = exif.get_ifd(GPS_IFD)
    gps[0] = b"\x02\x03\x00\x00"  # GPSVersionID 2.3
    gps[1], gps[2] = ("N" if latitude >= 0 else "S"), _dms(latitude)
    gps[3], gps[4] = ("E" if longitude >= 0 else "W"), _dms(longitude)
    gps[5], gps[6] = (b"\x00" if altitude >= 0 else b"\x01"), IFDRational(round(abs(altitude) * 1000), 1000)
    gps[18] = "WGS-84"  # GPSMapDatum
    return exif


def camera_exif(config: SceneConfig) -> Image.Exif:
    """EXIF that lets SfM start from the true focal length: 35 mm equivalent plus Make / Model."""
    focal = focal_length_px(config)
    exif = Image.Exif()
    exif[TAG_MAKE] = CAMERA_MAKE
    exif[TAG_MODEL] = CAMERA_MODEL
    exif_ifd = exif.get_ifd(EXIF_IFD)
    exif_ifd[TAG_FOCAL_LENGTH] = round(focal / config.width * SENSOR_WIDTH_MM, 3)
    # The 35 mm equivalent is defined on the diagonal (43.27 mm), which is also how COLMAP reads it back.
    diagonal_px = math.hypot(config.width, config.height)
    exif_ifd[TAG_FOCAL_35MM] = int(round(focal / diagonal_px * FULL_FRAME_DIAGONAL_MM))
    return exif


def render_sample_scene(out_dir: Path, config: SceneConfig | None = None, workers: int = 1) -> SampleScene:
    """Render a sample scene's photos (in the config's layout) and write its ground truth.

    Writes ``out_dir/images/frame_000.jpg ...`` (JPEG with EXIF focal length, Make and Model) and
    ``out_dir/ground_truth.json`` (intrinsics and, per photo, the world-to-camera rotation and
    translation in the OpenCV / COLMAP convention plus the camera centre). The same config always
    produces the same bytes.

    Args:
        out_dir: folder to write into (created if missing).
        config: what to render; the defaults give the orbit layout's 32 photos of 320x240.
        workers: photos rendered at once, on threads (numpy releases the GIL in its array loops); the bytes are
            the same whatever the count.

    Returns:
        The scene's paths and ground truth.
    """
    config = config or SceneConfig()
    if config.images < 1 or config.width < 16 or config.height < 16 or config.supersampling < 1:
        raise ValueError(f"cannot render {config.images} images of {config.width}x{config.height}")
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    world = build_world(config.layout, config)
    noise = NoiseField(config.seed)
    poses = camera_poses(config)
    exif = camera_exif(config)
    gps = gps_fixes(config, poses) if config.gps else None
    rays = camera_directions(config)

    def render_photo(index: int) -> None:
        pose = poses[index]
        image = render_image(config, pose, world, noise, rays)
        photo_exif = exif if gps is None else exif_with_gps(config, gps.written[index])
        image.save(images_dir / pose.name, quality=config.jpeg_quality, exif=photo_exif, subsampling=0)

    if workers <= 1:
        for index in range(len(poses)):
            render_photo(index)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(render_photo, range(len(poses))))
    scene = SampleScene(out_dir, images_dir, out_dir / "ground_truth.json", config.width, config.height,
                        focal_length_px(config), poses)  # fmt: skip
    write_ground_truth(scene, config, gps)
    return scene


def write_ground_truth(scene: SampleScene, config: SceneConfig, gps: GpsFixes | None = None) -> None:
    payload = {
        "convention": "x_cam = R @ x_world + t; camera looks along +z, x right, y down (OpenCV / COLMAP)",
        "world_up": [0.0, 0.0, 1.0],
        "camera": {
            "model": "PINHOLE",
            "width": scene.width,
            "height": scene.height,
            "fx": scene.focal_px,
            "fy": scene.focal_px,
            "cx": scene.width / 2,
            "cy": scene.height / 2,
        },
        "config": asdict(config),
        "images": [asdict(pose) for pose in scene.poses],
    }
    if gps is not None:
        payload["gps"] = gps.ground_truth(scene.poses)
    scene.ground_truth_file.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def load_sample_scene(root: Path) -> SampleScene:
    """Read back a rendered scene from its ``ground_truth.json``."""
    root = Path(root)
    payload = json.loads((root / "ground_truth.json").read_text(encoding="utf-8"))
    camera = payload["camera"]
    poses = [CameraPose(**item) for item in payload["images"]]
    return SampleScene(root, root / "images", root / "ground_truth.json", camera["width"], camera["height"],
                       camera["fx"], poses)  # fmt: skip
