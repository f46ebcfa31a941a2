"""The sample scene generator: repeatable photos whose EXIF and ground truth describe the real camera."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image

from spaceport.cli import main
from spaceport.scene.generator import SceneConfig, load_sample_scene, render_sample_scene

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
