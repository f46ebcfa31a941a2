"""The large layouts: a mapping flight's grid and a walk around a block, both growing with the photo count.

At a fixed overlap between neighbouring photos, more photos cover a larger field or block, with more objects in
it, so no two photos see the same thing. Their worlds hold hundreds of objects, so each photo is traced against
only the objects its view (and their shadows) can reach (``raytrace.visible_world``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from spaceport.scene.cameras import CameraPose, poses_looking_at
from spaceport.scene.shapes import Box, Cylinder, Sphere, World
from spaceport.scene.textures import Material

if TYPE_CHECKING:
    # Annotations only: layouts imports this module to list the grid and the walk among its LAYOUTS.
    from spaceport.scene.layouts import SceneConfig


# Objects placed by the large layouts draw from these streams, never from the config's seed (which drives
# textures and camera wobble), so a world is the same whatever the seed.
GRID_OBJECT_SEED, WALK_OBJECT_SEED = 0x67726964, 0x77616C6B


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
