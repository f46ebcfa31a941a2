"""Haze and floaters in front of held-out cameras, measured against the SfM points those cameras observed."""

from __future__ import annotations

import numpy as np
import torch

from spaceport.train.data import CameraView
from spaceport.train.floaters import measure_floaters
from spaceport.train.model import logit
from spaceport.train.rasterize_cpu import render

WIDTH, HEIGHT = 64, 48


def _camera() -> CameraView:
    """A camera at the origin looking down +z (world = camera frame)."""
    K = torch.tensor([[50.0, 0, WIDTH / 2], [0, 50.0, HEIGHT / 2], [0, 0, 1]])
    return CameraView("held_out", torch.zeros(HEIGHT, WIDTH, 3), K, torch.eye(4), WIDTH, HEIGHT)


def _layer(depth: float, spacing: float, size: float, opacity: float) -> dict[str, torch.Tensor]:
    """Flat Gaussians on a grid across the view at ``depth``, facing the camera."""
    xs = torch.arange(-4.0, 4.0 + 1e-6, spacing) * depth / 4
    grid = torch.stack(torch.meshgrid(xs, xs * 0.75, indexing="ij"), dim=-1).reshape(-1, 2)
    count = len(grid)
    return {"means": torch.cat([grid, torch.full((count, 1), depth)], dim=1),
            "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(count, 1),
            "log_scales": torch.log(torch.tensor([[size, size, size * 0.05]])).repeat(count, 1),
            "opacity_logits": torch.full((count,), logit(opacity))}  # fmt: skip


def _together(*parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}


def test_a_clean_surface_has_no_floaters_and_a_blob_before_the_camera_is_one() -> None:
    # GIVEN an opaque surface 4 units away, whose centres are the points the held-out photo observed
    surface = _layer(depth=4.0, spacing=0.25, size=0.2, opacity=0.99)
    observed = [surface["means"].numpy()]

    # WHEN measured alone, and with an opaque blob hung one unit in front of the camera
    clean = measure_floaters(surface, [_camera()], observed, render)
    blob = {
        "means": torch.tensor([[0.0, 0.0, 1.0]]),
        "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
        "log_scales": torch.log(torch.tensor([[0.15, 0.15, 0.15]])),
        "opacity_logits": torch.tensor([logit(0.99)]),
    }
    fogged = measure_floaters(_together(surface, blob), [_camera()], observed, render)

    # THEN the surface covers the view with no floater, while the blob hides the points behind it
    assert clean.alpha_mean > 0.98 and clean.hazy_fraction < 0.05
    assert clean.floater_fraction == 0.0 and clean.depth_error_median < 0.02
    assert 0.05 < fogged.floater_fraction < 0.8
    assert fogged.points == clean.points > 100


def test_a_faint_veil_is_haze_not_a_floater() -> None:
    # GIVEN a faint veil in front of a camera and no surface behind it
    veil = {
        "means": torch.tensor([[0.0, 0.0, 1.0]]),
        "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
        "log_scales": torch.log(torch.tensor([[5.0, 5.0, 0.1]])),
        "opacity_logits": torch.tensor([logit(0.3)]),
    }
    far_points = _layer(depth=5.0, spacing=1.0, size=0.1, opacity=0.5)["means"].numpy()

    # WHEN measured against points far behind it
    report = measure_floaters(veil, [_camera()], [far_points], render)

    # THEN the view counts as hazy (see-through), and see-through pixels are not counted as floaters
    assert report.hazy_fraction > 0.9 and report.alpha_mean < 0.6
    assert report.floater_fraction == 0.0


def test_clear_sky_is_not_haze() -> None:
    # GIVEN a camera that sees nothing at all (the learned sky behind every pixel)
    empty = {"means": torch.tensor([[0.0, 0.0, -5.0]]), "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
             "log_scales": torch.full((1, 3), -3.0), "opacity_logits": torch.tensor([logit(0.9)])}  # fmt: skip

    # WHEN measured
    report = measure_floaters(empty, [_camera()], [np.zeros((0, 3))], render)

    # THEN it is clear, not hazy: neither opaque nor half-formed
    assert report.alpha_mean < 0.01 and report.hazy_fraction == 0.0
