"""The background behind the splat: the learned sky, its compositing on both backends, and its baked shell."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spaceport.train.background import (
    FixedBackground,
    SkyModel,
    bake_sky_shell,
    composite,
    fibonacci_directions,
    inside_shell,
    ray_directions,
    shell_radius,
)
from spaceport.train.data import CameraView
from spaceport.train.losses import psnr
from spaceport.train.model import sh_colors
from spaceport.train.rasterize_cpu import render

from .synthetic import look_at


def _view(eye: tuple[float, float, float], target: tuple[float, float, float], width: int = 64,
          height: int = 48) -> CameraView:  # fmt: skip
    focal = 0.8 * width
    K = torch.tensor([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    viewmat = torch.tensor(look_at(np.array(eye), np.array(target)), dtype=torch.float32)
    return CameraView("view", torch.zeros((height, width, 3)), K, viewmat, width, height)


def _gradient_sky(directions: torch.Tensor) -> torch.Tensor:
    """A sky like the generator's: pale at the horizon, deep blue overhead, a little warmer towards +x."""
    up = directions[..., 2:3].clamp(-0.2, 1.0)
    horizon, zenith = torch.tensor([0.78, 0.84, 0.9]), torch.tensor([0.32, 0.52, 0.85])
    return horizon + (zenith - horizon) * up.clamp_min(0) + 0.05 * directions[..., 0:1]


def test_the_ray_through_the_image_centre_is_the_camera_axis() -> None:
    # GIVEN a camera at (3, 0, 1) looking at the origin
    view = _view((3.0, 0.0, 1.0), (0.0, 0.0, 1.0), width=64, height=48)

    # WHEN its rays are computed
    directions = ray_directions(view)

    # THEN they are unit vectors, the centre one points at the target, and image up is world up
    assert torch.allclose(directions.norm(dim=-1), torch.ones(48, 64), atol=1e-5)
    centre = (directions[23, 31] + directions[24, 32]) / 2
    assert torch.allclose(centre / centre.norm(), torch.tensor([-1.0, 0.0, 0.0]), atol=1e-2)
    assert directions[0, 32, 2] > 0 > directions[47, 32, 2]


def test_compositing_in_shared_code_matches_the_rasteriser_compositing_itself() -> None:
    # GIVEN some Gaussians in front of a camera, and a background colour
    generator = torch.Generator().manual_seed(0)
    means = torch.randn((40, 3), generator=generator) * 0.5
    quats, log_scales = torch.randn((40, 4), generator=generator), torch.full((40, 3), math.log(0.15))
    opacity, colours = torch.zeros(40), torch.rand((40, 3), generator=generator)
    view = _view((4.0, 0.0, 0.5), (0.0, 0.0, 0.0))
    background = torch.tensor([0.2, 0.5, 0.9])

    # WHEN rendered over the colour by the rasteriser, and over black then composited
    args = (means, quats, log_scales, opacity, colours, view.viewmat, view.K, view.width, view.height)
    direct = render(*args, background)
    black = render(*args, torch.zeros(3))

    # THEN both give the same image (so the gsplat backend, which renders over black, means the same)
    assert torch.allclose(composite(black.image, black.alpha, background), direct.image, atol=1e-6)


def test_the_sky_model_learns_a_function_of_direction_from_photos() -> None:
    # GIVEN photos of an empty scene under a gradient sky, from several places and directions
    views = [_view((4 * math.cos(a), 4 * math.sin(a), 1.0 + 0.5 * math.sin(3 * a)), (0.0, 0.0, 1.5))
             for a in np.linspace(0, 2 * math.pi, 6, endpoint=False)]  # fmt: skip
    for view in views:
        view.image = _gradient_sky(ray_directions(view))
    sky = SkyModel(degree=3, learning_rate=0.02, device="cpu")

    # WHEN it is fitted to them as training fits it (L1 on the image behind no Gaussian)
    for step in range(300):
        view = views[step % len(views)]
        (sky.behind(view) - view.image).abs().mean().backward()
        sky.step()

    # THEN it reproduces the sky, also from a direction none of the photos faced head on
    unseen = _view((0.0, 0.0, 1.0), (-3.0, 1.0, 2.5))
    assert psnr(sky.behind(unseen).detach(), _gradient_sky(ray_directions(unseen))) > 30.0


def test_the_baked_shell_shows_the_sky_model_opaque_from_inside() -> None:
    # GIVEN a sky model with a known, varied content
    sky = SkyModel(degree=2, learning_rate=0.01, device="cpu")
    with torch.no_grad():
        sky.coefficients.copy_(torch.tensor([[0.5, 0.7, 1.0], [0.1, -0.1, 0.2], [-0.3, 0.2, 0.3], [0.2, 0.0, -0.1],
                                             [0.05, 0.1, 0.0], [0.0, -0.05, 0.1], [0.1, 0.1, 0.1], [0.0, 0.05, 0.0],
                                             [-0.1, 0.0, 0.05]]))  # fmt: skip

    # WHEN it is baked as a shell of Gaussians around the origin and rendered from cameras near the centre
    centre = np.zeros(3)
    shell = bake_sky_shell(sky, centre, radius=100.0, sh_rest=3)
    params = {"means": torch.from_numpy(shell.means), "quats": torch.from_numpy(shell.quats),
              "log_scales": torch.from_numpy(shell.log_scales), "opacity_logits": torch.from_numpy(shell.opacities),
              "sh0": torch.from_numpy(shell.sh0)[:, None, :], "shN": torch.from_numpy(shell.shN)}  # fmt: skip
    for eye, target in [((0.0, 0.0, 0.0), (1.0, 0.0, 0.3)), ((2.0, 1.0, 0.5), (-1.0, 2.0, 3.0))]:
        view = _view(eye, target, 96, 72)
        colours = sh_colors(params, 1, view.camera_center)
        result = render(params["means"], params["quats"], params["log_scales"], params["opacity_logits"], colours,
                        view.viewmat, view.K, view.width, view.height, torch.zeros(3))  # fmt: skip

        # THEN every pixel is covered and shows the model's colour for its direction
        assert float(result.alpha.min()) > 0.99
        assert psnr(result.image.clamp(0, 1), sky.colours(ray_directions(view)).detach()) > 30.0
    assert len(shell) == 4096 and shell.sh_degree == 1


def test_the_shell_lies_well_beyond_nearly_every_gaussian_and_the_cameras_and_ignores_a_stray_one() -> None:
    # GIVEN 199 Gaussians up to 5 units out, one stray 1000 units out, and cameras 2 units out
    means = np.concatenate([np.linspace([0.0, 0, 0], [5.0, 0, 0], 199), [[1000.0, 0, 0]]])

    # WHEN the shell is placed
    radius = shell_radius(means, np.zeros(3), extent=2.0)

    # THEN it lies ten times beyond the 99th percentile of the distances, not the stray's, and the stray alone is
    # outside it; with only the near Gaussians, the cameras' extent sets it
    assert radius == pytest.approx(10 * np.percentile(np.linalg.norm(means, axis=1), 99))
    assert 49.0 < radius < 100.0
    assert inside_shell(means, np.zeros(3), radius).tolist() == [True] * 199 + [False]
    assert shell_radius(means[:2], np.zeros(3), extent=2.0) == pytest.approx(20.0)


def test_fibonacci_directions_cover_the_sphere_evenly() -> None:
    # GIVEN 4096 directions
    directions = fibonacci_directions(4096)

    # THEN they are unit vectors, balanced about the centre, and no direction is far from all of them
    assert np.allclose(np.linalg.norm(directions, axis=1), 1.0)
    assert np.abs(directions.mean(axis=0)).max() < 1e-3
    probes = fibonacci_directions(997) @ np.diag([1.0, -1.0, 1.0])
    nearest = np.arccos(np.clip((probes @ directions.T).max(axis=1), -1, 1))
    assert np.degrees(nearest.max()) < 3.0


def test_a_fixed_background_is_one_colour_behind_every_view() -> None:
    colour = torch.tensor([0.1, 0.2, 0.3])
    assert torch.equal(FixedBackground(colour).behind(_view((1.0, 0, 0), (0, 0, 0))), colour)


def test_the_sky_behind_a_view_is_its_exact_colour_to_within_a_level_per_block() -> None:
    # GIVEN a sky with a steep gradient and a 480x360 view (blocks do not divide 360 evenly: a partial last row)
    sky = SkyModel(degree=3, learning_rate=0.01, device="cpu")
    with torch.no_grad():
        sky.coefficients[2] = torch.tensor([0.5, 0.4, 0.3])
        sky.coefficients[6] = torch.tensor([0.2, -0.2, 0.1])
    view = _view((3.0, 1.0, 1.0), (0.0, 0.0, 1.5), 480, 360)

    # WHEN the background behind it is taken one value per block
    behind = sky.behind(view).detach()

    # THEN it matches the per-pixel colours to within about one 8-bit level
    exact = sky.colours(ray_directions(view)).detach()
    assert behind.shape == exact.shape == (360, 480, 3)
    assert float((behind - exact).abs().mean()) < 1.5 / 255 and psnr(behind, exact) > 45.0
