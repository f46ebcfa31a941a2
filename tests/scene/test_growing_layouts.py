"""The grid and walk layouts: captures that grow with the photo count, their content growing with them."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spaceport.scene.generator import render_sample_scene
from spaceport.scene.growing_layouts import GRID_FLIGHT, WALK_LOOP, grid_plan, walk_half_side, walk_path
from spaceport.scene.layouts import SceneConfig, build_world, camera_poses
from spaceport.scene.raytrace import camera_directions, render_image, visible_world
from spaceport.scene.shapes import Box
from spaceport.scene.textures import NoiseField

GROWING = ("grid", "walk")


def tiny(layout: str, **overrides) -> SceneConfig:
    return SceneConfig(**{"layout": layout, "images": 4, "width": 96, "height": 72, "supersampling": 1, **overrides})


def test_grid_flies_parallel_strips_with_mapping_overlap() -> None:
    # GIVEN a 128-photo grid's plan and poses
    config = SceneConfig(layout="grid", images=128)
    plan = grid_plan(config)
    centres = np.array([pose.center for pose in camera_poses(config)])
    forwards = np.array([pose.rotation[2] for pose in camera_poses(config)])

    # THEN it flies 8 strips of 16 photos, about as wide as long
    assert (plan.strips, plan.per_strip) == (8, 16)
    assert 0.7 < plan.half_x / plan.half_y < 1.3
    # AND the photos overlap as a mapping flight's do: 75 % along a strip, 65 % between strips
    across = 2 * config.orbit_height * math.tan(math.radians(config.horizontal_fov_deg) / 2)
    along = across * config.height / config.width
    assert 1 - plan.along_spacing / along == pytest.approx(GRID_FLIGHT.forward_overlap)
    assert 1 - plan.side_spacing / across == pytest.approx(GRID_FLIGHT.side_overlap)
    steps = np.diff(centres[:16, 1])
    assert np.all(np.abs(steps - plan.along_spacing) < 0.3)
    assert np.all(np.abs(np.diff(centres[::16, 0]) - plan.side_spacing) < 0.3)
    # AND every other strip is flown back, the camera pitched forward along the flight, 12 degrees off nadir
    assert abs(centres[16, 1] - centres[15, 1]) < 0.3
    assert np.all(forwards[:16, 1] > 0) and np.all(forwards[16:32, 1] < 0)
    off_nadir = np.degrees(np.arccos(-forwards[:, 2]))
    assert np.allclose(off_nadir, GRID_FLIGHT.tilt_deg, atol=1e-6)
    assert np.abs(centres[:, 2] - config.orbit_height).max() <= config.height_variation + 1e-9


def test_grid_field_and_its_objects_grow_with_the_photo_count() -> None:
    # GIVEN grids of 32, 128 and 512 photos
    sizes = (32, 128, 512)
    plans = {size: grid_plan(SceneConfig(layout="grid", images=size)) for size in sizes}
    worlds = {size: build_world("grid", SceneConfig(layout="grid", images=size)) for size in sizes}

    # THEN the field's area and its object count grow about as the photos do (same ground and objects per photo)
    area_per_photo = [4 * plans[size].half_x * plans[size].half_y / size for size in sizes]
    assert max(area_per_photo) < 2.5 * min(area_per_photo)
    objects_per_area = [len(worlds[size].objects) / (4 * plans[size].half_x * plans[size].half_y) for size in sizes]
    assert max(objects_per_area) < 1.5 * min(objects_per_area)
    assert len(worlds[512].objects) > 3 * len(worlds[128].objects) / 2 > 0
    # AND a larger field keeps the smaller one's objects where they were: it only adds around them
    assert set(worlds[32].objects) <= set(worlds[128].objects) <= set(worlds[512].objects)
    # AND the ground reaches past every photo's view
    for size in sizes:
        assert worlds[size].ground_radius > math.hypot(plans[size].half_x, plans[size].half_y)


def test_walk_loops_round_the_block_facing_it() -> None:
    # GIVEN a 128-photo walk
    config = SceneConfig(layout="walk", images=128)
    half = walk_half_side(config)
    points, facing, length = walk_path(config)
    poses = camera_poses(config)
    centres = np.array([pose.center for pose in poses])

    # THEN the path is one step per photo, and ends a step short of where it began (a closed loop)
    assert length == pytest.approx(config.images * WALK_LOOP.step)
    gaps = np.linalg.norm(np.diff(np.vstack([points, points[:1]]), axis=0), axis=1)
    assert np.all(gaps < WALK_LOOP.step * 1.01) and np.all(gaps > WALK_LOOP.step * 0.9)
    # AND every camera keeps its distance from the block (a square of side 2 * half) and faces it
    outside = np.maximum(np.abs(points) - half, 0.0)
    assert np.allclose(np.linalg.norm(outside, axis=1), WALK_LOOP.distance)
    nearest = np.clip(points, -half, half)
    towards = (nearest - points) / np.linalg.norm(nearest - points, axis=1, keepdims=True)
    assert np.allclose(facing, towards)
    forwards = np.array([pose.rotation[2] for pose in poses])[:, :2]
    turns = np.degrees(np.arccos(np.clip(np.sum(forwards / np.linalg.norm(forwards, axis=1, keepdims=True) * facing,
                                                axis=1), -1, 1)))  # fmt: skip
    assert turns.max() <= WALK_LOOP.yaw_variation_deg + 0.5
    # AND the walker's eye stays at about 1.7 units
    assert np.abs(centres[:, 2] - WALK_LOOP.camera_height).max() <= WALK_LOOP.height_variation + 1e-9


def test_walk_block_and_its_buildings_grow_with_the_photo_count() -> None:
    # GIVEN walks of 128 and 512 photos
    small, large = (SceneConfig(layout="walk", images=size) for size in (128, 512))

    # THEN the block's side grows with the path, and its buildings with the block
    assert walk_half_side(large) > 4 * walk_half_side(small)
    buildings = [
        [
            obj
            for obj in build_world("walk", config).objects
            if isinstance(obj, Box) and obj.material.pattern == "building"
        ]
        for config in (small, large)
    ]
    assert len(buildings[1]) > 4 * len(buildings[0]) > 0
    # AND no building stands on the path
    for obj in buildings[1]:
        assert max(abs(obj.center[0]), abs(obj.center[1])) <= walk_half_side(large)


@pytest.mark.parametrize("layout", GROWING)
def test_culling_a_large_world_leaves_every_photo_unchanged(layout: str) -> None:
    # GIVEN a large capture's world, and the first photos' poses
    config = SceneConfig(layout=layout, images=512, width=96, height=72, supersampling=1)
    world = build_world(layout, config)
    noise, rays = NoiseField(config.seed), camera_directions(config)

    for pose in camera_poses(config)[:3]:
        # WHEN a photo is traced against only the objects it can see or be shadowed by, and against them all
        culled = render_image(config, pose, world, noise, rays)
        everything = render_image(config, pose, dataclasses.replace(world, cull=False), noise, rays)

        # THEN the pixels are the same, and culling left objects out (the walk's cone reaches across the block)
        assert np.array_equal(np.asarray(culled), np.asarray(everything))
        assert len(visible_world(world, pose, config).objects) < len(world.objects) * (0.2 if layout == "grid" else 0.8)


@pytest.mark.parametrize("layout", GROWING)
def test_growing_layouts_repeat_byte_for_byte_and_are_textured(layout: str, tmp_path: Path) -> None:
    # GIVEN the same small capture rendered twice, one photo at a time and on three threads
    first = render_sample_scene(tmp_path / "a", tiny(layout))
    second = render_sample_scene(tmp_path / "b", tiny(layout), workers=3)

    # THEN every photo and the ground truth repeat byte for byte
    for a, b in zip(first.image_paths, second.image_paths, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert first.ground_truth_file.read_bytes() == second.ground_truth_file.read_bytes()
    # AND the lower half of each photo (ground, facades) has local contrast for SIFT
    for path in first.image_paths:
        pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)[36:]
        assert np.abs(np.diff(pixels, axis=1)).mean() > 2.0 and pixels.std() > 10


def test_the_grid_carries_gps_and_the_walk_does_not(tmp_path: Path) -> None:
    # GIVEN the layouts' defaults
    grid, walk = SceneConfig(layout="grid"), SceneConfig(layout="walk")

    # THEN the drone grid writes EXIF GPS, the walk only when asked
    assert grid.gps is True and walk.gps is False
    scene = render_sample_scene(tmp_path, tiny("walk", images=2, gps=True))
    with Image.open(scene.image_paths[0]) as photo:
        assert photo.getexif().get_ifd(0x8825)
    # AND the grid has no orbit radius, and says so when given one
    with pytest.raises(ValueError, match="grid layout has no orbit_radius"):
        SceneConfig(layout="grid", orbit_radius=3.0)
