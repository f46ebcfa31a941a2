"""Adaptive density control: clone, split, prune, the Gaussian cap, and Adam's state kept in step."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from spaceport.train.config import preset_config
from spaceport.train.densify import DensityStats, adapt_density, reset_opacity
from spaceport.train.model import init_params, logit
from spaceport.train.trainer import create_optimizer

EXTENT = 2.0


def _setup(count: int = 8, **overrides):
    """Gaussians 0..3 small (clone size), 4..7 large (split size); one Adam step taken so moments exist."""
    config = dataclasses.replace(preset_config("fast", "cpu"), densify_grad_threshold=1e-3, percent_dense=0.05,
                                 prune_opacity=0.005, **overrides)  # fmt: skip
    points = np.stack([np.arange(count), np.zeros(count), np.zeros(count)], axis=1).astype(np.float32)
    params = init_params(points, np.full((count, 3), 0.5, np.float32), 1, 0.5, "cpu")
    optimizer = create_optimizer(params, config, EXTENT)
    sum(value.sum() for value in params.values()).backward()
    optimizer.step()
    with torch.no_grad():  # exact values again after the step, which only had to create the moments
        params["means"].copy_(torch.from_numpy(points))
        params["opacity_logits"].fill_(0.0)
        params["log_scales"][: count // 2] = math.log(0.01)  # 0.01 < 0.05 * extent: clone
        params["log_scales"][count // 2 :] = math.log(0.15)  # 0.1 < 0.15 < 0.2: split, not pruned
    stats = DensityStats.zeros(count, "cpu")
    stats.count[:] = 1
    return config, params, optimizer, stats


def test_high_gradient_gaussians_are_cloned_or_split_by_size() -> None:
    # GIVEN one small and one large Gaussian above the gradient threshold
    config, params, optimizer, stats = _setup()
    stats.grad_sum[[1, 5]] = 1.0

    # WHEN density is adapted (before any opacity reset, so only opacity pruning applies)
    _, change = adapt_density(params, optimizer, stats, config, EXTENT, step=1, generator=torch.Generator())

    # THEN the small one got a copy, the large one became two samples shrunk by 1.6 near it
    assert (change.cloned, change.split, change.pruned) == (1, 1, 0)
    assert len(params["means"]) == 8 + 1 + 1
    new_scales = torch.exp(params["log_scales"][-2:]).detach()
    assert torch.allclose(new_scales, torch.full_like(new_scales, 0.15 / 1.6))
    assert torch.all((params["means"][-2:, 0] - 5.0).abs() < 0.15 * 5)  # sampled within 5 sigma of x=5
    assert torch.equal(params["means"][-3].detach(), params["means"][1].detach())  # the clone


def test_adam_state_follows_the_gaussians() -> None:
    # GIVEN Adam moments that differ per Gaussian
    config, params, optimizer, stats = _setup()
    for group in optimizer.param_groups:
        state = optimizer.state[group["params"][0]]
        state["exp_avg"].copy_(torch.arange(8, dtype=torch.float32).view(-1, *[1] * (state["exp_avg"].dim() - 1)))
    stats.grad_sum[5] = 1.0

    # WHEN Gaussian 5 is split
    adapt_density(params, optimizer, stats, config, EXTENT, step=1, generator=torch.Generator())

    # THEN every parameter's moments have the new row count, survivors kept theirs, new rows start at zero
    for group in optimizer.param_groups:
        param = group["params"][0]
        assert param is params[group["name"]]
        moments = optimizer.state[param]["exp_avg"].reshape(len(param), -1)[:, 0]
        assert moments.tolist() == [0, 1, 2, 3, 4, 6, 7, 0, 0]


def test_the_cap_keeps_the_largest_gradients() -> None:
    # GIVEN every Gaussian above the threshold but room for only two more
    config, params, optimizer, stats = _setup(max_gaussians=10)
    stats.grad_sum[:] = torch.linspace(0.01, 0.08, 8)

    # WHEN density is adapted
    _, change = adapt_density(params, optimizer, stats, config, EXTENT, step=1, generator=torch.Generator())

    # THEN the two with the largest gradients (6 and 7, both large: split) were densified, and the cap holds
    assert change.split == 2 and change.cloned == 0
    assert len(params["means"]) == 10
    assert sorted(params["means"][:6, 0].tolist()) == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(("world", "screen"), [(False, False), (True, False), (False, True), (True, True)])
def test_transparent_gaussians_are_pruned_and_huge_ones_only_by_the_size_rules_asked_for(world, screen) -> None:  # noqa: ANN001
    # GIVEN one nearly transparent Gaussian, one huge in the world, and one huge on screen
    config, params, optimizer, stats = _setup(prune_world_size=world, prune_screen_size=screen)
    with torch.no_grad():
        params["opacity_logits"][0] = logit(0.001)
        params["log_scales"][4] = math.log(0.5 * EXTENT)  # above prune_world_scale * extent
    stats.max_screen[2] = 0.9

    # WHEN density is adapted before and after the first opacity reset
    _, early = adapt_density(params, optimizer, stats, config, EXTENT, step=1, generator=torch.Generator())
    stats = DensityStats.zeros(len(params["means"]), "cpu")
    stats.max_screen[1] = 0.9  # Gaussian 2 is now row 1
    _, late = adapt_density(params, optimizer, stats, config, EXTENT, config.opacity_reset_every + 1,
                            torch.Generator())  # fmt: skip

    # THEN only the transparent one goes at first; after the reset the huge one in the world goes only under the
    # world rule and the huge one on screen only under the screen rule (gsplat keeps the first, not the second)
    assert early.pruned == 1
    expected = {1, 2, 3, 4, 5, 6, 7} - ({4} if world else set()) - ({2} if screen else set())
    assert late.pruned == 7 - len(expected)
    assert sorted(params["means"][:, 0].tolist()) == sorted(expected)


def test_gaussians_in_a_training_cameras_near_field_are_pruned_at_the_round() -> None:
    # GIVEN Gaussians along x = 0..7 and a training camera at x = 2.2 whose near field reaches 0.5
    from spaceport.train.near_field import NearField

    config, params, optimizer, stats = _setup()
    viewmat = torch.tensor([[0.0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, -2.2], [0, 0, 0, 1]])
    intrinsics = torch.tensor([[[50.0, 0, 32], [0, 50, 24], [0, 0, 1]]])
    field = NearField(torch.tensor([[2.2, 0.0, 0.0]]), torch.tensor([0.5]), viewmat[None], intrinsics,
                      torch.tensor([[64.0, 48.0]]), 0)  # fmt: skip

    # WHEN density is adapted with that near field
    _, change = adapt_density(params, optimizer, stats, config, EXTENT, 1, torch.Generator(), field)

    # THEN the one 0.2 from the camera went; the next nearest, 0.8 away, stayed
    assert change.pruned == 1
    assert sorted(params["means"][:, 0].tolist()) == [0, 1, 3, 4, 5, 6, 7]


def test_opacity_reset_caps_opacity_and_clears_its_moments() -> None:
    # GIVEN Gaussians at opacity 0.5 with Adam moments
    _, params, optimizer, _ = _setup()

    # WHEN opacities are reset
    reset_opacity(params, optimizer)

    # THEN every opacity is at most 0.01 and the opacity moments are zero, other moments untouched
    assert torch.sigmoid(params["opacity_logits"]).max().item() == pytest.approx(0.01, rel=1e-4)
    by_name = {group["name"]: optimizer.state[group["params"][0]] for group in optimizer.param_groups}
    assert float(by_name["opacity_logits"]["exp_avg"].abs().sum()) == 0.0
    assert float(by_name["means"]["exp_avg"].abs().sum()) > 0.0
