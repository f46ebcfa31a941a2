"""write_viewer, the page it writes, and the camera it carries (no browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pydantic
import pytest

import spaceport.viewer as viewer
from spaceport.viewer import ENGINE_FILE, EngineMissingError, camera_from_pose, write_viewer

CAMERA = {"position": [0.0, 0.0, -4.0], "target": [0.0, 0.0, 0.0], "up": [0.0, -1.0, 0.0], "fov": 60.0}


def _inlined_config(index: Path) -> dict:
    match = re.search(r'<script type="application/json" id="spaceport-config">(.*?)</script>', index.read_text())
    assert match, "the page has no inlined configuration"
    return json.loads(match.group(1))


def test_write_viewer_makes_a_self_contained_folder(tmp_path: Path) -> None:
    # GIVEN a run folder
    # WHEN the viewer is written into it with a training camera
    index = write_viewer(tmp_path, CAMERA)

    # THEN the page, its script and the engine sit next to where scene.sog goes, with the camera inlined
    assert index == tmp_path / "index.html"
    assert (tmp_path / "static" / "viewer.js").read_bytes() == (viewer.STATIC_DIR / "viewer.js").read_bytes()
    assert (tmp_path / "static" / ENGINE_FILE).stat().st_size > 1_000_000
    config = _inlined_config(index)
    assert config == {"scene": "scene.sog", "camera": CAMERA, "background": list(viewer.BACKGROUND), "frame": None,
                      "skyShell": False}  # fmt: skip
    # AND the page loads nothing from outside the folder (the package works offline)
    assert not re.search(r"(src|href)=\"(https?:)?//", index.read_text())
    assert "https://" not in (tmp_path / "static" / "viewer.js").read_text()


def test_write_viewer_without_camera_frames_the_scene(tmp_path: Path) -> None:
    # GIVEN no training camera
    # WHEN the viewer is written
    index = write_viewer(tmp_path, None)

    # THEN the page is told to frame the scene's bounds itself
    assert _inlined_config(index)["camera"] is None


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("gps", {"up": [0.0, 0.0, 1.0], "georeferenced": True, "metres_per_unit": 1.0, "north": [0.0, 1.0, 0.0]}),
        ("upright", {"up": [0.0, 0.0, 1.0], "georeferenced": False, "metres_per_unit": None, "north": None}),
        ("none", None),
    ],
)
def test_write_viewer_tells_the_page_the_frame_from_georef_json(tmp_path: Path, method: str, expected) -> None:
    # GIVEN a run's georef.json of each kind
    # WHEN the viewer is written with it
    index = write_viewer(tmp_path, CAMERA, {"method": method})

    # THEN the page learns whether z is up, and for a georeferenced scene its metres and north (for the scale bar
    # and the north arrow); SfM's own frame tells it nothing
    assert _inlined_config(index)["frame"] == expected


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"fov": 0.0}, "fov"),
        ({"target": [0.0, 0.0, -4.0]}, "coincide"),
        ({"up": [0.0, 0.0, 1.0]}, "parallel"),
        ({"position": [0.0, float("nan"), 0.0]}, "finite"),
        ({"up": [0.0, 1.0]}, "up"),
    ],
)
def test_write_viewer_rejects_a_malformed_camera(tmp_path: Path, change: dict, reason: str) -> None:
    # GIVEN a camera with one bad field
    camera = {**CAMERA, **change}

    # WHEN the viewer is written THEN it refuses, naming the problem, and writes no page
    with pytest.raises(pydantic.ValidationError, match=reason):
        write_viewer(tmp_path, camera)
    assert not (tmp_path / "index.html").exists()


def test_write_viewer_names_the_fix_when_the_engine_was_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a package whose static folder lacks the engine (`make setup` not run)
    monkeypatch.setattr(viewer, "STATIC_DIR", tmp_path / "empty")

    # WHEN the viewer is written THEN the error says how to fix it
    with pytest.raises(EngineMissingError, match="make setup"):
        write_viewer(tmp_path / "run", CAMERA)


def test_camera_from_pose_sees_what_the_colmap_camera_saw() -> None:
    # GIVEN a COLMAP camera (x_cam = R x_world + t) turned 90 degrees about the world y axis, 3 units from the
    # origin, with a 480-pixel-high image and a focal length of 240 pixels
    rotation = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    translation = np.array([0.0, 0.0, 3.0])

    # WHEN it becomes a viewer camera with the target 3 units ahead
    camera = camera_from_pose(rotation, translation, focal_y=240.0, image_height=480, target_distance=3.0)

    # THEN it sits at the camera centre, looks along the optical axis (+z of the camera) at the origin, keeps the
    # image's up (-y of the camera) and has the photo's vertical field of view
    np.testing.assert_allclose(camera["position"], -rotation.T @ translation, atol=1e-12)
    np.testing.assert_allclose(camera["position"], [-3.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(camera["target"], [0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(camera["up"], [0.0, -1.0, 0.0], atol=1e-12)
    assert camera["fov"] == pytest.approx(90.0)
    json.dumps(camera)  # plain JSON types: the local run may store it beside the scene
