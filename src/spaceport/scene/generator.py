"""A small, photo-like synthetic scene rendered from a drone orbit, with exact camera poses.

The scene is ray cast in pure numpy with analytic intersections: a textured ground disc, a handful of
boxes, spheres and cylinders with solid (3D) procedural textures, a sky gradient, a sun with hard
shadows plus sky ambient, and supersampling. Solid textures are a function of the world position only,
so every photo sees the same surface detail from a new angle, which is what SIFT needs to match them.

World frame: z up, the ground is ``z = 0``. Poses follow COLMAP / OpenCV: ``x_cam = R x_world + t`` with
the camera looking along +z, x to the right and y down.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

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

    Attributes:
        images: photos on the orbit.
        width: image width in pixels.
        height: image height in pixels.
        seed: drives the procedural textures and the height wobble of the orbit.
        horizontal_fov_deg: horizontal field of view of the pinhole camera.
        orbit_radius: distance of the camera from the scene centre's vertical axis.
        orbit_height: mean camera height above the ground.
        height_variation: amplitude of the camera's height wobble around the orbit.
        supersampling: samples per pixel along each axis (anti-aliasing).
        jpeg_quality: JPEG quality of the written photos.
    """

    images: int = 32
    width: int = 320
    height: int = 240
    seed: int = 7
    horizontal_fov_deg: float = 60.0
    orbit_radius: float = 6.0
    orbit_height: float = 3.2
    height_variation: float = 0.4
    supersampling: int = 2
    jpeg_quality: int = 92


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


def build_objects() -> list[Box | Sphere | Cylinder]:
    """The fixed layout of the sample scene (the seed changes textures, never what stands where)."""
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


def intersect_ground(origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origins[:, 2] / directions[:, 2]
    points_xy = origins[:, :2] + directions[:, :2] * np.where(np.isfinite(t), t, 0)[:, None]
    inside = np.isfinite(t) & (t > 1e-4) & (np.hypot(points_xy[:, 0], points_xy[:, 1]) <= GROUND_RADIUS)
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


def orbit_poses(config: SceneConfig) -> list[CameraPose]:
    """Camera poses on a circle around the scene, with a gentle height wobble, all looking at its centre."""
    rng = np.random.default_rng(config.seed)
    phase = rng.uniform(0, 2 * np.pi)
    target = np.array([0.0, 0.0, 0.5])
    poses = []
    for index in range(config.images):
        angle = 2 * np.pi * index / config.images
        height = config.orbit_height + config.height_variation * math.sin(3 * angle + phase)
        center = np.array([config.orbit_radius * math.cos(angle), config.orbit_radius * math.sin(angle), height])
        rotation, translation = look_at(center, target)
        poses.append(CameraPose(f"frame_{index:03d}.jpg", rotation.tolist(), translation.tolist(), center.tolist()))
    return poses


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


def trace(origins: np.ndarray, directions: np.ndarray, objects: list, noise: NoiseField) -> np.ndarray:
    """Linear RGB (N, 3) seen along each ray."""
    t_ground = intersect_ground(origins, directions)
    t_hit, object_id, normal = nearest_object_hits(objects, origins, directions, t_ground)
    ground = (object_id < 0) & np.isfinite(t_ground)
    normal[ground] = (0.0, 0.0, 1.0)
    colour = sky_colour(directions).astype(np.float32)
    hit = np.isfinite(t_hit)
    points = origins + directions * np.where(hit, t_hit, 0)[:, None]
    albedo = np.zeros_like(colour)
    albedo[ground] = ground_albedo(points[ground], noise)
    for index, obj in enumerate(objects):
        mask = object_id == index
        if mask.any():
            albedo[mask] = shade_material(obj.material, points[mask], noise)
    normal_hit = normal[hit]
    lambert = np.clip(normal_hit @ SUN_DIRECTION, 0, 1).astype(np.float32)
    lit = ~in_shadow(points[hit], normal_hit, objects)
    # Sky light comes mostly from above: surfaces facing up get more ambient than vertical ones.
    ambient = AMBIENT_COLOUR * (0.75 + 0.25 * normal_hit[:, 2:3]).astype(np.float32)
    light = ambient + SUN_COLOUR * (lambert * lit)[:, None]
    surface_colour = albedo[hit] * light
    # Aerial perspective: far ground fades into the horizon haze (also hides aliasing at grazing angles).
    haze = (1 - np.exp(-np.maximum(t_hit[hit] - 8.0, 0) / 16.0))[:, None].astype(np.float32)
    colour[hit] = surface_colour * (1 - haze) + colour[hit] * haze
    return colour


def render_image(
    config: SceneConfig, pose: CameraPose, objects: list, noise: NoiseField, camera_rays: np.ndarray
) -> Image.Image:
    directions = camera_rays @ np.asarray(pose.rotation)  # R^T d, for row vectors
    origins = np.broadcast_to(np.asarray(pose.center), directions.shape)
    linear = trace(origins, directions, objects, noise)
    ss = config.supersampling
    # Box-filter the supersamples, then encode to sRGB-like gamma.
    linear = linear.reshape(config.height, ss, config.width, ss, 3).mean(axis=(1, 3))
    encoded = np.clip(linear, 0, 1) ** (1 / 2.2)
    return Image.fromarray(np.round(encoded * 255).astype(np.uint8), mode="RGB")


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


def render_sample_scene(out_dir: Path, config: SceneConfig | None = None) -> SampleScene:
    """Render the sample scene's photos and write its ground truth.

    Writes ``out_dir/images/frame_000.jpg ...`` (JPEG with EXIF focal length, Make and Model) and
    ``out_dir/ground_truth.json`` (intrinsics and, per photo, the world-to-camera rotation and
    translation in the OpenCV / COLMAP convention plus the camera centre). The same config always
    produces the same bytes.

    Args:
        out_dir: folder to write into (created if missing).
        config: what to render; the defaults give 32 photos of 320x240.

    Returns:
        The scene's paths and ground truth.
    """
    config = config or SceneConfig()
    if config.images < 1 or config.width < 16 or config.height < 16 or config.supersampling < 1:
        raise ValueError(f"cannot render {config.images} images of {config.width}x{config.height}")
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    objects = build_objects()
    noise = NoiseField(config.seed)
    poses = orbit_poses(config)
    exif = camera_exif(config)
    rays = camera_directions(config)
    for pose in poses:
        image = render_image(config, pose, objects, noise, rays)
        image.save(images_dir / pose.name, quality=config.jpeg_quality, exif=exif, subsampling=0)
    scene = SampleScene(out_dir, images_dir, out_dir / "ground_truth.json", config.width, config.height,
                        focal_length_px(config), poses)  # fmt: skip
    write_ground_truth(scene, config)
    return scene


def write_ground_truth(scene: SampleScene, config: SceneConfig) -> None:
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
    scene.ground_truth_file.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def load_sample_scene(root: Path) -> SampleScene:
    """Read back a rendered scene from its ``ground_truth.json``."""
    root = Path(root)
    payload = json.loads((root / "ground_truth.json").read_text(encoding="utf-8"))
    camera = payload["camera"]
    poses = [CameraPose(**item) for item in payload["images"]]
    return SampleScene(root, root / "images", root / "ground_truth.json", camera["width"], camera["height"],
                       camera["fx"], poses)  # fmt: skip
