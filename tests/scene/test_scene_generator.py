"""The sample scene generator: repeatable photos whose EXIF and ground truth describe the real camera."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spaceport.cli import main
from spaceport.scene.generator import load_sample_scene, render_sample_scene
from spaceport.scene.layouts import (
    DRONE_TARGET,
    FACADE_FRONT_Y,
    FACADE_HALF_LENGTH,
    FACADE_HEIGHT,
    OBJECT_BACKDROP,
    OBJECT_TARGET,
    SKYLINE_TARGET,
    SceneConfig,
    camera_poses,
    focal_length_px,
)

SMALL = SceneConfig(images=4, width=96, height=72, supersampling=1)


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    # GIVEN two renders with one seed and one with another
    first = render_sample_scene(tmp_path / "a", SMALL)
    second = render_sample_scene(tmp_path / "b", SMALL)
    other = render_sample_scene(tmp_path / "c", SceneConfig(**{**SMALL.__dict__, "seed": SMALL.seed + 1}))

    # THEN the same seed reproduces every photo and the ground truth byte for byte
    for a, b in zip(first.image_paths, second.image_paths, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert first.ground_truth_file.read_bytes() == second.ground_truth_file.read_bytes()
    # AND another seed gives other photos
    assert first.image_paths[0].read_bytes() != other.image_paths[0].read_bytes()


def test_photos_carry_exif_focal_length_that_matches_the_camera(tmp_path: Path) -> None:
    # GIVEN a rendered scene
    scene = render_sample_scene(tmp_path, SMALL)

    # WHEN a photo's EXIF is read back
    with Image.open(scene.image_paths[0]) as photo:
        exif = photo.getexif()
        size = photo.size
    exif_ifd = exif.get_ifd(0x8769)

    # THEN it names a camera and its 35 mm focal length converts back to the true focal length in pixels
    assert size == (SMALL.width, SMALL.height)
    assert exif[0x010F] and exif[0x0110]
    assert float(exif_ifd[0x920A]) > 0
    focal_from_exif = exif_ifd[0xA405] / math.hypot(36, 24) * math.hypot(*size)
    assert abs(focal_from_exif - scene.focal_px) / scene.focal_px < 0.03


def test_ground_truth_poses_look_at_the_scene_centre(tmp_path: Path) -> None:
    # GIVEN a rendered scene and its ground truth file
    scene = render_sample_scene(tmp_path, SMALL)
    truth = json.loads(scene.ground_truth_file.read_text())

    for pose in truth["images"]:
        rotation, translation = np.array(pose["rotation"]), np.array(pose["translation"])
        # THEN each rotation is proper and the centre is -R^T t
        assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
        assert np.isclose(np.linalg.det(rotation), 1.0)
        assert np.allclose(-rotation.T @ translation, pose["center"])
        # AND the orbit's target projects to the principal point, in front of the camera
        camera_point = rotation @ np.array([0.0, 0.0, 0.5]) + translation
        assert camera_point[2] > 0
        u = truth["camera"]["fx"] * camera_point[0] / camera_point[2] + truth["camera"]["cx"]
        v = truth["camera"]["fy"] * camera_point[1] / camera_point[2] + truth["camera"]["cy"]
        assert abs(u - SMALL.width / 2) < 1e-6 and abs(v - SMALL.height / 2) < 1e-6
    # AND the scene reads back as written
    assert load_sample_scene(tmp_path).camera_centers().tolist() == scene.camera_centers().tolist()


def test_photos_are_textured_not_flat(tmp_path: Path) -> None:
    # GIVEN a rendered photo
    scene = render_sample_scene(tmp_path, SceneConfig(images=1, width=160, height=120))
    pixels = np.asarray(Image.open(scene.image_paths[0]).convert("L"), dtype=np.float64)

    # THEN its lower half (ground and objects) has local contrast everywhere, which SIFT needs
    lower = pixels[60:]
    local_detail = np.abs(np.diff(lower, axis=1)).mean()
    assert local_detail > 2.0
    assert lower.std() > 15


def test_cli_renders_the_requested_photos(tmp_path: Path, capsys) -> None:
    # WHEN the command renders three small photos
    code = main(["sample-scene", str(tmp_path / "out"), "--images", "3", "--width", "64", "--height", "48"])

    # THEN it succeeds and writes them with their ground truth
    assert code == 0
    photos = sorted((tmp_path / "out" / "images").glob("*.jpg"))
    assert [p.name for p in photos] == ["frame_000.jpg", "frame_001.jpg", "frame_002.jpg"]
    assert Image.open(photos[0]).size == (64, 48)
    assert len(json.loads((tmp_path / "out" / "ground_truth.json").read_text())["images"]) == 3


def test_cli_rejects_an_impossible_size(tmp_path: Path) -> None:
    # WHEN asked for images too small to show anything
    code = main(["sample-scene", str(tmp_path), "--width", "4"])

    # THEN it fails cleanly
    assert code == 2


# --------------------------------------------------------------------------------------------------
# Capture layouts
# --------------------------------------------------------------------------------------------------

NEW_LAYOUTS = ("drone", "facade", "object", "skyline")


def small(layout: str, **overrides) -> SceneConfig:
    """A few tiny photos of a layout: enough to check its poses and determinism in well under a second."""
    return SceneConfig(**{"layout": layout, "images": 4, "width": 96, "height": 72, "supersampling": 1, **overrides})


def project(truth: dict, pose: dict, point: np.ndarray) -> tuple[float, float, float]:
    """Pixel coordinates and depth of a world point in a ground-truth camera."""
    camera_point = np.array(pose["rotation"]) @ point + np.array(pose["translation"])
    camera = truth["camera"]
    u = camera["fx"] * camera_point[0] / camera_point[2] + camera["cx"]
    v = camera["fy"] * camera_point[1] / camera_point[2] + camera["cy"]
    return u, v, camera_point[2]


def assert_proper_pose(pose: dict) -> None:
    rotation, translation = np.array(pose["rotation"]), np.array(pose["translation"])
    assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
    assert np.isclose(np.linalg.det(rotation), 1.0)
    assert np.allclose(-rotation.T @ translation, pose["center"])


def test_layouts_fill_their_own_defaults_and_keep_explicit_values() -> None:
    # WHEN configs name only a layout, or a layout and some fields
    orbit, drone, facade, obj = (SceneConfig(layout=name) for name in ("orbit", "drone", "facade", "object"))
    explicit = SceneConfig(layout="drone", images=10, orbit_radius=4.0)

    # THEN the orbit keeps today's defaults and every other layout gets its own
    assert (orbit.images, orbit.orbit_radius, orbit.orbit_height, orbit.height_variation) == (32, 6.0, 3.2, 0.4)
    assert SceneConfig() == orbit
    assert drone.images == 36 and facade.images == 32 and obj.images == 32
    assert obj.orbit_radius is not None and 2.0 <= obj.orbit_radius <= 3.0
    # AND the facade walk has no orbit, and says so when given one
    assert facade.orbit_radius is None
    with pytest.raises(ValueError, match="facade layout has no orbit_radius"):
        SceneConfig(layout="facade", orbit_radius=5.0)
    # AND explicit values win over the layout's defaults
    assert (explicit.images, explicit.orbit_radius, explicit.orbit_height) == (10, 4.0, drone.orbit_height)


@pytest.mark.parametrize("layout", NEW_LAYOUTS)
def test_each_layout_repeats_byte_for_byte_and_records_itself(layout: str, tmp_path: Path) -> None:
    # GIVEN the same small layout rendered twice
    first = render_sample_scene(tmp_path / "a", small(layout))
    second = render_sample_scene(tmp_path / "b", small(layout))

    # THEN every photo and the ground truth repeat byte for byte
    for a, b in zip(first.image_paths, second.image_paths, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert first.ground_truth_file.read_bytes() == second.ground_truth_file.read_bytes()
    # AND the ground truth names the layout, in the same format as the orbit's
    truth = json.loads(first.ground_truth_file.read_text())
    assert truth["config"]["layout"] == layout
    assert [pose["name"] for pose in truth["images"]] == [f"frame_{index:03d}.jpg" for index in range(4)]


def test_layouts_differ_from_each_other_and_with_the_seed(tmp_path: Path) -> None:
    # GIVEN the first photo and poses of every layout, and of one layout with another seed
    layouts = ("orbit", *NEW_LAYOUTS)
    scenes = {layout: render_sample_scene(tmp_path / layout, small(layout, images=2)) for layout in layouts}
    reseeded = render_sample_scene(tmp_path / "reseeded", small("facade", images=2, seed=8))

    # THEN no two layouts share a photo or a camera position
    photos = [scene.image_paths[0].read_bytes() for scene in scenes.values()]
    assert len(set(photos)) == len(layouts)
    centres = [scene.camera_centers()[0].round(6).tobytes() for scene in scenes.values()]
    assert len(set(centres)) == len(layouts)
    # AND another seed changes a layout's photos
    assert reseeded.image_paths[0].read_bytes() != scenes["facade"].image_paths[0].read_bytes()


@pytest.mark.parametrize(("layout", "target"),
                         [("drone", DRONE_TARGET), ("object", OBJECT_TARGET), ("skyline", SKYLINE_TARGET)])  # fmt: skip
def test_orbiting_layouts_aim_every_camera_at_their_target(layout: str, target: np.ndarray, tmp_path: Path) -> None:
    # GIVEN a rendered orbiting layout and its ground truth
    scene = render_sample_scene(tmp_path, small(layout, images=6))
    truth = json.loads(scene.ground_truth_file.read_text())

    for pose in truth["images"]:
        # THEN each pose is a proper rotation with centre -R^T t
        assert_proper_pose(pose)
        # AND the target lies in front of the camera, on the principal point
        u, v, depth = project(truth, pose, target)
        assert depth > 0
        assert abs(u - scene.width / 2) < 1e-6 and abs(v - scene.height / 2) < 1e-6
    # AND it reads back as written
    assert load_sample_scene(tmp_path).camera_centers().tolist() == scene.camera_centers().tolist()


def test_drone_flies_a_high_wide_ring_then_a_low_close_one() -> None:
    # GIVEN the drone layout's default poses
    config = SceneConfig(layout="drone")
    centres = np.array([pose.center for pose in camera_poses(config)])
    high, low = centres[: config.images // 2], centres[config.images // 2 :]

    # THEN half the photos come from a ring both higher and wider than the other half's
    assert len(high) == len(low) == 18
    assert high[:, 2].min() > low[:, 2].max()
    assert np.hypot(high[:, 0], high[:, 1]).min() > np.hypot(low[:, 0], low[:, 1]).max()
    # AND the high ring looks down more steeply at the scene centre
    pitch = np.degrees(np.arctan2(centres[:, 2] - DRONE_TARGET[2], np.hypot(centres[:, 0], centres[:, 1])))
    assert pitch[: len(high)].min() > pitch[len(high) :].max() + 5


def test_facade_walk_sees_the_wall_from_the_front_only(tmp_path: Path) -> None:
    # GIVEN the facade layout's ground truth
    scene = render_sample_scene(tmp_path, small("facade", images=8))
    truth = json.loads(scene.ground_truth_file.read_text())

    for pose in truth["images"]:
        assert_proper_pose(pose)
        rotation, centre = np.array(pose["rotation"]), np.array(pose["center"])
        forward = rotation[2]
        # THEN every camera stands in front of the wall, facing it within a small yaw
        assert centre[1] < FACADE_FRONT_Y
        yaw = np.degrees(np.arctan2(forward[0], forward[1]))
        assert abs(yaw) < 10
        # AND its optical axis meets the wall's front face, ahead of it, within the wall
        distance = (FACADE_FRONT_Y - centre[1]) / forward[1]
        hit = centre + distance * forward
        assert distance > 0
        assert abs(hit[0]) < FACADE_HALF_LENGTH and 0 < hit[2] < FACADE_HEIGHT
    # AND the walk goes along the wall, not into it
    centres = scene.camera_centers()
    assert np.ptp(centres[:, 0]) > 4 * np.ptp(centres[:, 1])


def test_object_orbit_is_close_and_the_backdrop_fills_every_view_top(tmp_path: Path) -> None:
    # GIVEN the object layout's default poses
    config = SceneConfig(layout="object")
    poses = camera_poses(config)
    focal = focal_length_px(config)

    for pose in poses:
        rotation, centre = np.array(pose.rotation), np.array(pose.center)
        # THEN every camera is 2 to 3 units from the object, inside the backdrop wall
        assert 2.0 <= np.linalg.norm(centre - OBJECT_TARGET) <= 3.0
        # AND the rays through the top corners meet the backdrop: no sky, a detailed background at one depth
        corners = np.array(
            [[-config.width / 2, -config.height / 2, focal], [config.width / 2, -config.height / 2, focal]]
        )
        directions = corners @ rotation / np.linalg.norm(corners, axis=1, keepdims=True)
        distances = OBJECT_BACKDROP.intersect(np.tile(centre, (2, 1)), directions)
        assert np.all(np.isfinite(distances))


# The drone's photos show sky above the horizon; the facade and the backdrop fill the whole frame.
@pytest.mark.parametrize(("layout", "first_textured_row"), [("drone", 60), ("facade", 0), ("object", 0)])
def test_layout_photos_are_textured(layout: str, first_textured_row: int, tmp_path: Path) -> None:
    # GIVEN a rendered 160x120 photo of the layout
    scene = render_sample_scene(tmp_path, SceneConfig(layout=layout, images=1, width=160, height=120))
    pixels = np.asarray(Image.open(scene.image_paths[0]).convert("L"), dtype=np.float64)

    # THEN below the sky (everywhere but the drone's upper half) it has local contrast for SIFT
    textured = pixels[first_textured_row:]
    assert np.abs(np.diff(textured, axis=1)).mean() > 2.0
    assert textured.std() > 15
    # AND it is neither black nor blown out
    assert 40 < pixels.mean() < 215


def test_an_unknown_layout_names_the_valid_ones(tmp_path: Path, capsys) -> None:
    # WHEN a config or the command asks for a layout that does not exist
    with pytest.raises(ValueError, match="unknown layout 'spiral'; valid layouts: orbit, drone, facade, object"):
        SceneConfig(layout="spiral")
    code = main(["sample-scene", str(tmp_path / "out"), "--layout", "spiral"])

    # THEN the command fails cleanly, says which layouts exist and writes nothing
    assert code == 2
    assert "valid layouts: orbit, drone, facade, object" in capsys.readouterr().out
    assert not (tmp_path / "out").exists()


def test_cli_renders_the_requested_layout(tmp_path: Path) -> None:
    # WHEN the command renders two small photos of the object layout
    code = main(
        ["sample-scene", str(tmp_path), "--layout", "object", "--images", "2", "--width", "64", "--height", "48"]
    )

    # THEN it writes them, and the ground truth records the layout
    assert code == 0
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    assert truth["config"]["layout"] == "object"
    assert len(truth["images"]) == 2


# --------------------------------------------------------------------------------------------------
# GPS
# --------------------------------------------------------------------------------------------------


def test_drone_photos_carry_gps_near_the_truth_and_one_wrong_fix(tmp_path: Path) -> None:
    import pycolmap

    from spaceport.scene.gps import GPS_SURVEY
    from spaceport.sfm.georef import read_gps_fixes

    # GIVEN a small drone capture (GPS is on by default for the drone)
    scene = render_sample_scene(tmp_path, small("drone", images=12))
    truth = json.loads(scene.ground_truth_file.read_text())["gps"]

    # WHEN each photo's EXIF fix is read and placed in metres around the world origin's true position
    fixes = read_gps_fixes(scene.images_dir, [pose.name for pose in scene.poses])
    origin = truth["origin"]
    converter = pycolmap.GPSTransform(pycolmap.GPSTransformEllipsoid.WGS84)
    fixed = converter.ellipsoid_to_enu(np.array([[f.latitude, f.longitude, f.altitude] for f in fixes.values()]),
                                       origin["latitude"], origin["longitude"], origin["altitude_m"])  # fmt: skip
    true = GPS_SURVEY.world_to_enu(scene.camera_centers())

    # THEN every photo has one, within receiver noise of where the camera was, except the one the truth names
    assert list(fixes) == [pose.name for pose in scene.poses]
    errors = np.linalg.norm(fixed - true, axis=1)
    wrong = [pose.name for pose, error in zip(scene.poses, errors, strict=True) if error > 5.0]
    assert wrong == [truth["wrong_fix"]]
    assert errors[errors <= 5.0].max() < 4 * math.hypot(GPS_SURVEY.horizontal_noise_m, GPS_SURVEY.vertical_noise_m)
    # AND the ground truth's true positions are the camera centres, to the millimetre
    true_recorded = np.array([item["true"] for item in truth["images"]])
    recorded = converter.ellipsoid_to_enu(true_recorded, origin["latitude"], origin["longitude"], origin["altitude_m"])
    assert np.abs(recorded - true).max() < 1e-3


def test_gps_is_an_option_that_changes_only_the_exif(tmp_path: Path) -> None:
    # GIVEN the same orbit rendered without GPS (its default) and with it
    plain = render_sample_scene(tmp_path / "plain", small("orbit", images=2))
    located = render_sample_scene(tmp_path / "gps", small("orbit", images=2, gps=True))

    # THEN only the second carries GPS and records it, and the pixels are the same
    for path, expected in ((plain.image_paths[0], False), (located.image_paths[0], True)):
        with Image.open(path) as photo:
            assert bool(photo.getexif().get_ifd(0x8825)) is expected
    assert "gps" not in json.loads(plain.ground_truth_file.read_text())
    assert "gps" in json.loads(located.ground_truth_file.read_text())
    assert np.array_equal(np.asarray(Image.open(plain.image_paths[0])), np.asarray(Image.open(located.image_paths[0])))
    # AND the layouts' defaults: GPS for the drone only
    assert [SceneConfig(layout=name).gps for name in ("orbit", "drone", "facade", "object")] == [
        False, True, False, False]  # fmt: skip


def test_the_skyline_ring_looks_past_the_grounds_edge_into_a_featureless_sky(tmp_path: Path) -> None:
    # GIVEN a photo of the skyline layout
    scene = render_sample_scene(tmp_path, SceneConfig(layout="skyline", images=1, width=160, height=120))
    pixels = np.asarray(Image.open(scene.image_paths[0]).convert("RGB"), dtype=np.float64)

    # THEN the cameras stand low (lower than the sample's orbit) and look nearly level
    poses = camera_poses(SceneConfig(layout="skyline"))
    assert all(2.8 < pose.center[2] < 3.2 for pose in poses)
    assert all(-0.25 < pose.rotation[2][2] < -0.18 for pose in poses)
    # AND the top third of the photo is sky: blue, smooth (no texture for SIFT), brighter towards the horizon
    sky = pixels[:40]
    assert (sky[..., 2] > sky[..., 0]).all()
    assert np.abs(np.diff(sky.mean(axis=2), axis=1)).mean() < 1.0
    assert sky[-1].mean() > sky[0].mean()
    # AND the bottom half is textured ground and objects
    assert np.abs(np.diff(pixels[60:].mean(axis=2), axis=1)).mean() > 2.0
