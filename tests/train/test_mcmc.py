"""The fixed-budget (3DGS-MCMC) strategy: relocation keeps the picture, dead Gaussians move, the cap holds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from spaceport.train.config import preset_config
from spaceport.train.losses import psnr
from spaceport.train.mcmc import grow, inject_noise, relocate_dead, split_opacity_and_scale
from spaceport.train.model import init_params, logit
from spaceport.train.rasterize_cpu import render
from spaceport.train.trainer import create_optimizer

EXTENT = 2.0


def _setup(count: int = 8, **overrides):
    """``count`` Gaussians on the x axis at opacity 0.5, with Adam moments from one step."""
    config = dataclasses.replace(preset_config("default", "cpu"), strategy="mcmc", **overrides)
    points = np.stack([np.arange(count), np.zeros(count), np.zeros(count)], axis=1).astype(np.float32)
    params = init_params(points, np.full((count, 3), 0.5, np.float32), 1, 0.5, "cpu")
    optimizer = create_optimizer(params, config, EXTENT)
    sum(value.sum() for value in params.values()).backward()
    optimizer.step()
    with torch.no_grad():
        params["means"].copy_(torch.from_numpy(points))
        params["opacity_logits"].fill_(0.0)
        params["log_scales"].fill_(math.log(0.05))
    return config, params, optimizer


@pytest.mark.parametrize("opacity", [0.05, 0.5, 0.95])
@pytest.mark.parametrize("copies", [1, 2, 5])
def test_copies_render_like_the_gaussian_they_replace(opacity: float, copies: int) -> None:
    # GIVEN one Gaussian in front of a camera
    viewmat, K = torch.eye(4), torch.tensor([[80.0, 0, 32], [0, 80.0, 24], [0, 0, 1]])
    means, quats = torch.tensor([[0.0, 0.0, 3.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    scales, colour, black = torch.tensor([[0.2, 0.12, 0.1]]), torch.tensor([[0.9, 0.6, 0.3]]), torch.zeros(3)
    original = render(means, quats, torch.log(scales), torch.tensor([logit(opacity)]), colour, viewmat, K, 64, 48,
                      black).image  # fmt: skip

    # WHEN it becomes N copies with the opacity and scale the strategy gives them
    new_opacity, new_scales = split_opacity_and_scale(torch.tensor([opacity]), scales, torch.tensor([copies]))
    n = copies
    replaced = render(
        means.repeat(n, 1),
        quats.repeat(n, 1),
        torch.log(new_scales).repeat(n, 1),
        torch.logit(new_opacity).repeat(n),
        colour.repeat(n, 1),
        viewmat,
        K,
        64,
        48,
        black,
    ).image

    # THEN the centre is exactly as opaque as before, and the whole picture is nearly the same
    assert 1 - (1 - float(new_opacity)) ** n == pytest.approx(opacity, rel=1e-5)
    assert psnr(replaced, original) > 35.0
    if copies == 1:
        assert torch.allclose(new_scales, scales)


def test_dead_gaussians_move_onto_live_ones_and_restart_their_moments() -> None:
    # GIVEN two nearly transparent Gaussians among live ones, one much more opaque than the rest
    config, params, optimizer = _setup()
    with torch.no_grad():
        params["opacity_logits"][[2, 5]] = logit(0.001)
        params["opacity_logits"][7] = logit(0.99)
        params["opacity_logits"][[0, 1, 3, 4, 6]] = logit(1e-3 + config.prune_opacity)

    # WHEN dead Gaussians are relocated
    moved = relocate_dead(params, optimizer, config, torch.Generator().manual_seed(0))

    # THEN both moved onto a live one, the count is unchanged, and the moved rows start with zero moments
    assert moved == 2
    assert len(params["means"]) == 8
    opacity = torch.sigmoid(params["opacity_logits"].detach())
    assert bool((opacity > config.prune_opacity).all())
    for row in (2, 5):
        assert params["means"][row, 0].item() in {0.0, 1.0, 3.0, 4.0, 6.0, 7.0}
    moments = optimizer.state[params["means"]]["exp_avg"]
    assert float(moments[[2, 5]].abs().sum()) == 0.0


def test_growth_adds_a_share_of_the_set_and_stops_at_the_cap() -> None:
    # GIVEN 8 Gaussians, a growth of 50 % per round and a cap of 14
    config, params, optimizer = _setup(mcmc_growth=0.5, max_gaussians=14)
    generator = torch.Generator().manual_seed(0)

    # WHEN the set grows twice
    first = grow(params, optimizer, config, generator)
    second = grow(params, optimizer, config, generator)

    # THEN it grew by 4, then by 2 to the cap, the optimiser tracks the new tensors, and new rows have zero moments
    assert (first, second) == (4, 2)
    assert len(params["means"]) == 14
    for group in optimizer.param_groups:
        assert group["params"][0] is params[group["name"]]
        assert optimizer.state[params[group["name"]]]["exp_avg"].shape[0] == 14
    assert float(optimizer.state[params["means"]]["exp_avg"][8:].abs().sum()) == 0.0


def test_noise_moves_transparent_gaussians_and_leaves_opaque_ones() -> None:
    # GIVEN one nearly transparent and one opaque Gaussian
    config, params, _ = _setup(count=2)
    with torch.no_grad():
        params["opacity_logits"][0] = logit(0.001)
        params["opacity_logits"][1] = logit(0.9)
    before = params["means"].detach().clone()

    # WHEN noise is injected at a typical position learning rate
    inject_noise(params, 1e-4, config, torch.Generator().manual_seed(0))

    # THEN the transparent one moved (by about its own size) and the opaque one did not
    moved = (params["means"].detach() - before).norm(dim=-1)
    assert moved[0] > 1e-3
    assert moved[1] < 1e-9


def test_relocation_with_nothing_alive_changes_nothing() -> None:
    # GIVEN only dead Gaussians
    config, params, optimizer = _setup(count=3)
    with torch.no_grad():
        params["opacity_logits"].fill_(logit(1e-4))
    before = {name: value.detach().clone() for name, value in params.items()}

    # WHEN relocation and growth run
    moved = relocate_dead(params, optimizer, config, torch.Generator())
    added = grow(params, optimizer, config, torch.Generator())

    # THEN nothing happened (there is nothing to copy from)
    assert (moved, added) == (0, 0)
    assert all(torch.equal(before[name], params[name].detach()) for name in params)
