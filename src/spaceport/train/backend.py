"""Rasteriser backends behind one call: the pure-PyTorch CPU rasteriser, or gsplat's CUDA kernels.

Both take the same arguments and return ``rasterize_cpu.RenderResult``, so one training loop serves both.
``means2d`` is the screen-space mean tensor whose ``.grad`` (pixel units) drives densification; it may
carry a leading camera axis (gsplat's is (1, N, 2)), so readers reshape its gradient to (N, 2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from spaceport.train.rasterize_cpu import RenderResult

# gsplat's default near plane and low-pass filter (eps2d) match what the CPU rasteriser uses.
GSPLAT_OPTIONS = {"near_plane": 0.01, "eps2d": 0.3, "packed": False}

Renderer = Callable[..., "RenderResult"]


def render_gsplat(
    means: torch.Tensor,
    quats: torch.Tensor,
    log_scales: torch.Tensor,
    opacity_logits: torch.Tensor,
    colors: torch.Tensor,
    viewmat: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    background: torch.Tensor,
    absgrad: bool = False,
) -> RenderResult:
    """Render one camera with gsplat's ``rasterization`` (CUDA only), in the CPU backend's parametrisation;
    ``absgrad`` asks gsplat for the absolute screen-space gradients (``means2d.absgrad``) as well."""
    import torch
    from gsplat import rasterization

    from spaceport.train.rasterize_cpu import RenderResult

    images, alphas, info = rasterization(
        means=means,
        quats=quats,
        scales=torch.exp(log_scales),
        opacities=torch.sigmoid(opacity_logits),
        colors=colors,
        viewmats=viewmat[None],
        Ks=K[None],
        width=width,
        height=height,
        backgrounds=background[None],
        absgrad=absgrad,
        **GSPLAT_OPTIONS,
    )
    means2d = info["means2d"]
    if means2d.requires_grad:
        means2d.retain_grad()
    radii = _radii_like_the_cpu_backend(info, width, height)
    return RenderResult(image=images[0], means2d=means2d, radii=radii, alpha=alphas[0, ..., 0])


def _radii_like_the_cpu_backend(info: dict, width: int, height: int) -> torch.Tensor:
    """gsplat's radii, redefined as the CPU backend defines them, so thresholds mean the same on both devices.

    gsplat (>= 1.5) gives per-axis radii that shrink with opacity; the CPU rasteriser uses 3 sigma of the
    largest axis. Both use the same dilated covariance, which gsplat returns inverted (``conics``); a Gaussian
    gsplat culled (radius 0: behind the camera, off-screen or under 1/255 opacity) stays culled.
    """
    import torch

    from spaceport.train.rasterize_cpu import screen_radii

    conics = info["conics"][0].detach().float()  # (N, 3): a, b, c of [[a, b], [b, c]], the inverse covariance
    det = (conics[:, 0] * conics[:, 2] - conics[:, 1] ** 2).clamp_min(1e-12)
    cov2d = torch.stack([conics[:, 2] / det, -conics[:, 1] / det, conics[:, 0] / det], dim=-1)
    gsplat_radii = info["radii"][0]
    drawn = (gsplat_radii > 0).any(dim=-1) if gsplat_radii.dim() == 2 else gsplat_radii > 0
    return screen_radii(cov2d, info["means2d"][0].detach().float(), drawn, width, height)


def configure_threads(device: str) -> None:
    """One torch thread on the CPU: the numba kernels parallelise the heavy work, torch's ops are small.

    torch's OpenMP barriers made a step 15x slower whenever another process held a core (measured: 100
    steps took 7 s with one torch thread and 106 s with two, beside one busy process on two cores).
    """
    if device == "cpu":
        import torch

        torch.set_num_threads(1)


def select_renderer(device: str, absgrad: bool = False) -> Renderer:
    """The backend for a resolved device: gsplat on ``cuda``, the pure-PyTorch rasteriser on ``cpu``; with
    ``absgrad`` either gives ``means2d.absgrad`` after the backward pass."""
    import functools

    if device == "cuda":
        import gsplat  # noqa: F401 - fail here, with the import error, rather than mid-training

        renderer = render_gsplat
    else:
        from spaceport.train.rasterize_cpu import render as renderer
    return functools.partial(renderer, absgrad=True) if absgrad else renderer
