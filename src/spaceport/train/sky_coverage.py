"""Which directions of the learned sky the photos saw, and what the baked shell shows where they did not.

The sky model is trained only through the pixels where the splat lets it show: ``(1 - alpha)`` of each training
view. In every other direction (behind a walk's cameras, below the ground, beside a facade) its low-order SH is
free to extrapolate, and a degree-3 SH left free swings to garish colours (magenta behind a facade walk,
yellow-green beside a castle) that a viewer orbiting out of the capture path then sees on the shell. So at bake time
each shell direction gets a measured *sight*: how many training views saw it clear, from each view's render of the
trained splat. Directions seen clear keep the model's colour; the rest are filled from the seen ones, nearest
first, and the two blend across the edge of what was seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from spaceport.train.backend import Renderer
    from spaceport.train.data import CameraView

# Transmittance is summed over blocks of this many pixels a side, and each block goes to the shell direction
# nearest its centre. Views are rendered at their training size: at a smaller size both renderers' 0.3 px blur
# turns every sub-pixel Gaussian (foliage, wires) into an opaque blob several training pixels wide, and sky seen
# between them would count as unseen.
SIGHT_BLOCK = 4
# At most this many views, evenly spread over the capture (the count is scaled back up): a bound on the export's
# time for captures of thousands of photos, whose neighbours overlap anyway.
COVERAGE_VIEWS = 256
# A direction seen clear by this many views keeps the model's colour; less blends towards the fill, none is all
# fill. Half a view, not one: blocks go to their nearest direction, so a direction one photo saw wholly clear
# sums to 1.0 give or take a quarter, and a threshold at 1.0 would call half of those unseen.
SEEN_VIEWS = 0.5
# Concentration of the fill's von Mises weights exp(k (cos angle - 1)) over the seen directions: a third at 30
# degrees, 2 % at 60, so the nearest seen directions decide an unseen one's colour, smoothly.
FILL_CONCENTRATION = 8.0
# The direction lookup's grid: cells of equal area in (z, azimuth), a few tenths of a degree wide against the
# shell's 3-degree spacing.
LOOKUP_Z_CELLS = 256
LOOKUP_AZIMUTH_CELLS = 512


def sky_sight(params: dict[str, torch.Tensor], views: Sequence[CameraView], renderer: Renderer,
              directions: np.ndarray) -> np.ndarray:  # fmt: skip
    """How many of ``views`` saw the sky in each direction through the splat.

    Each view is rendered over black at its own size; each pixel's transmittance ``1 - alpha`` times its solid
    angle goes to the nearest of ``directions``, and the sum is divided by that direction's share of the sphere:
    1.0 is one view that saw the whole of it clear. Beyond ``COVERAGE_VIEWS`` views, every n-th is rendered and
    the sums are scaled by n.

    Args:
        params: the trained Gaussians (``means``, ``quats``, ``log_scales``, ``opacity_logits``).
        views: the training views.
        renderer: the backend's rasteriser (:func:`spaceport.train.backend.select_renderer`).
        directions: (count, 3) unit directions of equal share of the sphere (the shell's Fibonacci points).

    Returns:
        (count,) float64 sight per direction.
    """
    import torch

    from spaceport.train.background import ray_directions

    device = params["means"].device
    table = _nearest_direction_table(directions, device)
    seen = torch.zeros(len(directions), dtype=torch.float64, device=device)
    black = params["means"].new_zeros(3)
    white = params["means"].new_ones((len(params["means"]), 3))
    stride = max(1, math.ceil(len(views) / COVERAGE_VIEWS))
    with torch.no_grad():
        for view in list(views)[::stride]:
            result = renderer(params["means"], params["quats"], params["log_scales"], params["opacity_logits"],
                              white, view.viewmat, view.K, view.width, view.height, black)  # fmt: skip
            clear = (1.0 - result.alpha).clamp(0.0, 1.0).to(torch.float64) * _pixel_solid_angles(view)
            blocks = _block_sums(clear, SIGHT_BLOCK).reshape(-1)
            centres = ray_directions(view, SIGHT_BLOCK).reshape(-1, 3)
            seen.index_add_(0, _nearest_direction(centres, table), blocks)
    per_direction = 4.0 * math.pi / len(directions)
    return (stride * seen / per_direction).cpu().numpy()


def seen_share(sight: np.ndarray) -> float:
    """The share of directions the photos saw (``sight`` at least ``SEEN_VIEWS``): those that keep the model's
    colour whole."""
    return float(np.mean(sight >= SEEN_VIEWS))


def fill_unseen(directions: np.ndarray, colours: np.ndarray, sight: np.ndarray) -> np.ndarray:
    """``colours`` (count, 3) where ``sight`` says the photos saw them; elsewhere filled from the seen ones.

    With nothing seen at all (a capture walled in on every side) there is nothing to fill from, and the model's
    colours stay; with everything seen, nothing is filled.
    """
    confidence = np.clip(np.nan_to_num(sight, nan=0.0) / SEEN_VIEWS, 0.0, 1.0)
    if not confidence.any() or confidence.min() >= 1.0:
        return colours
    source, target = np.flatnonzero(confidence > 0), np.flatnonzero(confidence < 1)
    logits = FILL_CONCENTRATION * (directions[target] @ directions[source].T - 1.0) + np.log(confidence[source])
    # Scaled by each row's largest weight: its nearest seen direction keeps weight 1, so no row sums to zero.
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    fill = weights @ colours[source] / weights.sum(axis=1, keepdims=True)
    kept = confidence[target, None]
    filled = colours.copy()
    filled[target] = kept * colours[target] + (1.0 - kept) * fill
    return filled


def _block_sums(values: torch.Tensor, block: int) -> torch.Tensor:
    """(ceil(H / block), ceil(W / block)) sums of (H, W) ``values`` over ``block`` x ``block`` blocks."""
    import torch

    height, width = values.shape
    padded = torch.nn.functional.pad(values, (0, -width % block, 0, -height % block))
    rows, columns = padded.shape[0] // block, padded.shape[1] // block
    return padded.reshape(rows, block, columns, block).sum(dim=(1, 3))


def _nearest_direction_table(directions: np.ndarray, device: torch.device) -> torch.Tensor:
    """(LOOKUP_Z_CELLS * LOOKUP_AZIMUTH_CELLS,) the index of the direction nearest each lookup cell's centre."""
    import torch

    z = (np.arange(LOOKUP_Z_CELLS) + 0.5) / LOOKUP_Z_CELLS * 2.0 - 1.0
    azimuth = (np.arange(LOOKUP_AZIMUTH_CELLS) + 0.5) / LOOKUP_AZIMUTH_CELLS * 2.0 * math.pi - math.pi
    z_grid, azimuth_grid = np.meshgrid(z, azimuth, indexing="ij")
    ring = np.sqrt(1.0 - z_grid**2)
    cells = np.stack([ring * np.cos(azimuth_grid), ring * np.sin(azimuth_grid), z_grid], axis=-1).reshape(-1, 3)
    cells_t = torch.as_tensor(cells, dtype=torch.float32, device=device)
    targets = torch.as_tensor(directions, dtype=torch.float32, device=device)
    return torch.cat([(chunk @ targets.T).argmax(dim=1) for chunk in cells_t.split(8192)])


def _nearest_direction(rays: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(N,) the index of the direction nearest each of (N, 3) unit ``rays``, by the lookup table."""
    import torch

    z_cell = ((rays[:, 2] + 1.0) * 0.5 * LOOKUP_Z_CELLS).long().clamp(0, LOOKUP_Z_CELLS - 1)
    azimuth = torch.atan2(rays[:, 1], rays[:, 0])
    azimuth_cell = ((azimuth + math.pi) / (2.0 * math.pi) * LOOKUP_AZIMUTH_CELLS).long() % LOOKUP_AZIMUTH_CELLS
    return table[z_cell * LOOKUP_AZIMUTH_CELLS + azimuth_cell]


def _pixel_solid_angles(view: CameraView) -> torch.Tensor:
    """(H, W) the solid angle of each pixel of a pinhole camera: cos^3 of its angle off the axis over fx * fy."""
    import torch

    rows = torch.arange(view.height, device=view.K.device, dtype=torch.float32) + 0.5
    columns = torch.arange(view.width, device=view.K.device, dtype=torch.float32) + 0.5
    v, u = torch.meshgrid(rows, columns, indexing="ij")
    fx, fy, cx, cy = view.K[0, 0], view.K[1, 1], view.K[0, 2], view.K[1, 2]
    off_axis_squared = ((u - cx) / fx) ** 2 + ((v - cy) / fy) ** 2
    return ((1.0 + off_axis_squared) ** -1.5 / (fx * fy)).to(torch.float64)
