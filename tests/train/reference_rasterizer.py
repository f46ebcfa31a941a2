"""Brute-force Gaussian splatting for tests: every pixel against every Gaussian, dense float64 torch autograd.

Written independently of :mod:`spaceport.train.rasterize_cpu` (no tiles, no kernels, no shared helpers) from the
same specification, so that agreement means something. Only for tiny images and a few dozen Gaussians: memory is
O(H * W * N).
"""

from __future__ import annotations

import torch


def _rotation(quats: torch.Tensor) -> torch.Tensor:
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return torch.stack(
        [
            torch.stack([w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            torch.stack([2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)], -1),
            torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z], -1),
        ],
        dim=-2,
    )


def reference_render(means, quats, log_scales, opacity_logits, colors, viewmat, K, width, height, background):
    """Render like ``rasterize_cpu.render`` (same arguments); returns ``(image, alpha, means2d)`` in float64."""
    means, quats, log_scales = means.double(), quats.double(), log_scales.double()
    opacity, colors = torch.sigmoid(opacity_logits.double()), colors.double()
    viewmat, K, background = viewmat.double(), K.double(), background.double()

    cam = (viewmat[:3, :3] @ means.T).T + viewmat[:3, 3]
    x, y, z = cam[:, 0], cam[:, 1], cam[:, 2]
    visible = z > 0.01
    z = torch.where(visible, z, torch.ones_like(z))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)

    # Jacobian of the pinhole, with x/z and y/z clamped to 1.3x the field of view (3DGS / gsplat).
    tx = z * torch.clamp(x / z, -(cx / fx + 0.15 * width / fx), (width - cx) / fx + 0.15 * width / fx)
    ty = z * torch.clamp(y / z, -(cy / fy + 0.15 * height / fy), (height - cy) / fy + 0.15 * height / fy)
    jac = torch.stack(
        [
            torch.stack([fx / z, torch.zeros_like(z), -fx * tx / z**2], -1),
            torch.stack([torch.zeros_like(z), fy / z, -fy * ty / z**2], -1),
        ],
        dim=-2,
    )
    rot = _rotation(quats)
    cov3d = rot @ torch.diag_embed(torch.exp(2 * log_scales)) @ rot.transpose(1, 2)
    w = viewmat[:3, :3]
    cov2d = jac @ w @ cov3d @ w.T @ jac.transpose(1, 2) + 0.3 * torch.eye(2, dtype=z.dtype)
    inv = torch.linalg.inv(cov2d)  # (N, 2, 2)

    ys, xs = torch.meshgrid(torch.arange(height, dtype=z.dtype), torch.arange(width, dtype=z.dtype), indexing="ij")
    centres = torch.stack([xs + 0.5, ys + 0.5], -1).reshape(-1, 1, 2)  # (HW, 1, 2)
    d = centres - means2d[None]  # (HW, N, 2)
    mahalanobis = torch.einsum("pni,nij,pnj->pn", d, inv, d)
    raw = opacity[None] * torch.exp(-0.5 * mahalanobis)
    alpha = torch.clamp(raw, max=0.99)
    keep = visible[None] & (mahalanobis <= 9.0) & (alpha >= 1 / 255)
    alpha = torch.where(keep, alpha, torch.zeros_like(alpha))

    order = torch.argsort(cam[:, 2].detach())  # front to back; culled ones have alpha 0 everywhere
    alpha = alpha[:, order]
    transmit_after = torch.cumprod(1 - alpha, dim=1)
    transmit_before = torch.cat([torch.ones_like(alpha[:, :1]), transmit_after[:, :-1]], dim=1)
    # 3DGS stops before the Gaussian that would push transmittance under 1e-4; the product only decreases, so
    # "T after <= threshold" marks that Gaussian and everything behind it.
    blended = (transmit_after >= 1e-4).detach()
    weight = torch.where(blended, alpha * transmit_before, torch.zeros_like(alpha))  # (HW, N)
    color = weight @ colors[order]
    acc = weight.sum(-1)
    image = color + (1 - acc)[:, None] * background
    return image.reshape(height, width, 3), acc.reshape(height, width), means2d
