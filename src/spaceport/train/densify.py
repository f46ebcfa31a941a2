"""Adaptive density control (3DGS, section 5): clone, split, prune, reset opacity; Adam state kept in step.

Each training step adds the screen-space gradient norm of every visible Gaussian's mean to a running
sum. Every ``densify_every`` steps, Gaussians whose average gradient exceeds the threshold are cloned
(small ones: under-reconstructed regions) or split into two samples of themselves shrunk by 1.6 (large
ones: over-reconstructed regions), within the ``max_gaussians`` budget; then nearly transparent ones,
and after the first opacity reset huge ones, are pruned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from spaceport.train.model import logit

if TYPE_CHECKING:
    import torch

    from spaceport.train.config import TrainConfig
    from spaceport.train.near_field import NearField
    from spaceport.train.rasterize_cpu import RenderResult

SPLIT_SHRINK = 1.6
# Opacity reset ceiling: 3DGS drops every opacity to at most 0.01 so that floaters can be pruned.
RESET_OPACITY = 0.01


@dataclass
class DensityStats:
    """Per-Gaussian statistics since the last densification, (N,) each."""

    grad_sum: torch.Tensor
    count: torch.Tensor
    max_screen: torch.Tensor  # largest projected radius seen, as a fraction of the image's longest side

    @classmethod
    def zeros(cls, count: int, device: str | torch.device) -> DensityStats:
        import torch

        return cls(*(torch.zeros(count, device=device) for _ in range(3)))


def accumulate(stats: DensityStats, result: RenderResult, width: int, height: int, absgrad: bool = False) -> None:
    """Add one render's screen-space gradients (call after ``backward``, before the optimiser step): the gradient of
    each mean, or with ``absgrad`` the sum of its per-pixel gradients' absolute values (both backends give it)."""
    import torch

    grad = getattr(result.means2d, "absgrad", None) if absgrad else result.means2d.grad
    if grad is None:
        return
    # Pixel gradients times half the image size are gradients in NDC units, independent of resolution.
    ndc = grad.reshape(-1, 2) * torch.tensor([width / 2.0, height / 2.0], device=grad.device)
    visible = result.radii.reshape(-1) > 0
    stats.grad_sum[visible] += ndc[visible].norm(dim=-1)
    stats.count[visible] += 1
    screen = result.radii.reshape(-1).float() / max(width, height)
    stats.max_screen[visible] = torch.maximum(stats.max_screen[visible], screen[visible])


def replace_gaussians(params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, keep: torch.Tensor,
                      appended: dict[str, torch.Tensor] | None = None) -> None:  # fmt: skip
    """Keep the rows ``keep`` of every parameter, append ``appended``; resize Adam's moments the same way.

    New rows start with zero moments (as a fresh parameter would); kept rows keep theirs, so densifying
    does not disturb the optimisation of the Gaussians it leaves alone.
    """
    import torch

    for group in optimizer.param_groups:
        name, old = group["name"], group["params"][0]
        extra = appended[name].detach() if appended else old.detach()[:0]
        new = torch.cat([old.detach()[keep], extra]).requires_grad_(True)
        state = optimizer.state.pop(old, None)
        if state:
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = torch.cat([state[key][keep], torch.zeros_like(extra)])
            optimizer.state[new] = state
        group["params"][0] = new
        params[name] = new


def quat_to_rotmat(quats: torch.Tensor) -> torch.Tensor:
    """(N, 4) wxyz quaternions, not necessarily normalised, to (N, 3, 3) rotation matrices."""
    import torch

    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(-1, 3, 3)


def _split_samples(params: dict[str, torch.Tensor], index: torch.Tensor, generator: torch.Generator) -> dict:
    """Two Gaussians per split one: positions sampled from it, scales divided by 1.6, the rest copied."""
    import torch

    scales = torch.exp(params["log_scales"][index])
    offsets = torch.randn((2, len(index), 3), generator=generator, device="cpu").to(scales.device) * scales
    rotations = quat_to_rotmat(params["quats"][index])
    samples = {name: params[name][index].detach().repeat(2, *[1] * (params[name].dim() - 1)) for name in params}
    samples["means"] = (params["means"][index] + torch.einsum("nij,knj->kni", rotations, offsets)).reshape(-1, 3)
    samples["log_scales"] = torch.log(scales / SPLIT_SHRINK).repeat(2, 1)
    return {name: value.detach() for name, value in samples.items()}


def _select_within_budget(candidates: torch.Tensor, average: torch.Tensor, budget: int) -> torch.Tensor:
    """The candidates with the largest gradients, at most ``budget`` of them (each adds one Gaussian)."""
    import torch

    if int(candidates.sum()) <= budget:
        return candidates
    chosen = torch.zeros_like(candidates)
    if budget > 0:
        order = torch.argsort(torch.where(candidates, average, torch.full_like(average, -1.0)), descending=True)
        chosen[order[:budget]] = True
    return chosen


def densify(params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, stats: DensityStats,
            config: TrainConfig, extent: float, generator: torch.Generator) -> tuple[torch.Tensor, int]:  # fmt: skip
    """Clone and split the Gaussians with large average screen-space gradients.

    Returns:
        The (N,) mask of the Gaussians that were split (and so removed), and the number cloned.
    """
    import torch

    average = stats.grad_sum / stats.count.clamp_min(1)
    candidates = average >= (config.densify_absgrad_threshold if config.absgrad else config.densify_grad_threshold)
    candidates = _select_within_budget(candidates, average, config.max_gaussians - len(average))
    small = torch.exp(params["log_scales"].detach()).max(dim=-1).values <= config.percent_dense * extent
    clone, split = candidates & small, candidates & ~small
    clones = {name: params[name][clone].detach() for name in params}
    samples = _split_samples(params, torch.nonzero(split).squeeze(-1), generator)
    appended = {name: torch.cat([clones[name], samples[name]]) for name in params}
    replace_gaussians(params, optimizer, ~split, appended)
    return split, int(clone.sum())


def prune(params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, config: TrainConfig, extent: float,
          too_big_on_screen: torch.Tensor | None, too_big_in_world: bool = False,
          also: torch.Tensor | None = None) -> int:  # fmt: skip
    """Remove nearly transparent Gaussians, huge ones when asked, and ``also``; returns how many went.

    Args:
        params: the Gaussians' parameters, replaced in place.
        optimizer: the Adam optimiser holding them.
        config: thresholds.
        extent: the scene's length scale.
        too_big_on_screen: (N,) mask, or None (3DGS prunes by size only after the first opacity reset, when the
            early large Gaussians have had a chance to shrink).
        too_big_in_world: also remove those wider than ``prune_world_scale`` of the extent.
        also: (N,) mask of further Gaussians to remove (the near-camera rules), or None.
    """
    import torch

    remove = torch.sigmoid(params["opacity_logits"].detach()) < config.prune_opacity
    if too_big_on_screen is not None:
        remove |= too_big_on_screen
    if too_big_in_world:
        largest_axis = torch.exp(params["log_scales"].detach()).max(dim=-1).values
        remove |= largest_axis > config.prune_world_scale * extent
    if also is not None:
        remove |= also
    if bool(remove.all()):
        # Never leave an empty scene: the renderer and the optimiser need at least one Gaussian.
        remove[torch.argmax(params["opacity_logits"].detach())] = False
    if bool(remove.any()):
        replace_gaussians(params, optimizer, ~remove)
    return int(remove.sum())


def reset_opacity(params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> None:
    """Clamp every opacity to at most 0.01 and zero its Adam moments (3DGS's periodic reset)."""
    import torch

    with torch.no_grad():
        params["opacity_logits"].clamp_(max=logit(RESET_OPACITY))
    for group in optimizer.param_groups:
        state = optimizer.state.get(group["params"][0])
        if group["name"] == "opacity_logits" and state:
            state["exp_avg"].zero_()
            state["exp_avg_sq"].zero_()


@dataclass
class DensityChange:
    cloned: int
    split: int
    pruned: int


def adapt_density(params: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer, stats: DensityStats,
                  config: TrainConfig, extent: float, step: int, generator: torch.Generator,
                  near_field: NearField | None = None) -> tuple[DensityStats, DensityChange]:  # fmt: skip
    """One round: clone / split, then prune (the near-camera rules too, when ``near_field`` is given); returns fresh
    statistics for the new set and what changed."""
    import torch

    from spaceport.train.near_field import unwanted

    big_on_screen = stats.max_screen > config.prune_screen_fraction
    split, cloned = densify(params, optimizer, stats, config, extent, generator)
    after_reset = step > config.opacity_reset_every
    too_big_on_screen = None
    if config.prune_screen_size and after_reset:
        # densify keeps the non-split originals in order and appends the new ones, which are not big yet.
        kept = big_on_screen[~split]
        too_big_on_screen = torch.cat([kept, kept.new_zeros(len(params["means"]) - len(kept))])
    near = unwanted(params, near_field) if near_field is not None and near_field.active else None
    pruned = prune(params, optimizer, config, extent, too_big_on_screen, config.prune_world_size and after_reset,
                   near)  # fmt: skip
    fresh = DensityStats.zeros(len(params["means"]), params["means"].device)
    return fresh, DensityChange(cloned, int(split.sum()), pruned)
