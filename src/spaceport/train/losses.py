"""Image metrics and the 3DGS training loss: (1 - lambda) * L1 + lambda * (1 - SSIM)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# SSIM as Wang et al. 2004 define it: an 11x11 Gaussian window with sigma 1.5, constants for range [0, 1].
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def _gaussian_profile(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    import torch

    offsets = torch.arange(SSIM_WINDOW, device=device, dtype=dtype) - (SSIM_WINDOW - 1) / 2
    profile = torch.exp(-(offsets**2) / (2 * SSIM_SIGMA**2))
    return profile / profile.sum()


def _blur(stack: torch.Tensor) -> torch.Tensor:
    """Gaussian blur of (1, C, H, W), zero-padded; the window is separable, so two 1D passes (11x cheaper)."""
    import torch.nn.functional as F

    channels = stack.shape[1]
    profile = _gaussian_profile(stack.device, stack.dtype)
    rows = F.conv2d(stack, profile.view(1, 1, 1, -1).expand(channels, 1, 1, SSIM_WINDOW),
                    padding=(0, SSIM_WINDOW // 2), groups=channels)  # fmt: skip
    return F.conv2d(rows, profile.view(1, 1, -1, 1).expand(channels, 1, SSIM_WINDOW, 1),
                    padding=(SSIM_WINDOW // 2, 0), groups=channels)  # fmt: skip


def ssim(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of two (H, W, 3) images in [0, 1]; zero padding at the borders, like the 3DGS reference."""
    import torch

    x = image.permute(2, 0, 1)[None]
    y = target.permute(2, 0, 1)[None].to(x.dtype)
    # One blur call for all five local moments: means, second moments and the cross moment.
    mu_x, mu_y, xx, yy, xy = _blur(torch.cat([x, y, x * x, y * y, x * y], dim=1)).split(3, dim=1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
    denominator = (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return (numerator / denominator).mean()


def psnr(image: torch.Tensor, target: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1] (capped at 100 dB for identical images)."""
    mse = float(((image.detach().clamp(0, 1) - target) ** 2).mean())
    return 100.0 if mse <= 1e-10 else -10.0 * math.log10(mse)


def training_loss(image: torch.Tensor, target: torch.Tensor, ssim_lambda: float) -> torch.Tensor:
    """(1 - lambda) * L1 + lambda * (1 - SSIM), lambda = 0.2 in 3DGS."""
    l1 = (image - target).abs().mean()
    return (1.0 - ssim_lambda) * l1 + ssim_lambda * (1.0 - ssim(image, target))


def colour_corrected(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``image`` mapped by the affine colour transform (3x3 and an offset) that brings it closest to ``target`` in
    least squares: the colour-corrected score forgives exposure and white balance, nothing else."""
    import torch

    pixels = image.reshape(-1, 3).double()
    design = torch.cat([pixels, torch.ones_like(pixels[:, :1])], dim=1)
    solution = torch.linalg.lstsq(design, target.reshape(-1, 3).double()).solution
    return (design @ solution).reshape(image.shape).clamp(0, 1).to(image.dtype)


def alpha_entropy(alpha: torch.Tensor) -> torch.Tensor:
    """Mean binary entropy of a render's accumulated opacity (H, W): 0 where every pixel is clear or opaque.

    Behind a learned sky nothing forces a surface to be opaque where its colour is close to the sky's (hazy far
    ground, a pale wall): it can stay half see-through, and from another viewpoint show the sky through itself.
    This pushes each pixel to one side, and the photometric loss picks which.
    """
    clamped = alpha.clamp(1e-4, 1.0 - 1e-4)
    return -(clamped * clamped.log() + (1.0 - clamped) * (1.0 - clamped).log()).mean()
