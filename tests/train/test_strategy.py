"""Density strategies behind the training loop: schedules, and thresholds that mean the same on both backends."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from spaceport.train.backend import _radii_like_the_cpu_backend
from spaceport.train.config import preset_config
from spaceport.train.model import init_params, sh_colors
from spaceport.train.rasterize_cpu import _project, _radii_and_extents
from spaceport.train.strategy import AdaptiveDensityControl, MarkovChainMonteCarlo, resets_allowed, select_strategy


def test_every_preset_on_both_devices_uses_one_strategy_with_screen_size_pruning_off() -> None:
    # GIVEN every preset on both devices
    for device in ("cpu", "cuda"):
        for preset in ("fast", "default", "quality"):
            config = preset_config(preset, device)

            # WHEN its strategy is chosen
            strategy = select_strategy(config, extent=1.0)

            # THEN it is adaptive density control without screen-size pruning (which collapsed held-out PSNR)
            assert isinstance(strategy, AdaptiveDensityControl), (preset, device)
            assert config.prune_screen_size is False
    mcmc = dataclasses.replace(preset_config("default", "cpu"), strategy="mcmc")
    assert isinstance(select_strategy(mcmc, extent=1.0), MarkovChainMonteCarlo)


@pytest.mark.parametrize(("step", "allowed"), [(1000, True), (1999, True), (2000, False), (2999, False)])
def test_opacity_resets_stay_out_of_the_last_third(step: int, allowed: bool) -> None:
    # GIVEN a 3000-step run (the reset at step 2000 of 3000 left too few steps to recover)
    config = dataclasses.replace(preset_config("default", "cpu"), iterations=3000)

    # THEN a reset is allowed only in the first two thirds
    assert resets_allowed(config, step) is allowed


def test_adc_does_not_reset_in_the_last_third() -> None:
    # GIVEN the adc strategy at a scheduled reset step inside the last third, with densification over
    config = dataclasses.replace(preset_config("default", "cpu"), strategy="adc", iterations=3000,
                                 opacity_reset_every=1000, densify_until=1500)  # fmt: skip
    points = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    params = init_params(points, np.full((20, 3), 0.5, np.float32), 0, 0.5, "cpu")
    state = type("State", (), {"iteration": 2000, "params": params})()

    # WHEN the step ends
    AdaptiveDensityControl(config).after_step(state, ctx=None)

    # THEN the opacities are untouched
    assert torch.allclose(torch.sigmoid(params["opacity_logits"].detach()), torch.full((20,), 0.5))


def test_gsplat_radii_are_redefined_as_the_cpu_backend_defines_them() -> None:
    # GIVEN Gaussians of mixed size and opacity, some off-screen, projected by the CPU rasteriser
    generator = torch.Generator().manual_seed(3)
    count, width, height = 200, 64, 48
    means = torch.rand(count, 3, generator=generator) * torch.tensor([8.0, 6.0, 4.0]) - torch.tensor([4.0, 3.0, -1.0])
    quats = torch.randn(count, 4, generator=generator)
    log_scales = torch.log(torch.rand(count, 3, generator=generator) * 0.3 + 0.01)
    opacity_logits = torch.randn(count, generator=generator) * 4
    K = torch.tensor([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
    proj = _project(means, quats, log_scales, opacity_logits, torch.eye(4), K, width, height)
    cpu_radii, _ = _radii_and_extents(proj, width, height)

    # WHEN gsplat-shaped outputs (inverse covariance; per-axis radii, 0 where gsplat culls) are converted
    cov_xx, cov_xy, cov_yy = proj.cov2d.unbind(-1)
    det = cov_xx * cov_yy - cov_xy**2
    conics = torch.stack([cov_yy / det, -cov_xy / det, cov_xx / det], dim=-1)
    drawn = (cpu_radii > 0) | (torch.sigmoid(opacity_logits) > 0.5)  # gsplat may keep more; ours must cut the same
    gsplat_radii = torch.where(drawn[:, None], torch.tensor([[2, 1]]), torch.tensor([[0, 0]]))
    info = {"conics": conics[None], "radii": gsplat_radii[None], "means2d": proj.means2d.detach()[None]}
    radii = _radii_like_the_cpu_backend(info, width, height)

    # THEN every radius is the CPU backend's, so screen-size thresholds mean the same on both devices
    assert radii.dtype == torch.int32
    assert torch.equal(radii, cpu_radii)
    assert int((radii > 0).sum()) > 20 and int((radii == 0).sum()) > 20


def test_view_dependent_colour_teaches_the_means_too() -> None:
    # GIVEN Gaussians with view-dependent colour (SH degree 1)
    params = init_params(np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], np.float32), np.full((2, 3), 0.5, np.float32),
                         1, 0.5, "cpu")  # fmt: skip
    with torch.no_grad():
        params["shN"].fill_(0.3)

    # WHEN the colour seen from a camera is differentiated
    sh_colors(params, 1, torch.tensor([0.0, -3.0, 1.0])).sum().backward()

    # THEN the means receive a gradient through the view direction, as in 3DGS
    assert params["means"].grad is not None and float(params["means"].grad.abs().sum()) > 0
