"""Which directions of the learned sky the photos saw, and what the baked shell shows where they did not.

The sky model is trained only through the pixels where the splat lets it show: ``(1 - alpha)`` of each training
view. In every other direction (behind a walk's cameras, below the ground, beside a facade) its low-order SH is
free to extrapolate, and a degree-3 SH left free swings to garish colours (magenta behind a facade walk,
yellow-green beside a castle) that a viewer orbiting out of the capture path then sees on the shell. So at bake time
each shell direction gets a measured *sight*: how many training views saw it clear, from each view's render of the
trained splat. Directions seen clear at least once keep the model's colour; the rest are filled from the seen ones,
nearest first, and the two blend across the edge of what was seen.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

    from spaceport.train.backend import Renderer
    from spaceport.train.data import CameraView

# Views are rendered for coverage at this fraction of their training size: the sky's directions need only the
# shell's 3-degree spacing, and a quarter-size render costs a sixteenth of a full one on the CPU.
COVERAGE_SCALE = 0.25
# At most this many views, evenly spread over the capture: enough to see every direction a larger capture saw
# (neighbouring photos overlap), and a bound on the export's time for captures of thousands of photos.
COVERAGE_VIEWS = 256
# A direction seen clear by this many views (summed transmittance) keeps the model's colour; less blends towards
# the fill, none is all fill.
SEEN_VIEWS = 1.0
# Concentration of the fill's von Mises weights over seen directions: exp(-FILL_CONCENTRATION) at one radian, so
# the nearest seen directions (within about 20 degrees) decide an unseen one's colour, smoothly.
FILL_CONCENTRATION = 8.0


def sky_sight(params: dict[str, torch.Tensor], views: Sequence[CameraView], renderer: Renderer,
              directions: np.ndarray) -> np.ndarray:  # fmt: skip
    """(count,) for each unit direction, how many of ``views`` saw the sky there through the splat.

    Each view is rendered over black; each pixel adds its transmittance ``1 - alpha`` times its solid angle to the
    nearest of ``directions``, and the sum is divided by that direction's share of the sphere: 1.0 is one view that
    saw the whole of it clear.
    """
    import torch

    from spaceport.train.background import ray_directions

    device = params["means"].device
    targets = torch.as_tensor(directions, dtype=torch.float32, device=device)
    seen = torch.zeros(len(directions), dtype=torch.float64, device=device)
    black = params["means"].new_zeros(3)
    white = params["means"].new_ones((len(params["means"]), 3))
    every = max(1, math.ceil(len(views) / COVERAGE_VIEWS))
    with torch.no_grad():
        for view in list(views)[::every]:
            small = _scaled(view, COVERAGE_SCALE)
            result = renderer(params["means"], params["quats"], params["log_scales"], params["opacity_logits"],
                              white, small.viewmat, small.K, small.width, small.height, black)  # fmt: skip
            clear = (1.0 - result.alpha).clamp(0.0, 1.0).reshape(-1).to(torch.float64)
            rays = ray_directions(small).reshape(-1, 3)
            nearest = torch.cat([(chunk @ targets.T).argmax(dim=1) for chunk in rays.split(8192)])
            seen.index_add_(0, nearest, clear * _pixel_solid_angles(small).reshape(-1))
    per_direction = 4.0 * math.pi / len(directions)
    return (seen / per_direction).cpu().numpy()


def fill_unseen(directions: np.ndarray, colours: np.ndarray, sight: np.ndarray) -> np.ndarray:
    """``colours`` (count, 3) where ``sight`` says the photos saw them; elsewhere filled from the seen ones.

    With nothing seen at all (a capture walled in on every side) there is nothing to fill from, and the model's
    colours stay.
    """
    confidence = np.clip(sight / SEEN_VIEWS, 0.0, 1.0)
    if not confidence.any():
        return colours
    source = np.flatnonzero(confidence > 0)
    # Log-space weights: far from everything seen, the nearest still wins rather than every weight underflowing.
    logits = FILL_CONCENTRATION * (directions @ directions[source].T - 1.0) + np.log(confidence[source])
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    fill = weights @ colours[source] / weights.sum(axis=1, keepdims=True)
    return confidence[:, None] * colours + (1.0 - confidence[:, None]) * fill


def _scaled(view: CameraView, scale: float) -> CameraView:
    """``view`` at ``scale`` of its size (the same field of view), without its photo."""
    import torch

    width, height = max(1, round(view.width * scale)), max(1, round(view.height * scale))
    K = view.K.clone()
    K[0, :] *= width / view.width
    K[1, :] *= height / view.height
    return dataclasses.replace(view, image=torch.empty(0), K=K, width=width, height=height)


def _pixel_solid_angles(view: CameraView) -> torch.Tensor:
    """(H, W) the solid angle of each pixel of a pinhole camera: cos^3 of its angle off the axis over fx * fy."""
    import torch

    rows = torch.arange(view.height, device=view.K.device, dtype=torch.float32) + 0.5
    columns = torch.arange(view.width, device=view.K.device, dtype=torch.float32) + 0.5
    v, u = torch.meshgrid(rows, columns, indexing="ij")
    fx, fy, cx, cy = view.K[0, 0], view.K[1, 1], view.K[0, 2], view.K[1, 2]
    off_axis_squared = ((u - cx) / fx) ** 2 + ((v - cy) / fy) ** 2
    return ((1.0 + off_axis_squared) ** -1.5 / (fx * fy)).to(torch.float64)
