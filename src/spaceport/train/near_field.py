"""Gaussians that only one camera's near field needs, found and removed at each refinement round.

A Gaussian close in front of a training camera covers much of that photo and little of any other: the photometric
loss can use it to paint whatever that photo shows behind it (sky, most often), at no cost in the other photos. A
viewer passing near that point sees it as a veil over the whole frame. Two rules, each a switch:

- the near rule: no Gaussian reaching within ``near_camera_fraction`` of the depth of the nearest surface a training
  camera saw (the ``NEAR_DEPTH_PERCENTILE``-th percentile of the depths of the SfM points it observed) of that
  camera: nothing stood there when the photo was taken. Its reach is ``NEAR_SIGMAS`` standard deviations of its
  extent towards that camera (one wide blob a little farther off veils a view as well as a small one close by,
  while a flat patch of ground under the camera path reaches up to it only by its thickness). The nearest surface,
  not the scene extent or the median depth, sets the scale: a street walk's extent is its length, while its houses
  stand a few metres from every camera; and the close object's backdrop doubled its orbit's median depth, so a
  rule scaled by it pruned the ground under the cameras (held-out PSNR 34 -> 26 dB);
- the view rule: no Gaussian inside fewer than ``min_training_views`` training frustums (a centre's visibility,
  occlusion ignored), for what one photo alone constrains.

Both are geometry only, so they mean the same on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from spaceport.train.config import TrainConfig
    from spaceport.train.data import PosedImage

NEAR_PLANE = 0.01
NEAR_SIGMAS = 2.0
# The nearest surface a photo saw, robustly: a low percentile of its SfM points' depths (one stray point is not one).
NEAR_DEPTH_PERCENTILE = 5.0
CAMERAS_PER_CHUNK = 16


@dataclass
class NearField:
    """The training cameras as the rules see them.

    Attributes:
        centres: (V, 3) camera centres.
        near_radii: (V,) distance within which a Gaussian is in a camera's near field (0: the rule is off).
        viewmats: (V, 4, 4) world-to-camera.
        intrinsics: (V, 3, 3) pixel intrinsics at the sources' own size.
        sizes: (V, 2) width and height in pixels.
        min_views: frustums a Gaussian must be in (0: the rule is off).
    """

    centres: torch.Tensor
    near_radii: torch.Tensor
    viewmats: torch.Tensor
    intrinsics: torch.Tensor
    sizes: torch.Tensor
    min_views: int

    @property
    def active(self) -> bool:
        return bool((self.near_radii > 0).any()) or self.min_views > 0


def nearest_surface_depth(source: PosedImage) -> float:
    """The depth of the nearest surface a photo saw: ``NEAR_DEPTH_PERCENTILE`` of its SfM points' depths (0 when it
    observed none)."""
    if not len(source.observed_points):
        return 0.0
    camera = source.observed_points.astype(np.float64) @ source.viewmat[:3, :3].T + source.viewmat[:3, 3]
    in_front = camera[:, 2][camera[:, 2] > 0]
    return float(np.percentile(in_front, NEAR_DEPTH_PERCENTILE)) if len(in_front) else 0.0


def build_near_field(sources: list[PosedImage], config: TrainConfig, device: str) -> NearField:
    """The rules' view of the training cameras ``sources``, with ``config``'s switches."""
    import torch

    viewmats = np.stack([source.viewmat for source in sources])
    centres = np.stack([-m[:3, :3].T @ m[:3, 3] for m in viewmats])
    radii = np.array([config.near_camera_fraction * nearest_surface_depth(source) for source in sources])
    as_tensor = lambda array: torch.as_tensor(np.asarray(array), dtype=torch.float32, device=device)  # noqa: E731
    intrinsics = np.stack([source.K for source in sources])
    sizes = [[source.width, source.height] for source in sources]
    return NearField(as_tensor(centres), as_tensor(radii), as_tensor(viewmats), as_tensor(intrinsics),
                     as_tensor(sizes), config.min_training_views)  # fmt: skip


def _camera_chunks(field: NearField) -> list[slice]:
    """Cameras a few at a time: (N, cameras, 3) intermediates stay small at millions of Gaussians."""
    count = len(field.centres)
    return [slice(start, min(start + CAMERAS_PER_CHUNK, count)) for start in range(0, count, CAMERAS_PER_CHUNK)]


def in_near_field(means: torch.Tensor, axes: torch.Tensor, field: NearField) -> torch.Tensor:
    """(N,) whether each Gaussian reaches within some camera's near radius: its centre's distance less
    ``NEAR_SIGMAS`` standard deviations along the direction to the camera. ``axes`` (N, 3, 3) holds each Gaussian's
    rotation times its scales (columns: the axes of its 1-sigma ellipsoid)."""
    near = means.new_zeros(len(means), dtype=bool)
    for chunk in _camera_chunks(field):
        offsets = field.centres[None, chunk, :] - means[:, None, :]  # (N, V, 3)
        distances = offsets.norm(dim=-1).clamp_min(1e-12)
        # sqrt(d^T R S^2 R^T d) = |S R^T d| for the unit direction d to the camera.
        sigma = (offsets / distances[..., None] @ axes).norm(dim=-1)
        near |= (distances - NEAR_SIGMAS * sigma < field.near_radii[None, chunk]).any(dim=1)
    return near


def frustum_counts(means: torch.Tensor, field: NearField) -> torch.Tensor:
    """(N,) how many training cameras have each centre in front of them and inside their image."""
    counts = means.new_zeros(len(means), dtype=int)
    for chunk in _camera_chunks(field):
        viewmats, intrinsics, sizes = field.viewmats[chunk], field.intrinsics[chunk], field.sizes[chunk]
        camera = means @ viewmats[:, :3, :3].transpose(1, 2) + viewmats[:, None, :3, 3]  # (V, N, 3)
        depth = camera[..., 2]
        safe = depth.clamp_min(NEAR_PLANE)
        u = intrinsics[:, None, 0, 0] * camera[..., 0] / safe + intrinsics[:, None, 0, 2]
        v = intrinsics[:, None, 1, 1] * camera[..., 1] / safe + intrinsics[:, None, 1, 2]
        inside = (depth > NEAR_PLANE) & (u >= 0) & (v >= 0) & (u < sizes[:, None, 0]) & (v < sizes[:, None, 1])
        counts += inside.sum(dim=0)
    return counts


def unwanted(params: dict[str, torch.Tensor], field: NearField) -> torch.Tensor:
    """(N,) the Gaussians either rule removes."""
    import torch

    with torch.no_grad():
        from spaceport.train.densify import quat_to_rotmat

        means = params["means"].detach()
        axes = quat_to_rotmat(params["quats"].detach()) * torch.exp(params["log_scales"].detach())[:, None, :]
        mask = in_near_field(means, axes, field)
        if field.min_views > 0:
            mask |= frustum_counts(means, field) < field.min_views
    return mask
