"""A fixed-budget density strategy in the manner of 3DGS-MCMC (Kheradmand et al. 2024, "3D Gaussian Splatting as
Markov Chain Monte Carlo").

The Gaussians are samples of a distribution over the scene, and the optimiser's steps are Langevin steps:

- after every optimiser step, each Gaussian's mean gets noise shaped by its own covariance, scaled by the current
  position learning rate and a steep sigmoid of its opacity, so only nearly transparent ones wander (eq. 9);
- every ``densify_every`` steps between ``densify_from`` and ``densify_until``, "dead" Gaussians (opacity under
  ``prune_opacity``) are moved onto live ones drawn in proportion to their opacity, and the set grows by
  ``mcmc_growth`` of its size up to ``max_gaussians``, the new ones again drawn from live ones;
- a drawn Gaussian that ends up as N copies of itself gets the opacity and scale that keep the rendered image the
  same before and after the move (eq. 6-7), so a relocation does not disturb the picture;
- the loss adds L1 penalties on opacity and scale, which make unneeded Gaussians fade and so free them for reuse.

No opacity resets, no gradient thresholds and no size heuristics: nothing depends on how a backend measures a
screen radius, and the budget is the user's Gaussian cap.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from spaceport.train.config import TrainConfig

# Copies of one Gaussian per round are capped: the binomial sums of eq. 7 lose precision beyond about 50 terms.
MAX_COPIES = 51
# The opacity sigmoid of the noise term: k = 100 and t = 1 - 0.995 in the paper's notation.
NOISE_SHARPNESS = 100.0
NOISE_OPACITY = 0.005


@lru_cache(maxsize=1)
def _copy_coefficients() -> torch.Tensor:
    """(MAX_COPIES + 1, MAX_COPIES) float64: row n holds the polynomial in the new opacity of eq. 7's denominator.

    denominator(n, o') = sum_{i=1..n} sum_{k=0..i-1} C(i-1, k) (-1)^k o'^(k+1) / sqrt(k+1)
                       = sum_k coefficient[n, k] * o'^(k+1).
    """
    import torch

    table = torch.zeros(MAX_COPIES + 1, MAX_COPIES, dtype=torch.float64)
    for copies in range(1, MAX_COPIES + 1):
        for i in range(1, copies + 1):
            for k in range(i):
                table[copies, k] += math.comb(i - 1, k) * (-1) ** k / math.sqrt(k + 1)
    return table


def split_opacity_and_scale(opacity: torch.Tensor, scales: torch.Tensor,
                            copies: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The opacity and scale of each of ``copies`` Gaussians that together render like one (eq. 6-7).

    Args:
        opacity: (M,) opacities in (0, 1).
        scales: (M, 3) standard deviations.
        copies: (M,) integers >= 1, how many Gaussians the one becomes (itself included).

    Returns:
        The new (M,) opacities, 1 - (1 - o)^(1/N), and (M, 3) scales.
    """
    import torch

    copies = copies.clamp(1, MAX_COPIES)
    new_opacity = 1.0 - torch.pow(1.0 - opacity.double(), 1.0 / copies.double())
    powers = new_opacity[:, None] ** torch.arange(1, MAX_COPIES + 1, dtype=torch.float64, device=opacity.device)
    denominator = (_copy_coefficients().to(opacity.device)[copies] * powers).sum(dim=1)
    factor = (opacity.double() / denominator.clamp_min(1e-12)).clamp(max=1.0)
    return new_opacity.to(opacity.dtype), scales * factor.to(scales.dtype)[:, None]


def regularisation(params: dict[str, torch.Tensor], config: TrainConfig, extent: float) -> torch.Tensor:
    """L1 penalties on opacity and on scale (in units of the scene extent, so scenes of any size weigh alike)."""
    import torch

    opacity_term = torch.sigmoid(params["opacity_logits"]).mean()
    scale_term = torch.exp(params["log_scales"]).mean() / extent
    return config.mcmc_opacity_reg * opacity_term + config.mcmc_scale_reg * scale_term


def inject_noise(params: dict[str, torch.Tensor], means_lr: float, config: TrainConfig,
                 generator: torch.Generator) -> None:  # fmt: skip
    """Move each mean by N(0, Sigma) times ``mcmc_noise * means_lr``, gated by a sigmoid of 1 - opacity (eq. 9)."""
    import torch

    from spaceport.train.densify import quat_to_rotmat

    with torch.no_grad():
        opacity = torch.sigmoid(params["opacity_logits"])
        gate = torch.sigmoid(NOISE_SHARPNESS * (NOISE_OPACITY - opacity))
        rotations = quat_to_rotmat(params["quats"])
        variances = torch.exp(2.0 * params["log_scales"])
        covariance = rotations @ (variances[:, :, None] * rotations.transpose(1, 2))
        draws = torch.randn(params["means"].shape, generator=generator).to(params["means"].device)
        noise = torch.einsum("nij,nj->ni", covariance, draws)
        params["means"].add_(noise * (gate * config.mcmc_noise * means_lr)[:, None])


def _draw_sources(opacity: torch.Tensor, candidates: torch.Tensor, count: int,
                  generator: torch.Generator) -> torch.Tensor:  # fmt: skip
    """``count`` indices among ``candidates``, with replacement, in proportion to their opacity."""
    import torch

    weights = torch.where(candidates, opacity, torch.zeros_like(opacity)).double().cpu()
    drawn = torch.multinomial(weights, count, replacement=True, generator=generator)
    return drawn.to(opacity.device)


def _copy_onto(params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, sources: torch.Tensor,
               targets: torch.Tensor | None) -> None:  # fmt: skip
    """Make the drawn ``sources`` N copies of themselves: written over ``targets``, or appended when None.

    Each source's opacity and scale become those of eq. 6-7 for its number of copies (draws + 1), and every
    touched row's Adam moments restart from zero, as a freshly placed Gaussian's would.
    """
    import torch

    from spaceport.train.densify import replace_gaussians

    unique, draws = torch.unique(sources, return_counts=True)
    with torch.no_grad():
        opacity = torch.sigmoid(params["opacity_logits"][unique])
        new_opacity, new_scales = split_opacity_and_scale(opacity, torch.exp(params["log_scales"][unique]),
                                                          draws + 1)  # fmt: skip
        params["opacity_logits"][unique] = torch.logit(new_opacity, eps=1e-6)
        params["log_scales"][unique] = torch.log(new_scales)
        copies = {name: value[sources].detach().clone() for name, value in params.items()}
        if targets is not None:
            for name, value in params.items():
                value[targets] = copies[name]
    if targets is None:
        keep = torch.ones(len(params["means"]), dtype=torch.bool, device=params["means"].device)
        replace_gaussians(params, optimizer, keep, copies)
        touched = unique
    else:
        touched = torch.cat([unique, targets])
    _zero_moments(optimizer, touched)


def _zero_moments(optimizer: torch.optim.Optimizer, rows: torch.Tensor) -> None:
    for group in optimizer.param_groups:
        state = optimizer.state.get(group["params"][0])
        if state:
            state["exp_avg"][rows] = 0.0
            state["exp_avg_sq"][rows] = 0.0


def relocate_dead(params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, config: TrainConfig,
                  generator: torch.Generator) -> int:  # fmt: skip
    """Move every Gaussian under ``prune_opacity`` onto a live one; returns how many moved."""
    import torch

    opacity = torch.sigmoid(params["opacity_logits"].detach())
    dead = opacity <= config.prune_opacity
    count = int(dead.sum())
    if count == 0 or bool(dead.all()):
        return 0
    sources = _draw_sources(opacity, ~dead, count, generator)
    _copy_onto(params, optimizer, sources, torch.nonzero(dead).squeeze(-1))
    return count


def grow(params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, config: TrainConfig,
         generator: torch.Generator) -> int:  # fmt: skip
    """Add ``mcmc_growth`` of the current count, up to ``max_gaussians``, as copies of live ones; returns how many."""
    import torch

    current = len(params["means"])
    added = min(config.max_gaussians, int(current * (1.0 + config.mcmc_growth))) - current
    if added <= 0:
        return 0
    opacity = torch.sigmoid(params["opacity_logits"].detach())
    live = opacity > config.prune_opacity
    if not bool(live.any()):
        return 0
    sources = _draw_sources(opacity, live, added, generator)
    _copy_onto(params, optimizer, sources, None)
    return added
