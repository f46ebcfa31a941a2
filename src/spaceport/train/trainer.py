"""The optimisation loop: one step per training view, density control on schedule, checkpoints, progress.

It is backend-agnostic: ``renderer`` is the CPU rasteriser or gsplat (see :mod:`spaceport.train.backend`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spaceport.train.densify import DensityStats
from spaceport.train.losses import psnr, ssim, training_loss
from spaceport.train.model import PARAM_NAMES, sh_colors

if TYPE_CHECKING:
    import numpy as np
    import torch

    from spaceport.train.backend import Renderer
    from spaceport.train.checkpoint import CheckpointStore
    from spaceport.train.config import TrainConfig
    from spaceport.train.data import CameraView, PosedImage
    from spaceport.train.progress import ProgressLog
    from spaceport.train.rasterize_cpu import RenderResult
    from spaceport.train.strategy import DensityStrategy

logger = logging.getLogger("spaceport.train")

ADAM_EPS = 1e-15  # 3DGS's value: the per-Gaussian gradients are tiny, the default 1e-8 would damp them


@dataclass
class TrainContext:
    """What a run needs besides its mutable state."""

    config: TrainConfig
    views: list[CameraView]
    renderer: Renderer
    background: torch.Tensor
    extent: float
    log: ProgressLog
    strategy: DensityStrategy
    store: CheckpointStore | None = None


@dataclass
class TrainState:
    """Everything that changes during training, and so everything a checkpoint holds."""

    params: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    stats: DensityStats
    generator: torch.Generator
    iteration: int = 0
    psnr_initial: float | None = None
    view_queue: list[int] = field(default_factory=list)


def create_optimizer(params: dict[str, torch.Tensor], config: TrainConfig, extent: float) -> torch.optim.Adam:
    """Adam with one named group per parameter, at the 3DGS learning rates."""
    import torch

    rates = {"means": config.lr_means * extent, "quats": config.lr_quats, "log_scales": config.lr_scales,
             "opacity_logits": config.lr_opacity, "sh0": config.lr_sh0, "shN": config.lr_shN}  # fmt: skip
    groups = [{"params": [params[name]], "lr": rates[name], "name": name} for name in PARAM_NAMES]
    return torch.optim.Adam(groups, lr=0.0, eps=ADAM_EPS)


def initial_state(points: np.ndarray, colors: np.ndarray, config: TrainConfig, extent: float) -> TrainState:
    """A fresh run: Gaussians at the SfM points, their optimiser, and the run's seeded random streams."""
    import torch

    from spaceport.train.model import init_params

    torch.manual_seed(config.seed)
    params = init_params(points, colors, config.sh_degree, config.initial_opacity, config.device)
    return TrainState(params, create_optimizer(params, config, extent), DensityStats.zeros(len(points), config.device),
                      torch.Generator().manual_seed(config.seed))  # fmt: skip


def means_learning_rate(config: TrainConfig, extent: float, step: int) -> float:
    """Log-linear decay from ``lr_means`` to ``lr_means_final`` over the run, times the scene extent."""
    progress = min(max(step / max(config.iterations, 1), 0.0), 1.0)
    log_rate = (1 - progress) * math.log(config.lr_means) + progress * math.log(config.lr_means_final)
    return extent * math.exp(log_rate)


def active_sh_degree(config: TrainConfig, step: int) -> int:
    """One more SH band every ``sh_degree_interval`` steps, up to ``sh_degree``."""
    return min(config.sh_degree, step // max(config.sh_degree_interval, 1))


def render_view(params: dict[str, torch.Tensor], view: CameraView, degree: int, renderer: Renderer,
                background: torch.Tensor) -> RenderResult:  # fmt: skip
    colors = sh_colors(params, degree, view.camera_center)
    return renderer(params["means"], params["quats"], params["log_scales"], params["opacity_logits"], colors,
                    view.viewmat, view.K, view.width, view.height, background)  # fmt: skip


def next_view(state: TrainState, count: int) -> int:
    """Views in a fresh random order each epoch, drawn from the run's own generator (so resumable)."""
    import torch

    if not state.view_queue:
        state.view_queue = torch.randperm(count, generator=state.generator).tolist()
    return state.view_queue.pop()


def training_background(state: TrainState, ctx: TrainContext) -> torch.Tensor:
    """The colour behind this step's render: fixed, or random per step so no pixel can stay see-through.

    Photos are opaque everywhere; over a fixed black background a half-transparent haze in front of the cameras
    costs nothing where the photo is dark, over a random one it always does.
    """
    import torch

    if not ctx.config.random_background:
        return ctx.background
    return torch.rand(3, generator=state.generator).to(ctx.background.device)


def train_step(state: TrainState, view: CameraView, ctx: TrainContext) -> tuple[float, float]:
    """One optimisation step on one view; returns its loss and training PSNR."""
    config, step = ctx.config, state.iteration + 1
    for group in state.optimizer.param_groups:
        if group["name"] == "means":
            group["lr"] = means_learning_rate(config, ctx.extent, step)
    background = training_background(state, ctx)
    result = render_view(state.params, view, active_sh_degree(config, step), ctx.renderer, background)
    loss = training_loss(result.image, view.image, config.ssim_lambda)
    photometric = float(loss.detach())
    extra = ctx.strategy.loss(state.params)
    if extra is not None:
        loss = loss + extra
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    ctx.strategy.after_backward(state, result, view)
    state.optimizer.step()
    state.iteration = step
    ctx.strategy.after_step(state, ctx)
    return photometric, psnr(result.image, view.image)


def train(state: TrainState, ctx: TrainContext) -> TrainState:
    """Run steps until ``config.iterations``, logging progress and writing checkpoints on schedule."""
    config = ctx.config
    while state.iteration < config.iterations:
        loss, train_psnr = train_step(state, ctx.views[next_view(state, len(ctx.views))], ctx)
        last = state.iteration == config.iterations
        ctx.log.record(state.iteration, loss, train_psnr, len(state.params["means"]), force=last)
        if ctx.store is not None and config.checkpoint_every > 0 and state.iteration % config.checkpoint_every == 0:
            ctx.store.save(state.iteration, checkpoint_payload(state))
    return state


@dataclass
class Evaluation:
    psnr: float
    ssim: float
    per_view: dict[str, float]


def evaluate(params: dict[str, torch.Tensor], degree: int, views: list[CameraView], renderer: Renderer,
             background: torch.Tensor) -> Evaluation:  # fmt: skip
    """Mean PSNR and SSIM over ``views``, rendered at their own resolution over ``background``."""
    import torch

    scores, structures = {}, []
    with torch.no_grad():
        frozen = {name: value.detach() for name, value in params.items()}
        for view in views:
            image = render_view(frozen, view, degree, renderer, background).image.clamp(0, 1)
            scores[view.name] = psnr(image, view.image)
            structures.append(float(ssim(image, view.image)))
    count = max(len(views), 1)
    return Evaluation(sum(scores.values()) / count, sum(structures) / count, scores)


def evaluate_full_size(params: dict[str, torch.Tensor], degree: int, sources: list[PosedImage], renderer: Renderer,
                       background: torch.Tensor) -> Evaluation:  # fmt: skip
    """``evaluate`` on the held-out photos at their full size, loading one at a time to bound memory."""
    from spaceport.train.data import load_view

    device = background.device.type
    results = [evaluate(params, degree, [load_view(source, 0, device)], renderer, background) for source in sources]
    count = max(len(results), 1)
    per_view = {name: value for result in results for name, value in result.per_view.items()}
    return Evaluation(sum(r.psnr for r in results) / count, sum(r.ssim for r in results) / count, per_view)


def checkpoint_payload(state: TrainState) -> dict[str, Any]:
    import torch

    return {
        "iteration": state.iteration,
        "params": {name: value.detach().cpu() for name, value in state.params.items()},
        "optimizer": state.optimizer.state_dict(),
        "stats": {
            "grad_sum": state.stats.grad_sum.cpu(),
            "count": state.stats.count.cpu(),
            "max_screen": state.stats.max_screen.cpu(),
        },  # fmt: skip
        "generator": state.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "view_queue": list(state.view_queue),
        "psnr_initial": state.psnr_initial,
    }


def restore_state(payload: dict[str, Any], config: TrainConfig, extent: float, device: str) -> TrainState:
    """Rebuild the state a checkpoint describes: parameters, Adam moments, statistics and random streams."""
    import torch

    params = {name: payload["params"][name].to(device).requires_grad_(True) for name in PARAM_NAMES}
    optimizer = create_optimizer(params, config, extent)
    optimizer.load_state_dict(payload["optimizer"])
    stats = DensityStats(**{key: value.to(device) for key, value in payload["stats"].items()})
    generator = torch.Generator()
    generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    return TrainState(params, optimizer, stats, generator, int(payload["iteration"]), payload["psnr_initial"],
                      list(payload["view_queue"]))  # fmt: skip
