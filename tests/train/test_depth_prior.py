"""The depth term at the SfM points a photo observed."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from spaceport.train.data import CameraView, PosedImage
from spaceport.train.depth_prior import depth_term, observed_depths
from spaceport.train.rasterize_cpu import render

K = torch.tensor([[40.0, 0, 16], [0, 40, 12], [0, 0, 1]])


def test_a_surface_rendered_too_near_is_pulled_back_to_the_observed_depth() -> None:
    # GIVEN a camera at the origin looking along +z, an opaque wide Gaussian 3 units ahead, and an SfM point the
    # photo observed 4 units ahead on the same ray
    view = CameraView("photo.png", torch.zeros((24, 32, 3)), K, torch.eye(4), 32, 24)
    source = PosedImage("photo.png", Path("photo.png"), K.double().numpy(), np.eye(4), 32, 24,
                        np.array([[0.0, 0.0, 4.0]], np.float32))  # fmt: skip
    params = {"means": torch.tensor([[0.0, 0.0, 3.0]], requires_grad=True), "quats": torch.tensor([[1.0, 0, 0, 0]]),
              "log_scales": torch.full((1, 3), math.log(0.5)), "opacity_logits": torch.tensor([6.0])}  # fmt: skip

    # WHEN the term is computed and differentiated
    observed = observed_depths(view, source)
    term = depth_term(params, view, observed, render)
    term.backward()

    # THEN the point lands on the image centre, the error is |3/4 - 1|, and the gradient moves the Gaussian back
    assert (int(observed.rows[0]), int(observed.columns[0])) == (12, 16)
    assert float(term) == pytest.approx(0.25, abs=1e-3)
    assert float(params["means"].grad[0, 2]) < 0


def test_no_observed_point_in_view_means_no_term() -> None:
    view = CameraView("photo.png", torch.zeros((24, 32, 3)), K, torch.eye(4), 32, 24)
    source = PosedImage("photo.png", Path("photo.png"), K.double().numpy(), np.eye(4), 32, 24,
                        np.array([[0.0, 0.0, -4.0]], np.float32))  # fmt: skip
    params = {"means": torch.zeros((1, 3)), "quats": torch.tensor([[1.0, 0, 0, 0]]), "log_scales": torch.zeros((1, 3)),
              "opacity_logits": torch.zeros(1)}  # fmt: skip
    assert depth_term(params, view, observed_depths(view, source), render) is None
