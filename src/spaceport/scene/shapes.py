"""What a scene is made of (boxes, spheres, cylinders, a backdrop wall, the ground disc) and where rays meet it.

Every intersection is analytic and vectorised over rays: distances are inf on a miss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spaceport.scene.textures import Material

GROUND_RADIUS = 14.0


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


def intersect_ground(origins: np.ndarray, directions: np.ndarray, radius: float = GROUND_RADIUS) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origins[:, 2] / directions[:, 2]
    points_xy = origins[:, :2] + directions[:, :2] * np.where(np.isfinite(t), t, 0)[:, None]
    inside = np.isfinite(t) & (t > 1e-4) & (np.hypot(points_xy[:, 0], points_xy[:, 1]) <= radius)
    return np.where(inside, t, np.inf)
