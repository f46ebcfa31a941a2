"""From camera rays to pixels: ray casting against a world, sun and sky lighting, supersampled photos.

A sun with hard shadows plus sky ambient, a sky gradient behind everything, and haze with distance.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from PIL import Image

from spaceport.scene.cameras import CameraPose
from spaceport.scene.layouts import SceneConfig, focal_length_px
from spaceport.scene.shapes import World, intersect_ground, nearest_object_hits
from spaceport.scene.textures import NoiseField, backdrop_albedo, ground_albedo, shade_material

SUN_DIRECTION = np.array([0.45, -0.35, 0.82]) / np.linalg.norm([0.45, -0.35, 0.82])
SUN_COLOUR = np.array([1.0, 0.95, 0.85], dtype=np.float32)
AMBIENT_COLOUR = np.array([0.32, 0.36, 0.45], dtype=np.float32)

# A shadow ray from a visible point meets an object at most this many times the object's top height away.
SHADOW_REACH_PER_HEIGHT = 1.0 / SUN_DIRECTION[2]
# Rays traced at once in a large world: bounds the (rays x objects) intersection arrays at 1600 px.
TRACE_CHUNK_RAYS = 1 << 18


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
