"""Differentiable Gaussian-splat rasteriser for CPU training (gsplat does not rasterise on CPU).

Semantics follow 3DGS / gsplat: EWA projection with the perspective Jacobian, a 0.3 px low-pass dilation of the 2D
covariance, a near-plane cull (z < 0.01), per-pixel ``alpha = min(0.99, opacity * exp(-0.5 d^T Sigma^-1 d))``
skipped below 1/255, front-to-back compositing by depth, a stop once transmittance would drop under 1e-4, and
pixel centres at (x + 0.5, y + 0.5). One deliberate difference: a Gaussian is cut at three standard deviations per
pixel (Mahalanobis) rather than by the tiles its bounding square touches, so the image does not depend on tiling.

The projection (N-sized, cheap) runs in autograd torch; the compositing is a :class:`torch.autograd.Function` over
numba kernels (:mod:`spaceport.train._raster_kernels`) with a hand-written backward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spaceport.train import _raster_kernels as kernels

NEAR_PLANE = 0.01
LOW_PASS = 0.3  # px^2 added to the 2D covariance's diagonal (anti-aliasing dilation of 3DGS).
TILE_SIZE = 8  # measured: 8x8 beats 16x16 (fewer wasted pixel-pair evaluations in the vectorised loops)
# Keep x/z within the field of view plus this fraction of it when forming the Jacobian (3DGS's 1.3 factor), so
# Gaussians far off-screen do not get huge, ill-conditioned footprints.
JACOBIAN_MARGIN = 0.3


@dataclass
class RenderResult:
    """One rendered view.

    Attributes:
        image: (H, W, 3) float32, composited over the background.
        means2d: (N, 2) projected centres in pixels; ``retain_grad()`` is called, so after ``backward()`` its
            ``.grad`` holds the screen-space gradient used for densification, and with ``absgrad`` its
            ``.absgrad`` (as gsplat's) the sum over pixels of the absolute per-pixel gradients.
        radii: (N,) int32 three-sigma radius in pixels (:func:`screen_radii`), 0 for Gaussians culled, too faint
            to draw, or off-screen.
        alpha: (H, W) accumulated opacity.
    """

    image: torch.Tensor
    means2d: torch.Tensor
    radii: torch.Tensor
    alpha: torch.Tensor


def quaternion_to_rotation(quats: torch.Tensor) -> torch.Tensor:
    """(N, 4) quaternions (w, x, y, z), any norm, to (N, 3, 3) rotation matrices."""
    w, x, y, z = (quats / quats.norm(dim=-1, keepdim=True).clamp_min(1e-12)).unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(-1, 3, 3)


@dataclass
class _Projection:
    means2d: torch.Tensor  # (N, 2)
    conics: torch.Tensor  # (N, 3) inverse covariance (a, b, c) of [[a, b], [b, c]]
    opacities: torch.Tensor  # (N,)
    depths: torch.Tensor  # (N,) camera z, detached
    visible: torch.Tensor  # (N,) bool, in front of the near plane
    cov2d: torch.Tensor  # (N, 3) dilated covariance (xx, xy, yy), detached


def _project(means, quats, log_scales, opacity_logits, viewmat, K, width, height) -> _Projection:
    """EWA projection: Sigma_2D = J W Sigma_3D W^T J^T + 0.3 I, with J the Jacobian of the pinhole at the mean."""
    rot_view, trans_view = viewmat[:3, :3], viewmat[:3, 3]
    cam = means @ rot_view.T + trans_view  # (N, 3) camera coordinates
    depth = cam[:, 2]
    visible = depth > NEAR_PLANE
    # Culled Gaussians get a harmless depth so nothing below produces inf/NaN (their gradients are zero anyway).
    z = torch.where(visible, depth, torch.ones_like(depth))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    u, v = cam[:, 0] / z, cam[:, 1] / z
    means2d = torch.stack([fx * u + cx, fy * v + cy], dim=-1)

    lim_x_pos = (width - cx) / fx + JACOBIAN_MARGIN * 0.5 * width / fx
    lim_x_neg = cx / fx + JACOBIAN_MARGIN * 0.5 * width / fx
    lim_y_pos = (height - cy) / fy + JACOBIAN_MARGIN * 0.5 * height / fy
    lim_y_neg = cy / fy + JACOBIAN_MARGIN * 0.5 * height / fy
    u_clamped = torch.minimum(torch.maximum(u, -lim_x_neg), lim_x_pos)
    v_clamped = torch.minimum(torch.maximum(v, -lim_y_neg), lim_y_pos)
    zeros = torch.zeros_like(z)
    # J (N, 2, 3) = [[fx/z, 0, -fx x/z^2], [0, fy/z, -fy y/z^2]] with x/z, y/z clamped.
    jac = torch.stack([fx / z, zeros, -fx * u_clamped / z, zeros, fy / z, -fy * v_clamped / z], dim=-1)
    jac = jac.reshape(-1, 2, 3)

    # Sigma_3D = M M^T with M = R diag(s); so J W Sigma_3D W^T J^T = T T^T with T = J W M (N, 2, 3).
    scaled_rot = quaternion_to_rotation(quats) * torch.exp(log_scales)[:, None, :]
    t_mat = (jac @ rot_view) @ scaled_rot
    cov_xx = (t_mat[:, 0] * t_mat[:, 0]).sum(-1) + LOW_PASS
    cov_xy = (t_mat[:, 0] * t_mat[:, 1]).sum(-1)
    cov_yy = (t_mat[:, 1] * t_mat[:, 1]).sum(-1) + LOW_PASS
    # det = |t0|^2 |t1|^2 - (t0.t1)^2 + 0.3 (|t0|^2 + |t1|^2) + 0.09, with the first two terms as |t0 x t1|^2: the
    # plain product difference cancels catastrophically in float32 for a long needle seen along a diagonal (it went
    # negative and turned a Gaussian's gradients into NaN 2,657 steps into a drone run); this form is >= 0.09.
    cross = torch.linalg.cross(t_mat[:, 0], t_mat[:, 1])
    det = (cross * cross).sum(-1) + LOW_PASS * (cov_xx + cov_yy - 2 * LOW_PASS) + LOW_PASS * LOW_PASS
    conics = torch.stack([cov_yy / det, -cov_xy / det, cov_xx / det], dim=-1)
    cov2d = torch.stack([cov_xx, cov_xy, cov_yy], dim=-1).detach()
    return _Projection(means2d, conics, torch.sigmoid(opacity_logits), depth.detach(), visible, cov2d)


def _radii_and_extents(proj: _Projection, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Public 3-sigma radii (N,) int32 and per-axis extents (N, 2) of the pixels a Gaussian can reach.

    The radius is 3 sqrt(largest eigenvalue) as in gsplat. The extents bound the region where the kernels can blend
    the Gaussian: sigma <= min(4.5, ln(255 opacity)), i.e. a Mahalanobis radius k = sqrt(2 sigma_max), whose
    bounding box has half-widths k sqrt(cov_xx), k sqrt(cov_yy): tighter than the square for thin or faint ones.
    """
    cov_xx, cov_xy, cov_yy = proj.cov2d.unbind(-1)
    sigma_max = torch.clamp(torch.log(255.0 * proj.opacities.detach().clamp_min(1e-30)), max=kernels.SIGMA_MAX)
    radii = screen_radii(proj.cov2d, proj.means2d.detach(), proj.visible & (sigma_max >= 0), width, height)
    reach = torch.sqrt(2.0 * sigma_max.clamp_min(0.0)) * 1.001 + 1e-3  # small margin for float32 rounding
    extents = torch.stack([reach * torch.sqrt(cov_xx), reach * torch.sqrt(cov_yy)], dim=-1)
    extents = torch.where((radii > 0)[:, None], extents, torch.full_like(extents, -1.0))
    return radii, extents


def screen_radii(cov2d: torch.Tensor, means2d: torch.Tensor, candidates: torch.Tensor, width: int,
                 height: int) -> torch.Tensor:  # fmt: skip
    """(N,) int32 screen radii, the one definition both backends use for densification and pruning.

    The radius is 3 sqrt(largest eigenvalue) of the dilated 2D covariance ``cov2d`` (N, 3) = (xx, xy, yy); it is
    0 for Gaussians that are not ``candidates`` (behind the near plane, or too faint to touch a pixel: opacity
    under 1/255) or whose circle misses the image.
    """
    cov_xx, cov_xy, cov_yy = cov2d.unbind(-1)
    mid = 0.5 * (cov_xx + cov_yy)
    det = cov_xx * cov_yy - cov_xy * cov_xy
    largest = mid + torch.sqrt(torch.clamp(mid * mid - det, min=0.1))
    radius = torch.ceil(3.0 * torch.sqrt(largest))
    mx, my = means2d.unbind(-1)
    on_screen = (mx + radius > 0) & (mx - radius < width) & (my + radius > 0) & (my - radius < height)
    keep = candidates & on_screen & torch.isfinite(radius)
    return torch.where(keep, radius, torch.zeros_like(radius)).to(torch.int32)


@dataclass
class _Tiles:
    width: int
    height: int
    tile: int
    offsets: np.ndarray  # (T+1,) int64
    pair_gid: np.ndarray  # (P,) int32
    absgrad: torch.Tensor | None  # (N, 2): filled by the backward pass with the absolute screen-space gradients


class _Composite(torch.autograd.Function):
    """(means2d, conics, opacities, colors) -> (colour (H, W, 3) before background, alpha (H, W))."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, tiles: _Tiles):
        params = torch.cat([means2d, conics, opacities[:, None], colors], dim=-1).detach().float().contiguous()
        height, width = tiles.height, tiles.width
        packed = np.empty((tiles.pair_gid.shape[0], 9), np.float32)
        color = np.empty((height, width, 3), np.float32)
        final_t = np.empty((height, width), np.float32)
        n_contrib = np.empty((height, width), np.int32)
        kernels.composite_forward(
            tiles.offsets,
            tiles.pair_gid,
            params.numpy(),
            width,
            height,
            tiles.tile,
            packed,
            color.reshape(-1, 3),
            final_t.reshape(-1),
            n_contrib.reshape(-1),
        )
        ctx.tiles, ctx.packed, ctx.final_t, ctx.n_contrib = tiles, packed, final_t, n_contrib
        ctx.count, ctx.dtype = means2d.shape[0], means2d.dtype
        alpha = torch.from_numpy(1.0 - final_t)
        return torch.from_numpy(color), alpha

    @staticmethod
    def backward(ctx, grad_color, grad_alpha):
        tiles = ctx.tiles
        pair_grad = np.zeros((tiles.pair_gid.shape[0], 11), np.float32)
        kernels.composite_backward(
            tiles.offsets,
            ctx.packed,
            tiles.width,
            tiles.height,
            tiles.tile,
            ctx.final_t.reshape(-1),
            ctx.n_contrib.reshape(-1),
            grad_color.detach().float().contiguous().numpy().reshape(-1, 3),
            grad_alpha.detach().float().contiguous().numpy().reshape(-1),
            pair_grad,
            tiles.absgrad is not None,
        )
        grads = torch.from_numpy(kernels.sum_pair_gradients(tiles.pair_gid, pair_grad, ctx.count)).to(ctx.dtype)
        if tiles.absgrad is not None:
            tiles.absgrad.copy_(grads[:, 9:11])
        return grads[:, 0:2], grads[:, 2:5], grads[:, 5], grads[:, 6:9], None


def render(
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
    """Render Gaussians into one pinhole view, differentiably.

    Args:
        means: (N, 3) world positions.
        quats: (N, 4) rotations (w, x, y, z), not necessarily normalised.
        log_scales: (N, 3) natural logs of the standard deviations along the local axes.
        opacity_logits: (N,) opacity logits.
        colors: (N, 3) RGB per Gaussian (view-dependent SH already evaluated by the caller).
        viewmat: (4, 4) world-to-camera, OpenCV/COLMAP axes (x right, y down, z forward).
        K: (3, 3) pixel intrinsics.
        width, height: image size in pixels.
        background: (3,) colour behind the Gaussians.
        absgrad: also give ``means2d.absgrad`` after ``backward()`` (as gsplat's ``absgrad``).

    Returns:
        The image, the screen-space means (gradient retained), the radii and the accumulated opacity.
    """
    proj = _project(means, quats, log_scales, opacity_logits, viewmat, K, width, height)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    with torch.no_grad():
        radii, extents = _radii_and_extents(proj, width, height)
        active = np.flatnonzero(radii.numpy() > 0)
        order = active[np.argsort(proj.depths.numpy()[active], kind="stable")].astype(np.int64)
    offsets, pair_gid = kernels.bin_to_tiles(
        order, means2d.detach().float().numpy(), extents.float().numpy(), width, height, TILE_SIZE
    )
    tiles = _Tiles(width, height, TILE_SIZE, offsets, pair_gid, None)
    if absgrad and means2d.requires_grad:
        # Where gsplat puts it (rasterization(absgrad=True)): an attribute of the screen-space means.
        tiles.absgrad = means2d.absgrad = torch.zeros((len(means), 2), dtype=means2d.dtype)
    color, alpha = _Composite.apply(means2d, proj.conics, proj.opacities, colors, tiles)
    image = color + (1.0 - alpha)[..., None] * background.to(color.dtype)
    return RenderResult(image=image, means2d=means2d, radii=radii, alpha=alpha)
