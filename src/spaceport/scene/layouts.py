"""What to render (``SceneConfig``) and the capture layouts: what stands in each world and where its cameras go.

Layouts (``SceneConfig.layout``), so benchmarks can measure on captures unlike the default one:

- ``orbit``: one drone orbit around boxes, spheres and cylinders (the bundled sample scene).
- ``drone``: a drone double orbit, a high, wide ring looking steeply down and a low, close one.
- ``facade``: a one-sided walk along a brick facade with windows; nothing is seen from behind.
- ``object``: a close orbit around one object on a pedestal, inside a textured backdrop wall.
- ``skyline``: a low ring looking across the drone layout's objects and past the ground's edge into the sky.
- ``grid``: a drone mapping flight, lawn-mower strips over a field of scattered objects (GPS on by default).
- ``walk``: a long walk around a city block, photos facing its brick buildings, ending where it began.

The grid and the walk, whose worlds grow with the photo count, live in ``growing_layouts``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from spaceport.scene.cameras import CameraPose, poses_looking_at
from spaceport.scene.growing_layouts import grid_poses, grid_world, walk_poses, walk_world
from spaceport.scene.shapes import BackdropWall, Box, Cylinder, Sphere, World
from spaceport.scene.textures import Material


@dataclass(frozen=True)
class SceneConfig:
    """What to render.

    Fields left at None take the layout's default (see ``LAYOUTS``), so ``SceneConfig(layout="drone")``
    is a complete capture; after construction only the fields a layout has no use for stay None (the facade's
    and walk's orbit fields, the grid's orbit radius).

    Attributes:
        images: photos in the capture (orbit 32, drone 36, facade 32, object 32, skyline 32, grid 32, walk 32).
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
        layout: the capture layout, one of ``LAYOUTS``: "orbit", "drone", "facade", "object", "skyline", "grid" or
            "walk".
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


def focal_length_px(config: SceneConfig) -> float:
    return 0.5 * config.width / math.tan(math.radians(config.horizontal_fov_deg) / 2)


def camera_poses(config: SceneConfig) -> list[CameraPose]:
    """The config's layout's camera poses, in photo order."""
    return LAYOUTS[config.layout].poses(config)


def build_objects(layout: str = "orbit") -> list[Box | Sphere | Cylinder]:
    """What stands where in a layout (the seed changes textures, never the objects)."""
    return LAYOUTS[layout].objects()


def build_world(layout: str, config: SceneConfig | None = None) -> World:
    """The objects and backdrop of a layout (``LAYOUTS``); the grid's and walk's grow with ``config.images``."""
    spec = LAYOUTS[layout]
    if spec.world is not None:
        return spec.world(config or SceneConfig(layout=layout))
    return World(build_objects(layout), spec.backdrop)


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


SKYLINE_TARGET = np.array([0.0, 0.0, 1.2])


def skyline_poses(config: SceneConfig) -> list[CameraPose]:
    """A low ring, looking nearly level across the scene and past the ground's edge into the sky behind it.

    The cameras look only 13 degrees down, so the top 40 % of every photo is featureless sky, above the horizon and,
    beyond the ground's edge, below it too: a capture in which nothing but the background can explain that part of
    every frame. (Lower, about as high as the objects, structure from motion registered 11 of 32 photos: the ground
    seen at a graze matches badly.)
    """
    rng = np.random.default_rng(config.seed)
    phase = rng.uniform(0, 2 * np.pi)
    centers = ring_centers(config.images, config.orbit_radius, config.orbit_height, config.height_variation, phase)
    return poses_looking_at(centers, SKYLINE_TARGET)


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
    # The drone layout's objects, seen from a ring as low as they are tall.
    "skyline": Layout(LayoutDefaults(images=32, orbit_radius=8.0, orbit_height=3.0, height_variation=0.15),
                      drone_objects, skyline_poses),
    # Flown 7 units (28 m) up; the field and its objects grow with the photo count (grid_plan).
    "grid": Layout(LayoutDefaults(images=32, orbit_radius=None, orbit_height=7.0, height_variation=0.05, gps=True),
                   lambda: build_world("grid").objects, grid_poses, world=grid_world),
    # The block and its buildings grow with the photo count (WalkLoop).
    "walk": Layout(LayoutDefaults(images=32, orbit_radius=None, orbit_height=None, height_variation=None),
                   lambda: build_world("walk").objects, walk_poses, world=walk_world),
}  # fmt: skip
