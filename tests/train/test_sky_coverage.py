"""The baked sky shell where no photo saw the sky: filled from what the photos saw, not the model's extrapolation."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from spaceport.gaussians import SH_C0
from spaceport.train.background import SkyModel, bake_sky_shell, fibonacci_directions
from spaceport.train.data import CameraView
from spaceport.train.rasterize_cpu import render
from spaceport.train.sky_coverage import SEEN_VIEWS, fill_unseen, sky_sight
from spaceport.train.stage import exported_cloud

from .synthetic import look_at

DIRECTIONS = fibonacci_directions(4096)


def _views_towards_plus_x(count: int = 4) -> list[CameraView]:
    """Cameras at the origin looking level towards +x (turned a little each), 60-degree-wide views."""
    views = []
    for index in range(count):
        target = np.array([1.0, 0.05 * (index - count / 2), 0.0])
        width, height = 320, 240
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


def _garish_behind() -> SkyModel:
    """A sky that is blue (0.3, 0.5, 0.9) towards +x and magenta (1.0, 0.1, 1.0) towards -x, as an SH fitted to one
    side extrapolates."""
    sky = SkyModel(degree=1, learning_rate=0.01, device="cpu")
    with torch.no_grad():
        # rows: the constant, then the degree-1 basis -C1 y, C1 z, -C1 x
        sky.coefficients.copy_(torch.tensor([[0.532, -0.709, 1.596], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                                             [0.717, -0.41, 0.1025]]))  # fmt: skip
    return sky


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
    one_view = 4 * np.arcsin(np.sin(np.radians(30)) * np.sin(np.arctan(240 / 320 * np.tan(np.radians(30)))))
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
    sky = _garish_behind()
    views = _views_towards_plus_x(4)
    sight = sky_sight(_splat([[-50.0, 0.0, 0.0]], [[0.1, 0.1, 0.1]]), views, render, DIRECTIONS)

    # WHEN the shell is baked without and with the sight
    plain = bake_sky_shell(sky, np.zeros(3), radius=100.0, sh_rest=0)
    filled = bake_sky_shell(sky, np.zeros(3), radius=100.0, sh_rest=0, sight=sight)

    # THEN where the views looked the two agree; where no view looked the filled shell holds colours the model has
    # where they did, while the plain one shows the extrapolation (magenta behind them)
    ahead, behind = _nearest((1.0, 0.0, 0.0)), _nearest((-1.0, 0.0, 0.0))
    assert sight[ahead] >= SEEN_VIEWS and sight[behind] == 0.0
    np.testing.assert_allclose(filled.sh0[ahead], plain.sh0[ahead])
    glimpsed, unseen = sight > 0, sight == 0
    low, high = plain.sh0[glimpsed].min(axis=0) - 1e-6, plain.sh0[glimpsed].max(axis=0) + 1e-6
    assert np.all((filled.sh0[unseen] >= low) & (filled.sh0[unseen] <= high))
    assert not np.all((plain.sh0[behind] >= low) & (plain.sh0[behind] <= high))
    assert np.abs(plain.sh0[behind] - filled.sh0[behind]).max() > 1.0


def test_with_every_direction_seen_nothing_is_filled_and_with_none_seen_the_model_stays() -> None:
    # GIVEN varied colours over the shell's directions
    colours = 0.5 + 0.4 * DIRECTIONS

    # WHEN filled with every direction seen, and with none seen (a capture walled in on every side)
    everywhere = fill_unseen(DIRECTIONS, colours, np.full(len(DIRECTIONS), 2.0))
    nowhere = fill_unseen(DIRECTIONS, colours, np.zeros(len(DIRECTIONS)))

    # THEN both keep the colours as they were: there is nothing to fill, or nothing to fill from
    np.testing.assert_array_equal(everywhere, colours)
    np.testing.assert_array_equal(nowhere, colours)


def test_sky_between_sub_pixel_gaussians_counts_as_much_as_the_photos_saw_of_it() -> None:
    # GIVEN the views towards +x, and three units ahead a sparse screen of Gaussians each under a pixel across (as
    # foliage or wires are), which lets most of the sky through at the photos' size
    views = _views_towards_plus_x(4)
    spots = np.linspace(-1.0, 1.0, 41)
    params = _splat([[3.0, y, z] for y in spots for z in spots], [[0.005, 0.005, 0.005]] * len(spots) ** 2)
    ahead = views[0]
    with torch.no_grad():
        alpha = render(params["means"], params["quats"], params["log_scales"], params["opacity_logits"],
                       torch.ones(len(params["means"]), 3), ahead.viewmat, ahead.K, ahead.width, ahead.height,
                       torch.zeros(3)).alpha  # fmt: skip
    clear_at_photo_size = float((1.0 - alpha[100:140, 140:180]).mean())

    # WHEN the sky's sight is measured
    sight = sky_sight(params, views, render, DIRECTIONS)

    # THEN straight ahead counts the four views times the sky they let through, not a screen made opaque
    assert clear_at_photo_size > 0.6
    assert abs(sight[_nearest((1.0, 0.0, 0.0))] - 4 * clear_at_photo_size) < 0.2 * 4 * clear_at_photo_size


def test_the_exported_scene_carries_the_filled_shell_and_says_what_share_the_photos_saw() -> None:
    # GIVEN a trained state (one small Gaussian behind the cameras) whose sky turns magenta where no photo looked,
    # and the four views towards +x it was trained on
    views = _views_towards_plus_x(4)
    params = _splat([[-50.0, 0.0, 0.0]], [[0.1, 0.1, 0.1]])
    params |= {"sh0": torch.full((1, 1, 3), 0.2), "shN": torch.zeros((1, 0, 3))}
    state = SimpleNamespace(params=params, sky=_garish_behind())
    scene = SimpleNamespace(train_views=views, extent=1.0)

    # WHEN the scene is exported
    cloud, description = exported_cloud(state, scene, 0, render)

    # THEN the shell behind the cameras shows the blue they saw, not magenta, and the manifest says what share of
    # the shell's directions the four 60-degree views saw (about 6 %)
    shell = cloud.subset(np.arange(description["first"], len(cloud)))
    behind = shell.sh0[_nearest((-1.0, 0.0, 0.0))] * SH_C0 + 0.5
    magenta = _garish_behind().colours(torch.tensor([[-1.0, 0.0, 0.0]]))[0].detach().numpy()
    assert magenta[0] > 0.9 and magenta[1] < 0.2
    assert np.abs(behind - [0.3, 0.5, 0.9]).max() < 0.15, behind
    assert 0.04 < description["seen_share"] < 0.08
