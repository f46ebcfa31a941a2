"""What a ray sees once it has passed every Gaussian: the background behind the splat, on both backends.

Three modes (``TrainConfig.background_mode``):

- ``sky`` (the default): a learned environment, a function of the ray's direction only, low-order real spherical
  harmonics per colour channel, trained jointly with the Gaussians. A featureless sky is then the background's job:
  no Gaussian at a finite distance has to paint it, so none hangs near the capture path to veil a view the photos
  did not take. The exported scene carries it as a shell of far Gaussians (:func:`bake_sky_shell`), so every viewer
  shows the sky without knowing of the model;
- ``random``: a new uniform colour each training step, so a see-through pixel always costs something (the release
  before the sky model); it forces the sky to be opaque Gaussians somewhere;
- ``fixed``: ``TrainConfig.background`` behind every step.

Backends render over black and the background is composited here, ``image + (1 - alpha) * background``, so the
model means the same on the CPU rasteriser and on gsplat.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from spaceport.gaussians import SH_C0, GaussianCloud

if TYPE_CHECKING:
    import torch

    from spaceport.train.data import CameraView

# Shell of the exported sky: Fibonacci-sphere points, this many; at 4096 neighbours are 3.2 degrees apart, finer
# than anything a degree-3 sky holds.
SHELL_GAUSSIANS = 4096
# The shell lies this many times farther than nearly every trained Gaussian (SHELL_REACH_PERCENTILE of their
# distances) or the camera extent: from anywhere a viewer orbits, the sky's directions are then within a few degrees
# of those it was trained on. A percentile, not the farthest: one stray Gaussian a thousand units out would push
# the shell, and the viewer's zoom limits with it, out of all proportion; the few beyond the shell are not exported.
SHELL_DISTANCE_FACTOR = 10.0
SHELL_REACH_PERCENTILE = 99.0
# Exported Gaussians must lie inside this share of the shell's radius (nearer ones would poke through it).
SHELL_CLEARANCE = 0.9
# Tangential standard deviation over neighbour spacing: neighbours overlap enough that no ray slips through.
SHELL_SIGMA_PER_SPACING = 0.8
# The discs are this much thinner along the ray than across it.
SHELL_FLATNESS = 1e-3
SHELL_OPACITY = 0.995


# The sky is evaluated once per SKY_BLOCK x SKY_BLOCK pixels, at the block's centre, and held across the block: a
# degree-3 SH changes by about 1/255 over such a block at our fields of view, while evaluating (and interpolating)
# at every pixel of a 480x360 view took 20 to 50 ms a step, a fifth to half of a CPU training step.
SKY_BLOCK = 8


def ray_directions(view: CameraView, block: int = 1) -> torch.Tensor:
    """Unit world directions through ``view``'s pixel centres (COLMAP: centres at +0.5), (H, W, 3); with ``block``
    > 1, through the centres of its blocks of ``block`` x ``block`` pixels, (ceil(H / block), ceil(W / block), 3)."""
    import torch

    device = view.K.device

    def centres(count: int) -> torch.Tensor:
        return torch.arange(0, count, block, device=device, dtype=torch.float32) + 0.5 * block

    v, u = torch.meshgrid(centres(view.height), centres(view.width), indexing="ij")
    fx, fy, cx, cy = view.K[0, 0], view.K[1, 1], view.K[0, 2], view.K[1, 2]
    camera = torch.stack([(u - cx) / fx, (v - cy) / fy, torch.ones_like(u)], dim=-1)
    world = camera @ view.viewmat[:3, :3]  # R^T d for row vectors
    return torch.nn.functional.normalize(world, dim=-1)


class SkyModel:
    """A learned background: RGB = 0.5 + sum of real SH up to ``degree`` at the ray direction, clamped to [0, 1].

    The basis and the 0.5 offset are the Gaussians' own (:func:`spaceport.train.model.sh_colors`), so a far
    Gaussian can carry any of its values exactly.
    """

    def __init__(self, degree: int, learning_rate: float, device: str | torch.device) -> None:
        import torch

        self.degree = degree
        self.coefficients = torch.zeros(((degree + 1) ** 2, 3), device=device, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.coefficients], lr=learning_rate, eps=1e-15)

    def colours(self, directions: torch.Tensor) -> torch.Tensor:
        """(..., 3) colours for (..., 3) unit directions."""
        import torch

        from spaceport.train.model import sh_basis

        flat = directions.reshape(-1, 3)
        basis = torch.stack([torch.full_like(flat[:, 0], SH_C0), *sh_basis(flat, self.degree)], dim=1)
        return (basis @ self.coefficients + 0.5).clamp(0.0, 1.0).reshape(directions.shape)

    def behind(self, view: CameraView) -> torch.Tensor:
        """(H, W, 3) the sky behind each pixel of ``view``, one value per block of ``SKY_BLOCK`` pixels."""
        coarse = self.colours(ray_directions(view, SKY_BLOCK))
        rows, columns = coarse.shape[:2]
        blocks = coarse[:, None, :, None, :].expand(rows, SKY_BLOCK, columns, SKY_BLOCK, 3)
        return blocks.reshape(rows * SKY_BLOCK, columns * SKY_BLOCK, 3)[: view.height, : view.width]

    def step(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"degree": self.degree, "coefficients": self.coefficients.detach().cpu(),
                "optimizer": self.optimizer.state_dict()}  # fmt: skip

    def load_state_dict(self, payload: dict) -> None:
        import torch

        with torch.no_grad():
            self.coefficients.copy_(payload["coefficients"].to(self.coefficients.device))
        self.optimizer.load_state_dict(payload["optimizer"])


class FixedBackground:
    """One colour behind every pixel."""

    def __init__(self, colour: torch.Tensor) -> None:
        self.colour = colour

    def behind(self, view: CameraView) -> torch.Tensor:
        return self.colour


def composite(image: torch.Tensor, alpha: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """An image rendered over black, put in front of ``background`` ((3,) or (H, W, 3))."""
    return image + (1.0 - alpha)[..., None] * background.to(image.dtype)


def fibonacci_directions(count: int) -> np.ndarray:
    """(count, 3) unit vectors spread evenly over the sphere (the golden-angle spiral)."""
    index = np.arange(count, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * index / count
    radius = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    azimuth = math.pi * (3.0 - math.sqrt(5.0)) * index
    return np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth), z], axis=1)


def _quaternions_turning_z_to(directions: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz unit quaternions whose rotation takes +z to each unit direction (the disc's normal)."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, directions)
    cosine = directions @ z
    quats = np.concatenate([(1.0 + cosine)[:, None], axis], axis=1)
    # Straight down has no half-way vector: any half turn about a horizontal axis does.
    quats[cosine < -1.0 + 1e-9] = (0.0, 1.0, 0.0, 0.0)
    return quats / np.linalg.norm(quats, axis=1, keepdims=True)


def shell_radius(means: np.ndarray, centre: np.ndarray, extent: float) -> float:
    """How far the shell lies from ``centre``: beyond nearly every trained Gaussian and the cameras, by far."""
    distances = np.linalg.norm(means - centre, axis=1)
    distances = distances[np.isfinite(distances)]
    reach = float(np.percentile(distances, SHELL_REACH_PERCENTILE)) if len(distances) else 0.0
    return SHELL_DISTANCE_FACTOR * max(reach, extent)


def inside_shell(means: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """(N,) the Gaussians that stay clear inside a shell of ``radius`` (the rest are not exported with it)."""
    return np.linalg.norm(means - centre, axis=1) < SHELL_CLEARANCE * radius


def bake_sky_shell(sky: SkyModel, centre: np.ndarray, radius: float, sh_rest: int, count: int = SHELL_GAUSSIANS,
                   sight: np.ndarray | None = None) -> GaussianCloud:  # fmt: skip
    """The sky as opaque, flat Gaussians on a sphere around ``centre``, each coloured by the model at its direction.

    Args:
        sky: the trained background.
        centre: where the directions are taken from (the training cameras' mean centre).
        radius: the sphere's radius (:func:`shell_radius`).
        sh_rest: higher-order SH coefficients per channel of the cloud it joins (left zero: one colour each).
        count: Gaussians on the sphere, at :func:`fibonacci_directions` ``(count)``.
        sight: (count,) how many training views saw each direction clear (:func:`spaceport.train.sky_coverage.
            sky_sight`); where fewer than ``SEEN_VIEWS`` did, the colour blends towards one filled from the seen
            directions, and where none did it is all fill, instead of the model's extrapolation. None: every
            direction as the model has it.
    """
    import torch

    from spaceport.train.sky_coverage import fill_unseen

    directions = fibonacci_directions(count)
    with torch.no_grad():
        colours = sky.colours(torch.as_tensor(directions, dtype=torch.float32, device=sky.coefficients.device))
    colours = colours.cpu().numpy().astype(np.float64)
    if sight is not None:
        if len(sight) != count:
            raise ValueError(f"sight holds {len(sight)} directions, the shell {count}")
        colours = fill_unseen(directions, colours, sight)
    spacing = radius * math.sqrt(4.0 * math.pi / count)
    sigma = SHELL_SIGMA_PER_SPACING * spacing
    log_scales = np.log([sigma, sigma, sigma * SHELL_FLATNESS])
    return GaussianCloud(
        means=centre[None, :] + radius * directions,
        sh0=(colours - 0.5) / SH_C0,
        shN=np.zeros((count, sh_rest, 3)),
        opacities=np.full(count, math.log(SHELL_OPACITY / (1.0 - SHELL_OPACITY))),
        log_scales=np.repeat(log_scales[None, :], count, axis=0),
        quats=_quaternions_turning_z_to(directions),
    )
