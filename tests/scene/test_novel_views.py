"""The novel-view sweep: ground truth from off the capture path, for scoring a splat where the viewer goes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spaceport.scene.generator import render_sample_scene
from spaceport.scene.layouts import SceneConfig, build_world, camera_poses
from spaceport.scene.novel_views import (
    KINDS,
    NOVEL_VIEWS_DIR,
    SWEEP_OFFSET,
    neighbour_pairs,
    surface_distance,
    sweep,
)


def test_neighbours_are_consecutive_photos_but_not_across_a_jump() -> None:
    # GIVEN photos along a ring, then a jump to a second ring
    centres = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [10, 0, 0], [11, 0, 0]])

    # THEN the jump between the third and fourth is not a neighbour pair
    assert neighbour_pairs(centres) == [0, 1, 3]


@pytest.mark.parametrize("layout", ["orbit", "drone", "facade", "object", "skyline"])
def test_the_sweep_moves_off_the_path_by_its_offset_and_keeps_looking_at_the_scene(layout: str) -> None:
    # GIVEN a layout's photos and its world
    config = SceneConfig(layout=layout)
    poses = camera_poses(config)
    centres = np.array([pose.center for pose in poses])

    # WHEN its sweep is made
    world = build_world(layout, config)
    views = sweep(poses, world)

    # THEN it has four anchors of four kinds, each a proper pose
    assert [view.kind for view in views] == list(KINDS) * 4
    for anchor in range(4):
        group = {view.kind: view.pose for view in views[4 * anchor : 4 * anchor + 4]}
        between = np.array(group["between"].center)
        # the anchor lies between two neighbouring photos, on the path, and no photo was taken there
        assert np.linalg.norm(centres - between, axis=1).min() > 0.05
        # raised and lowered move straight up and down, inward horizontally, all by the same offset
        raised, lowered, inward = (np.array(group[kind].center) - between for kind in ("raised", "lowered", "inward"))
        offset = raised[2]
        assert offset > 0 and np.allclose(raised[:2], 0) and np.allclose(lowered, -raised)
        assert inward[2] == pytest.approx(0.0) and np.linalg.norm(inward) == pytest.approx(offset)
        # the offset is SWEEP_OFFSET of the horizontal distance to the surface the anchor looks at (for an orbit,
        # about its radius), and every pose of the anchor looks at that same point
        forward = np.array(group["between"].rotation)[2]
        distance = surface_distance(world, between, forward)
        target = between + distance * forward
        assert offset == pytest.approx(SWEEP_OFFSET * distance * np.linalg.norm(forward[:2]), rel=1e-6)
        for pose in group.values():
            rotation, centre = np.array(pose.rotation), np.array(pose.center)
            assert np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-9)
            aim = (target - centre) / np.linalg.norm(target - centre)
            assert np.allclose(rotation[2], aim, atol=1e-9)


def test_the_sweep_is_rendered_beside_the_photos_only_when_asked(tmp_path: Path) -> None:
    # GIVEN a small orbit rendered with and without its sweep
    config = SceneConfig(images=6, width=64, height=48, supersampling=1)
    plain = render_sample_scene(tmp_path / "plain", config)
    swept = render_sample_scene(tmp_path / "swept", config, novel_views=True)

    # THEN the photos and their ground truth are the same either way, the photo folder holds only photos
    for a, b in zip(plain.image_paths, swept.image_paths, strict=True):
        assert a.read_bytes() == b.read_bytes()
    assert sorted(p.name for p in swept.images_dir.iterdir()) == sorted(p.name for p in plain.images_dir.iterdir())
    truth = json.loads(swept.ground_truth_file.read_text())
    assert "novel_views" not in json.loads(plain.ground_truth_file.read_text())
    assert truth["images"] == json.loads(plain.ground_truth_file.read_text())["images"]
    # AND the sweep's views are lossless images of the photos' size, one per listed pose
    names = [item["name"] for item in truth["novel_views"]]
    assert len(names) == 16 and {item["kind"] for item in truth["novel_views"]} == set(KINDS)
    for name in names:
        with Image.open(tmp_path / "swept" / NOVEL_VIEWS_DIR / name) as image:
            assert image.format == "PNG" and image.size == (64, 48)


def test_the_command_renders_the_sweep_when_asked(tmp_path: Path, capsys) -> None:
    from spaceport.cli import main

    # WHEN the command renders a small object capture with its sweep
    code = main(["sample-scene", str(tmp_path), "--layout", "object", "--images", "4", "--width", "48", "--height",
                 "36", "--novel-views"])  # fmt: skip

    # THEN the sweep's views lie beside the photos and the command says where
    assert code == 0 and len(list((tmp_path / NOVEL_VIEWS_DIR).glob("*.png"))) == 12
    assert "novel_views" in capsys.readouterr().out
