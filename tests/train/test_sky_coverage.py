"""The baked sky shell where no photo saw the sky: filled from what the photos saw, not the model's extrapolation."""

from __future__ import annotations

import numpy as np
import torch

from spaceport.train.background import SkyModel, bake_sky_shell, fibonacci_directions
from spaceport.train.data import CameraView
from spaceport.train.rasterize_cpu import render
from spaceport.train.sky_coverage import sky_sight

from .synthetic import look_at

DIRECTIONS = fibonacci_directions(4096)


def _views_towards_plus_x(count: int = 4) -> list[CameraView]:
    """Cameras at the origin looking level towards +x (turned a little each), 60-degree-wide views."""
    views = []
    for index in range(count):
        target = np.array([1.0, 0.05 * (index - count / 2), 0.0])
        width, height = 96, 72
        focal = width / (2 * np.tan(np.radians(30)))
        K = torch.tensor([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
        viewmat = torch.tensor(look_at(np.zeros(3), target), dtype=torch.float32)
        views.append(CameraView(f"v{index}", torch.zeros((height, width, 3)), K, viewmat, width, height))
    return views


def _splat(means: list[list[float]], scales: list[list[float]]) -> dict[str, torch.Tensor]:
    count = len(means)
    return {"means": torch.tensor(means, dtype=torch.float32),
            "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]] * count),
            "log_scales": torch.log(torch.tensor(scales, dtype=torch.float32)),
            "opacity_logits": torch.full((count,), 8.0)}  # fmt: skip


def _nearest(direction: tuple[float, float, float]) -> int:
    unit = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    return int(np.argmax(DIRECTIONS @ unit))


def test_directions_the_views_saw_clear_count_each_view_and_the_rest_count_none() -> None:
    # GIVEN four views from the origin towards +x, and a splat of one small Gaussian far behind them
    views = _views_towards_plus_x(4)
    params = _splat([[-50.0, 0.0, 0.0]], [[0.1, 0.1, 0.1]])

    # WHEN the sky's sight is measured over the shell's directions
    sight = sky_sight(params, views, render, DIRECTIONS)

    # THEN straight ahead was seen by all four, behind and straight up by none, and the seen area is the views'
    assert 3.5 < sight[_nearest((1.0, 0.0, 0.0))] < 4.5
    assert sight[_nearest((-1.0, 0.0, 0.0))] == 0.0 and sight[_nearest((0.0, 0.0, 1.0))] == 0.0
    seen_solid_angle = sight.sum() * 4 * np.pi / len(DIRECTIONS)
    one_view = 4 * np.arcsin(np.sin(np.radians(30)) * np.sin(np.arctan(72 / 96 * np.tan(np.radians(30)))))
    assert abs(seen_solid_angle - 4 * one_view) / (4 * one_view) < 0.05


def test_directions_behind_an_opaque_wall_count_as_unseen() -> None:
    # GIVEN the same views, and an opaque wall 3 units in front of them whose top edge lies just below the horizon
    views = _views_towards_plus_x(4)
    heights = np.arange(-30.0, -0.5, 0.3)
    params = _splat([[3.0, 0.0, z] for z in heights], [[0.01, 40.0, 0.3]] * len(heights))

    # WHEN the sky's sight is measured
    sight = sky_sight(params, views, render, DIRECTIONS)

    # THEN above the horizon the views saw the sky, below it (behind the wall) they did not
    assert sight[_nearest((1.0, 0.0, 0.25))] > 3.5
    assert sight[_nearest((1.0, 0.0, -0.3))] < 0.05


def test_a_shell_baked_with_its_sight_keeps_the_seen_sky_and_fills_the_unseen_from_it() -> None:
    # GIVEN a sky model that is a calm blue where the views looked (+x) and swings to magenta behind them, as an SH
    # fitted to one side extrapolates, and the views' sight of it
    sky = SkyModel(degree=1, learning_rate=0.01, device="cpu")
    with torch.no_grad():
        # degree 1 basis: -C1 y, C1 z, -C1 x; red and blue rise towards -x, green falls
        sky.coefficients.copy_(torch.tensor([[0.0, 0.0, 0.6], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.9, -0.9, 0.5]]))
    views = _views_towards_plus_x(4)
    sight = sky_sight(_splat([[-50.0, 0.0, 0.0]], [[0.1, 0.1, 0.1]]), views, render, DIRECTIONS)

    # WHEN the shell is baked without and with the sight
    plain = bake_sky_shell(sky, np.zeros(3), radius=100.0, sh_rest=0)
    filled = bake_sky_shell(sky, np.zeros(3), radius=100.0, sh_rest=0, sight=sight)

    # THEN where the views looked the two agree, and behind them the filled shell keeps the seen sky's colours
    # while the plain one shows the extrapolation
    ahead, behind = _nearest((1.0, 0.0, 0.0)), _nearest((-1.0, 0.0, 0.0))
    np.testing.assert_allclose(filled.sh0[ahead], plain.sh0[ahead])
    seen = sight >= 1.0
    low, high = filled.sh0[seen].min(axis=0) - 1e-6, filled.sh0[seen].max(axis=0) + 1e-6
    assert np.all((filled.sh0[~seen] >= low) & (filled.sh0[~seen] <= high))
    assert np.abs(plain.sh0[behind] - filled.sh0[ahead]).max() > 1.0
