"""The near-camera rules: what counts as a training camera's near field, and how many photos see a point."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from spaceport.train.config import preset_config
from spaceport.train.data import PosedImage
from spaceport.train.near_field import build_near_field, frustum_counts, in_near_field, nearest_surface_depth, unwanted

from .synthetic import look_at

K = np.array([[50.0, 0, 32], [0, 50, 24], [0, 0, 1]])


def _source(eye: tuple[float, float, float], target: tuple[float, float, float], points: np.ndarray) -> PosedImage:
    return PosedImage("photo.png", Path("photo.png"), K, look_at(np.array(eye), np.array(target)), 64, 48,
                      points.astype(np.float32))  # fmt: skip


def test_a_cameras_near_field_scales_with_the_nearest_surface_it_saw() -> None:
    # GIVEN a camera at the origin looking along +y at points 10 units away, and a few on a backdrop 40 units away
    points = np.array([[0.0, 10.0 + 0.01 * i, 0.0] for i in range(60)] + [[0.0, 40.0, 0.0]] * 40)
    source = _source((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), points)
    config = dataclasses.replace(preset_config("default", "cpu"), near_camera_fraction=0.2)

    # WHEN its near field is built
    field = build_near_field([source], config, "cpu")

    # THEN its scale is the nearest surface (about 10, not the 40 of the backdrop that holds the median) and the
    # near radius 0.2 of it, in every direction from the camera
    assert nearest_surface_depth(source) == pytest.approx(10.0, abs=0.1)
    assert torch.allclose(field.near_radii, torch.tensor([2.0]), atol=0.02)
    means = torch.tensor([[0.0, 1.5, 0.0], [0.0, -1.9, 0.0], [1.0, 1.0, 1.0], [0.0, 3.0, 0.0], [0.0, 3.0, 0.0],
                          [0.0, 3.0, 0.0]])  # fmt: skip
    # small ones; a round blob 0.6 wide; a disc 0.6 wide but 1 cm thick, lying across the line to the camera
    sigmas = [[0.01] * 3] * 4 + [[0.6, 0.6, 0.6], [0.6, 0.01, 0.6]]
    axes = torch.diag_embed(torch.tensor(sigmas))
    # THEN besides the small ones within 2, a blob reaches in from farther by two standard deviations towards the
    # camera; a flat disc facing the camera only by its thickness
    assert in_near_field(means, axes, field).tolist() == [True, True, True, False, True, False]


def test_frustum_counts_number_the_photos_whose_image_holds_a_point() -> None:
    # GIVEN three photos taken 4 units apart along x, all facing +y (a walk past a facade)
    sources = [_source((x, 0.0, 0.0), (x, 1.0, 0.0), np.zeros((0, 3))) for x in (-4.0, 0.0, 4.0)]
    config = dataclasses.replace(preset_config("default", "cpu"), min_training_views=2)
    field = build_near_field(sources, config, "cpu")
    means = torch.tensor([[0.0, 10.0, 0.0], [4.0, 2.0, 0.0], [0.0, 0.0, 50.0]])
    params = {"means": means, "log_scales": torch.full((3, 3), -5.0), "quats": torch.tensor([[1.0, 0, 0, 0]] * 3)}

    # WHEN counted
    counts = frustum_counts(means, field)

    # THEN a point 10 ahead is in all three images, one 2 ahead of the last photo only in that one (63 degrees off
    # the next one's axis, its half field of view is 33), one straight above in none; the view rule removes the two
    assert counts.tolist() == [3, 1, 0]
    assert unwanted(params, field).tolist() == [False, True, True]


def test_both_rules_off_remove_nothing() -> None:
    # GIVEN the defaults' switches off
    config = dataclasses.replace(preset_config("default", "cpu"), near_camera_fraction=0.0, min_training_views=0)
    field = build_near_field([_source((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), np.array([[0.0, 5.0, 0.0]]))], config, "cpu")

    # THEN the field is inactive
    assert not field.active
