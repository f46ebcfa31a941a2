"""Reading the sfm output: split, intrinsics scaling, and clear failures on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from spaceport.contract import StageError
from spaceport.train.data import load_scene, scaled_size, split_names

from .synthetic import SyntheticSpec, intrinsics, make_synthetic_sfm, orbit_viewmats


def test_every_eighth_image_in_name_order_is_held_out() -> None:
    # GIVEN 17 image names in shuffled order
    names = [f"img_{i:02d}.jpg" for i in (5, 0, 16, 8, 1, 2, 3, 4, 6, 7, 9, 10, 11, 12, 13, 14, 15)]

    # WHEN split
    train, test = split_names(names)

    # THEN indices 0, 8 and 16 of the sorted list are test views, disjoint from the rest
    assert test == ["img_00.jpg", "img_08.jpg", "img_16.jpg"]
    assert len(train) == 14 and not set(train) & set(test)


def test_held_out_views_load_at_the_training_resolution_with_their_full_size_sources(synthetic_sfm: Path) -> None:
    # GIVEN the synthetic 64x48 model
    spec = SyntheticSpec()

    # WHEN loaded for training at a longest side of 32 pixels
    scene = load_scene(synthetic_sfm, resolution=32, device="cpu")

    # THEN train and test views are 32x24 with intrinsics halved (3DGS scores at the training resolution)
    view = scene.train_views[0]
    assert (view.width, view.height) == (32, 24) and view.image.shape == (24, 32, 3)
    halved = torch.tensor(intrinsics(spec), dtype=torch.float32) * torch.tensor([[0.5], [0.5], [1.0]])
    assert torch.allclose(view.K, halved)
    assert [v.name for v in scene.test_views] == ["view_000.png", "view_008.png"]
    assert all((v.width, v.height) == (32, 24) for v in scene.test_views)
    # AND the test photos' full-size sources stay available
    assert [(s.name, s.width, s.height) for s in scene.full_size_test] == [("view_000.png", 64, 48),
                                                                           ("view_008.png", 64, 48)]  # fmt: skip
    # the poses are the exact world-to-camera matrices the images were rendered with
    expected = torch.tensor(orbit_viewmats(spec)[1], dtype=torch.float32)
    assert torch.allclose(view.viewmat, expected, atol=1e-5)
    assert len(scene.points) == spec.points and 0.0 <= scene.colors.min() and scene.colors.max() <= 1.0


def test_scaled_size_keeps_aspect_and_never_upscales() -> None:
    assert scaled_size(320, 240, 160) == (160, 120)
    assert scaled_size(320, 240, 0) == (320, 240)
    assert scaled_size(100, 50, 400) == (100, 50)


def test_missing_model_is_reported_with_its_path(tmp_path: Path) -> None:
    # GIVEN an sfm folder without sparse/0
    (tmp_path / "images").mkdir()

    # WHEN loaded THEN the error names the missing model
    with pytest.raises(StageError, match=r"no COLMAP model in .*sparse/0"):
        load_scene(tmp_path, 0, "cpu")


def test_distorted_cameras_are_rejected(tmp_path: Path) -> None:
    # GIVEN a model whose camera is SIMPLE_RADIAL (not undistorted)
    root = make_synthetic_sfm(tmp_path / "sfm", SyntheticSpec(views=3, gaussians=20, points=10),
                              camera_model="SIMPLE_RADIAL")  # fmt: skip

    # WHEN loaded THEN the error says which model and what is needed
    with pytest.raises(StageError, match="SIMPLE_RADIAL model; training needs undistorted PINHOLE"):
        load_scene(root, 0, "cpu")


def test_missing_image_is_reported(tmp_path: Path, synthetic_sfm: Path) -> None:
    # GIVEN a copy of the model with one image deleted
    root = tmp_path / "sfm"
    shutil.copytree(synthetic_sfm, root)
    (root / "images" / "view_003.png").unlink()

    # WHEN loaded THEN the error names the image
    with pytest.raises(StageError, match="view_003.png"):
        load_scene(root, 0, "cpu")
