"""SSIM, PSNR and the training loss."""

from __future__ import annotations

import math

import pytest
import torch

from spaceport.train.losses import alpha_entropy, psnr, ssim, training_loss


def test_ssim_is_one_for_identical_images_and_drops_with_noise() -> None:
    # GIVEN a smooth image, itself, and a copy with noise that destroys its local structure
    generator = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0.2, 0.8, 50)
    image = torch.stack([ramp.expand(40, 50), ramp.flip(0).expand(40, 50), torch.full((40, 50), 0.5)], dim=-1)
    noisy = (image + 0.1 * torch.randn(40, 50, 3, generator=generator)).clamp(0, 1)

    # THEN SSIM is 1 for the identical pair, low for the noisy one, and symmetric
    assert float(ssim(image, image)) == pytest.approx(1.0, abs=1e-5)
    assert float(ssim(image, noisy)) < 0.5
    assert float(ssim(image, noisy)) == pytest.approx(float(ssim(noisy, image)), abs=1e-6)


def test_psnr_matches_the_definition() -> None:
    # GIVEN two images that differ by 0.1 everywhere (MSE 0.01)
    target = torch.full((8, 8, 3), 0.5)

    # THEN PSNR is 20 dB
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-4)


def test_training_loss_mixes_l1_and_ssim() -> None:
    # GIVEN a constant offset image: SSIM's structure term is perfect, L1 is 0.1
    target = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(1)) * 0.5
    image = (target + 0.1).requires_grad_(True)

    # WHEN computing the loss with lambda 0 and then lambda 1
    l1_only = training_loss(image, target, 0.0)
    dssim_only = training_loss(image, target, 1.0)
    l1_only.backward()

    # THEN lambda 0 gives the L1, lambda 1 gives 1 - SSIM, and gradients flow to the image
    assert float(l1_only.detach()) == pytest.approx(0.1, abs=1e-5)
    assert float(dssim_only.detach()) == pytest.approx(1.0 - float(ssim(image.detach(), target)), abs=1e-6)
    assert image.grad is not None and math.isfinite(float(image.grad.abs().sum()))


def test_alpha_entropy_is_zero_for_clear_and_opaque_pixels_and_pushes_half_ones_apart() -> None:
    # GIVEN renders that are clear, opaque, and half see-through
    clear, opaque = torch.zeros((4, 4)), torch.ones((4, 4))
    hazy = torch.full((4, 4), 0.6, requires_grad=True)

    # WHEN the term is taken and differentiated
    term = alpha_entropy(hazy)
    term.backward()

    # THEN it vanishes at both ends, peaks in between, and descending it moves 0.6 towards opaque
    assert float(alpha_entropy(clear)) < 1e-2 and float(alpha_entropy(opaque)) < 1e-2
    assert float(term) > 0.6
    assert float(hazy.grad.sum()) < 0
