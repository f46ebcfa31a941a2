"""The trainable Gaussians: initialisation from SfM points, spherical-harmonics colour, export to PLY form.

Parameters live in a plain dict of leaf tensors named like the PLY fields, so the optimiser, the
densifier and the checkpoint all address them by name:

- ``means`` (N, 3), ``quats`` (N, 4) wxyz unnormalised, ``log_scales`` (N, 3), ``opacity_logits`` (N,),
- ``sh0`` (N, 1, 3) and ``shN`` (N, K, 3) with K = (max_degree + 1)^2 - 1, allocated for the final
  degree from the start (the inactive bands stay zero and get no gradient).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from spaceport.gaussians import SH_C0, GaussianCloud, sh_coefficients_for_degree

if TYPE_CHECKING:
    import torch

PARAM_NAMES = ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN")

# Real spherical-harmonics basis constants (bands 1-3), in the order the 3DGS PLY stores f_rest.
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)  # fmt: skip


def logit(probability: float) -> float:
    return math.log(probability / (1.0 - probability))


def initial_log_scales(points: np.ndarray) -> np.ndarray:
    """log of the mean distance to the 3 nearest neighbours, isotropic: covers the gaps between points."""
    from scipy.spatial import cKDTree

    if len(points) < 2:
        return np.full((len(points), 3), math.log(0.01), dtype=np.float32)
    neighbours = min(3, len(points) - 1)
    distances, _ = cKDTree(points).query(points, k=neighbours + 1)  # column 0 is the point itself
    mean_distance = np.maximum(distances[:, 1:].mean(axis=1), 1e-7)
    return np.repeat(np.log(mean_distance)[:, None], 3, axis=1).astype(np.float32)


def init_params(points: np.ndarray, colors: np.ndarray, sh_degree: int, initial_opacity: float,
                device: str) -> dict[str, torch.Tensor]:  # fmt: skip
    """Gaussians at the SfM points, coloured by them, sized by their neighbours, identity rotation."""
    import torch

    count = len(points)
    quats = np.zeros((count, 4), np.float32)
    quats[:, 0] = 1.0
    values = {
        "means": points.astype(np.float32),
        "quats": quats,
        "log_scales": initial_log_scales(points),
        "opacity_logits": np.full(count, logit(initial_opacity), np.float32),
        "sh0": ((colors.astype(np.float32) - 0.5) / SH_C0)[:, None, :],
        "shN": np.zeros((count, sh_coefficients_for_degree(sh_degree), 3), np.float32),
    }
    return {name: torch.tensor(values[name], device=device, requires_grad=True) for name in PARAM_NAMES}


def sh_basis(directions: torch.Tensor, degree: int) -> list[torch.Tensor]:
    """The real SH basis functions of bands 1..degree at unit ``directions`` (N, 3), each (N,)."""
    x, y, z = directions.unbind(-1)
    basis = []
    if degree >= 1:
        basis += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        basis += [SH_C2[0] * xy, SH_C2[1] * yz, SH_C2[2] * (2 * zz - xx - yy), SH_C2[3] * xz, SH_C2[4] * (xx - yy)]
    if degree >= 3:
        basis += [
            SH_C3[0] * y * (3 * xx - yy),
            SH_C3[1] * xy * z,
            SH_C3[2] * y * (4 * zz - xx - yy),
            SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            SH_C3[4] * x * (4 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3 * yy),
        ]
    return basis


def sh_colors(params: dict[str, torch.Tensor], degree: int, camera_center: torch.Tensor) -> torch.Tensor:
    """(N, 3) RGB seen from ``camera_center``: SH evaluated up to ``degree``, + 0.5, clamped at 0."""
    import torch

    color = SH_C0 * params["sh0"][:, 0, :]
    if degree > 0:
        # Not detached: the colour a Gaussian shows depends on where it sits, and its mean learns from that too.
        directions = torch.nn.functional.normalize(params["means"] - camera_center, dim=-1)
        basis = torch.stack(sh_basis(directions, degree), dim=1)  # (N, K)
        active = sh_coefficients_for_degree(degree)
        color = color + (basis[:, :, None] * params["shN"][:, :active, :]).sum(dim=1)
    return torch.clamp_min(color + 0.5, 0.0)


def to_cloud(params: dict[str, torch.Tensor], degree: int) -> GaussianCloud:
    """The Gaussians as a ``GaussianCloud`` with the SH bands up to ``degree`` (normalised quaternions)."""
    import torch

    with torch.no_grad():
        arrays = {name: params[name].detach().float().cpu().numpy() for name in PARAM_NAMES}
        quats = arrays["quats"] / np.maximum(np.linalg.norm(arrays["quats"], axis=1, keepdims=True), 1e-12)
    return GaussianCloud(
        means=arrays["means"],
        sh0=arrays["sh0"][:, 0, :],
        shN=arrays["shN"][:, : sh_coefficients_for_degree(degree), :],
        opacities=arrays["opacity_logits"],
        log_scales=arrays["log_scales"],
        quats=quats,
    )
