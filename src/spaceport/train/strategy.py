"""Density strategies: what the training loop does around each step to add, move and remove Gaussians.

Two are offered, chosen by ``TrainConfig.strategy``:

- ``adc`` (the default): 3DGS's adaptive density control (:mod:`spaceport.train.densify`): clone and split by
  screen-space gradient, prune transparent Gaussians, opacity resets only in the first two thirds of training,
  and size pruning only when asked for (``prune_world_size``, ``prune_screen_size``);
- ``mcmc``: a fixed budget in the manner of 3DGS-MCMC (:mod:`spaceport.train.mcmc`).

Why ``adc`` by default, measured on four synthetic captures and a real one (benchmarks/RESULTS.md, "Training
quality across scenes"): size pruning was what collapsed held-out PSNR after every reset; without it, and with no
reset left too late to recover from, ``adc`` matched ``mcmc`` at equal Gaussian counts and needed fewer of them
for the same quality, because it sizes the set to the scene, while ``mcmc`` fills its budget everywhere and its
opacity penalty left backgrounds see-through.

Both serve both backends with the same meaning of every threshold: the only backend-dependent figures are the
screen-space gradient and radius that ``adc`` reads, and both backends compute those the same way
(:mod:`spaceport.train.backend`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch

    from spaceport.train.config import TrainConfig
    from spaceport.train.data import CameraView
    from spaceport.train.near_field import NearField
    from spaceport.train.rasterize_cpu import RenderResult
    from spaceport.train.trainer import TrainContext, TrainState

logger = logging.getLogger("spaceport.train")


class DensityStrategy(Protocol):
    def loss(self, params: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """A term added to the photometric loss, or None."""

    def after_backward(self, state: TrainState, result: RenderResult, view: CameraView) -> None:
        """Read the step's gradients before the optimiser moves anything."""

    def after_step(self, state: TrainState, ctx: TrainContext) -> None:
        """Change the set of Gaussians after the optimiser's step ``state.iteration``."""


def in_refine_window(config: TrainConfig, step: int) -> bool:
    return config.densify_from <= step < config.densify_until and step % config.densify_every == 0


class AdaptiveDensityControl:
    """3DGS's clone / split / prune with opacity resets, kept out of the last third of training."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def loss(self, params: dict[str, torch.Tensor]) -> torch.Tensor | None:
        return None

    def after_backward(self, state: TrainState, result: RenderResult, view: CameraView) -> None:
        from spaceport.train.densify import accumulate

        if state.iteration + 1 < self.config.densify_until:
            accumulate(state.stats, result, view.width, view.height, self.config.absgrad)

    def after_step(self, state: TrainState, ctx: TrainContext) -> None:
        from spaceport.train.densify import adapt_density, reset_opacity

        config, step = self.config, state.iteration
        if step >= config.densify_until:
            return
        if in_refine_window(config, step):
            before = len(state.params["means"])
            state.stats, change = adapt_density(state.params, state.optimizer, state.stats, config, ctx.extent,
                                                step, state.generator, ctx.near_field)  # fmt: skip
            logger.debug("step %d: %d -> %d Gaussians (%s)", step, before, len(state.params["means"]), change)
        if step % config.opacity_reset_every == 0 and resets_allowed(config, step):
            reset_opacity(state.params, state.optimizer)


def resets_allowed(config: TrainConfig, step: int) -> bool:
    """A reset costs the scene its opacities: only in the first two thirds, so a third is left to win them back."""
    return 3 * step < 2 * config.iterations


class MarkovChainMonteCarlo:
    """3DGS-MCMC: noise on every step, relocation of dead Gaussians and growth to the cap on schedule."""

    def __init__(self, config: TrainConfig, extent: float) -> None:
        self.config, self.extent = config, extent

    def loss(self, params: dict[str, torch.Tensor]) -> torch.Tensor | None:
        from spaceport.train.mcmc import regularisation

        return regularisation(params, self.config, self.extent)

    def after_backward(self, state: TrainState, result: RenderResult, view: CameraView) -> None:
        return None

    def after_step(self, state: TrainState, ctx: TrainContext) -> None:
        from spaceport.train.mcmc import grow, inject_noise, relocate_dead
        from spaceport.train.trainer import means_learning_rate

        config, step = self.config, state.iteration
        if in_refine_window(config, step):
            if ctx.near_field is not None and ctx.near_field.active:
                kill_near_camera(state.params, ctx.near_field)
            moved = relocate_dead(state.params, state.optimizer, config, state.generator)
            added = grow(state.params, state.optimizer, config, state.generator)
            logger.debug("step %d: %d relocated, %d added, %d Gaussians", step, moved, added,
                         len(state.params["means"]))  # fmt: skip
        inject_noise(state.params, means_learning_rate(config, ctx.extent, step), config, state.generator)


def kill_near_camera(params: dict[str, torch.Tensor], near_field: NearField) -> None:
    """mcmc keeps its budget: what the near-camera rules reject is made dead, and so relocated onto live ones."""
    import torch

    from spaceport.train.densify import RESET_OPACITY
    from spaceport.train.model import logit
    from spaceport.train.near_field import unwanted

    with torch.no_grad():
        params["opacity_logits"][unwanted(params, near_field)] = logit(RESET_OPACITY / 100)


def select_strategy(config: TrainConfig, extent: float) -> DensityStrategy:
    """The configured strategy; ``extent`` is the scene's length scale (the camera extent)."""
    if config.strategy == "mcmc":
        return MarkovChainMonteCarlo(config, extent)
    return AdaptiveDensityControl(config)
