"""What CesiumJS shows, against what it must show: our own render of the PLY from the same east-north-up pose
(the training renderer, on the CPU, over black), SSIM between the two, and where coloured markers landed."""

from __future__ import annotations

import numpy as np

from spaceport.gaussians import GaussianCloud

# A marker pixel: its own channel bright, the others well below it (the ground is grey, the sky black).
MARKER_MIN_LEVEL, MARKER_MARGIN = 120, 60


def render_reference(cloud: GaussianCloud, camera: object, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8: ``cloud`` (east-north-up) rendered from ``camera`` (an ``EnuCamera``) over black."""
    import torch

    from spaceport.local.views import render_cloud

    focal = camera.focal(height)  # type: ignore[attr-defined]
    intrinsics = torch.tensor([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    centre = torch.tensor(camera.position, dtype=torch.float32)  # type: ignore[attr-defined]
    viewmat = torch.tensor(camera.viewmat(), dtype=torch.float32)  # type: ignore[attr-defined]
    return render_cloud(cloud, viewmat, intrinsics, width, height, centre, (0.0, 0.0, 0.0))


def image_ssim(first: np.ndarray, second: np.ndarray) -> float:
    """SSIM (Wang et al. 2004, 11x11 Gaussian window, as training scores it) of two uint8 RGB images."""
    import torch

    from spaceport.train.losses import ssim

    as_tensor = lambda image: torch.from_numpy(image.astype(np.float32) / 255.0)  # noqa: E731
    return float(ssim(as_tensor(first), as_tensor(second)))


def marker_centroid(image: np.ndarray, colour: tuple[float, float, float]) -> tuple[np.ndarray | None, int]:
    """(the centroid in pixel coordinates, x right and y down, pixel centres at half-integers; the pixel count) of
    the pixels of a saturated primary ``colour``; (None, 0) when none shows."""
    channel = int(np.argmax(colour))
    pixels = image.astype(np.int32)
    others = np.delete(pixels, channel, axis=2).max(axis=2)
    mask = (pixels[:, :, channel] >= MARKER_MIN_LEVEL) & (pixels[:, :, channel] - others >= MARKER_MARGIN)
    rows, columns = np.nonzero(mask)
    if not len(rows):
        return None, 0
    return np.array([columns.mean() + 0.5, rows.mean() + 0.5]), len(rows)
