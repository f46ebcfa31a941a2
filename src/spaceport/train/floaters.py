"""Haze and floaters in front of held-out cameras, measured against what structure from motion saw.

A surface is opaque, and with the learned sky the background is where nothing stands: a held-out pixel should be
either nearly opaque or nearly clear. A pixel between the two (``HAZE_BAND``) is haze, where the sky shows through
half-formed Gaussians. And every SfM point a held-out photo observed lies on a surface
that photo saw, so nothing should stand well in front of it: where the rendered depth at such a point's pixel is
much nearer than the point, a floater hangs between the camera and the scene.

Depth is rendered by the training backend itself (each Gaussian "coloured" by its camera depth over a black
background gives the alpha-weighted depth), so the measure means the same on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from spaceport.train.backend import Renderer
    from spaceport.train.data import CameraView

# A surface point is hidden by a floater when the rendered depth there is nearer than this share of its depth.
FLOATER_DEPTH_RATIO = 0.8
# Pixels rendered at least this opaque have a meaningful expected depth.
OPAQUE = 0.5
# Accumulated opacity of a hazy pixel: neither clear sky nor a surface.
HAZE_BAND = (0.1, 0.9)


@dataclass
class FloaterReport:
    """Averages over the held-out views.

    Attributes:
        alpha_mean: mean accumulated opacity of the renders (1 for a scene with no see-through haze).
        hazy_fraction: share of pixels whose opacity lies in ``HAZE_BAND`` (half-formed, see-through).
        floater_fraction: share of the observed SfM points with something rendered well in front of them.
        depth_error_median: median of |rendered depth / point depth - 1| at the observed points.
        points: how many observed points were checked.
    """

    alpha_mean: float
    hazy_fraction: float
    floater_fraction: float
    depth_error_median: float
    points: int

    def as_dict(self) -> dict[str, float | int]:
        return {"alpha_mean": round(self.alpha_mean, 4), "hazy_fraction": round(self.hazy_fraction, 4),
                "floater_fraction": round(self.floater_fraction, 4),
                "depth_error_median": round(self.depth_error_median, 4), "points": self.points}  # fmt: skip


def _render_depth(params: dict[str, torch.Tensor], view: CameraView, renderer: Renderer) -> tuple:
    """(expected depth (H, W), alpha (H, W)) as numpy arrays."""
    import torch

    means = params["means"]
    depth = means @ view.viewmat[:3, :3].T[:, 2] + view.viewmat[2, 3]
    colors = depth.clamp_min(0.0)[:, None].expand(-1, 3).contiguous()
    black = torch.zeros(3, device=means.device)
    result = renderer(means, params["quats"], params["log_scales"], params["opacity_logits"], colors, view.viewmat,
                      view.K, view.width, view.height, black)  # fmt: skip
    alpha = result.alpha.detach().float().cpu().numpy()
    weighted = result.image[..., 0].detach().float().cpu().numpy()
    return weighted / np.maximum(alpha, 1e-6), alpha


def _observed_pixels(view: CameraView, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel columns, rows and depths of ``points`` (M, 3) that project inside ``view``."""
    viewmat, K = view.viewmat.cpu().numpy().astype(np.float64), view.K.cpu().numpy().astype(np.float64)
    camera = points.astype(np.float64) @ viewmat[:3, :3].T + viewmat[:3, 3]
    z = camera[:, 2]
    front = z > 1e-6
    u = K[0, 0] * camera[front, 0] / z[front] + K[0, 2]
    v = K[1, 1] * camera[front, 1] / z[front] + K[1, 2]
    inside = (u >= 0) & (u < view.width) & (v >= 0) & (v < view.height)
    return u[inside].astype(np.int64), v[inside].astype(np.int64), z[front][inside]


def measure_floaters(params: dict[str, torch.Tensor], views: list[CameraView], observed: list[np.ndarray],
                     renderer: Renderer) -> FloaterReport:  # fmt: skip
    """Haze and floaters over held-out ``views``; ``observed[i]`` holds the SfM points view i observed."""
    import torch

    alphas, hazy, ratios = [], [], []
    with torch.no_grad():
        frozen = {name: value.detach() for name, value in params.items()}
        for view, points in zip(views, observed, strict=True):
            depth, alpha = _render_depth(frozen, view, renderer)
            alphas.append(float(alpha.mean()))
            hazy.append(float(((alpha > HAZE_BAND[0]) & (alpha < HAZE_BAND[1])).mean()))
            columns, rows, point_depth = _observed_pixels(view, points)
            opaque = alpha[rows, columns] >= OPAQUE
            # A see-through pixel has no surface to compare: count it as nothing in front (haze is counted above).
            ratio = np.where(opaque, depth[rows, columns] / point_depth, 1.0)
            ratios.append(ratio)
    every_ratio = np.concatenate(ratios) if ratios else np.zeros(0)
    count = max(len(views), 1)
    return FloaterReport(
        alpha_mean=sum(alphas) / count,
        hazy_fraction=sum(hazy) / count,
        floater_fraction=float((every_ratio < FLOATER_DEPTH_RATIO).mean()) if len(every_ratio) else 0.0,
        depth_error_median=float(np.median(np.abs(every_ratio - 1.0))) if len(every_ratio) else 0.0,
        points=len(every_ratio),
    )
