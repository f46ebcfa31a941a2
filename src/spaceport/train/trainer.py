"""The optimisation loop: one step per training view, density control on schedule, checkpoints, progress.

It is backend-agnostic: ``renderer`` is the CPU rasteriser or gsplat (see :mod:`spaceport.train.backend`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from spaceport.train.densify import DensityStats
from spaceport.train.losses import alpha_entropy, psnr, ssim, training_loss
from spaceport.train.model import PARAM_NAMES, sh_colors

if TYPE_CHECKING:
    import numpy as np
    import torch

    from spaceport.train.appearance import Appearance
    from spaceport.train.backend import Renderer
    from spaceport.train.background import FixedBackground, SkyModel
    from spaceport.train.checkpoint import CheckpointStore
    from spaceport.train.config import TrainConfig
    from spaceport.train.data import CameraView, PosedImage
    from spaceport.train.depth_prior import ObservedDepths
    from spaceport.train.near_field import NearField
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
    background: torch.Tensor  # the fixed colour (background_mode "fixed", and behind the sky's clamp nowhere)
    extent: float
    log: ProgressLog
    strategy: DensityStrategy
    store: CheckpointStore | None = None
    near_field: NearField | None = None
    observed_depths: dict[str, ObservedDepths] | None = None


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
    sky: SkyModel | None = None
    appearance: Appearance | None = None


def create_optimizer(params: dict[str, torch.Tensor], config: TrainConfig, extent: float) -> torch.optim.Adam:
    """Adam with one named group per parameter, at the 3DGS learning rates."""
    import torch

    rates = {"means": config.lr_means * extent, "quats": config.lr_quats, "log_scales": config.lr_scales,
             "opacity_logits": config.lr_opacity, "sh0": config.lr_sh0, "shN": config.lr_shN}  # fmt: skip
    groups = [{"params": [params[name]], "lr": rates[name], "name": name} for name in PARAM_NAMES]
    return torch.optim.Adam(groups, lr=0.0, eps=ADAM_EPS)


def initial_state(points: np.ndarray, colors: np.ndarray, config: TrainConfig, extent: float,
                  sources: list[PosedImage] | None = None) -> TrainState:  # fmt: skip
    """A fresh run: Gaussians at the SfM points, their optimiser, the run's seeded random streams, and the
    background and the training photos' (``sources``) colour transforms where the config asks for them."""
    import torch

    from spaceport.train.model import init_params

    torch.manual_seed(config.seed)
    params = init_params(points, colors, config.sh_degree, config.initial_opacity, config.device)
    return TrainState(params, create_optimizer(params, config, extent), DensityStats.zeros(len(points), config.device),
                      torch.Generator().manual_seed(config.seed), sky=new_sky(config),
                      appearance=new_appearance(config, sources or []))  # fmt: skip


def held_out_gains(state: TrainState, train_sources: list[PosedImage],
                   test_sources: list[PosedImage]) -> dict[str, float] | None:  # fmt: skip
    """The held-out photos' EXIF gains against the training photos' median exposure, when compensation is on."""
    from spaceport.train.appearance import exposure_gains, median_exposure

    if state.appearance is None:
        return None
    reference = median_exposure([source.path for source in train_sources])
    gains = exposure_gains([source.path for source in test_sources], reference)
    return {source.name: gain for source, gain in zip(test_sources, gains, strict=True)}


def new_appearance(config: TrainConfig, sources: list[PosedImage]) -> Appearance | None:
    """The training photos' colour transforms, started from their EXIF exposure, when ``appearance`` is on."""
    from spaceport.train.appearance import Appearance, initial_gains

    if not config.appearance or not sources:
        return None
    return Appearance([source.name for source in sources], initial_gains([source.path for source in sources]),
                      config.lr_appearance, config.device)  # fmt: skip


def new_sky(config: TrainConfig) -> SkyModel | None:
    """The learned background of background_mode "sky", untrained (mid-grey everywhere); else None."""
    from spaceport.train.background import SkyModel

    return SkyModel(config.sky_sh_degree, config.lr_sky, config.device) if config.background_mode == "sky" else None


def means_learning_rate(config: TrainConfig, extent: float, step: int) -> float:
    """Log-linear decay from ``lr_means`` to ``lr_means_final`` over ``lr_means_decay_steps`` (0: the run's length),
    then constant; times the scene extent."""
    decay_steps = config.lr_means_decay_steps or config.iterations
    progress = min(max(step / max(decay_steps, 1), 0.0), 1.0)
    log_rate = (1 - progress) * math.log(config.lr_means) + progress * math.log(config.lr_means_final)
    return extent * math.exp(log_rate)


def active_sh_degree(config: TrainConfig, step: int) -> int:
    """One more SH band every ``sh_degree_interval`` steps, up to ``sh_degree``."""
    return min(config.sh_degree, step // max(config.sh_degree_interval, 1))


def render_view(params: dict[str, torch.Tensor], view: CameraView, degree: int, renderer: Renderer,
                background: torch.Tensor) -> RenderResult:  # fmt: skip
    """Render over black, then composite over ``background`` ((3,) or (H, W, 3)) in code both backends share."""
    import dataclasses

    from spaceport.train.background import composite

    colors = sh_colors(params, degree, view.camera_center)
    black = params["means"].new_zeros(3)
    result = renderer(params["means"], params["quats"], params["log_scales"], params["opacity_logits"], colors,
                      view.viewmat, view.K, view.width, view.height, black)  # fmt: skip
    return dataclasses.replace(result, image=composite(result.image, result.alpha, background))


def next_view(state: TrainState, count: int) -> int:
    """Views in a fresh random order each epoch, drawn from the run's own generator (so resumable)."""
    import torch

    if not state.view_queue:
        state.view_queue = torch.randperm(count, generator=state.generator).tolist()
    return state.view_queue.pop()


def training_background(state: TrainState, ctx: TrainContext, view: CameraView) -> torch.Tensor:
    """What this step's render is composited over: the learned sky, a random colour, or the fixed one.

    Random: photos are opaque everywhere; over a fixed black background a half-transparent haze in front of the
    cameras costs nothing where the photo is dark, over a random one it always does.
    """
    import torch

    if state.sky is not None:
        return state.sky.behind(view)
    if ctx.config.background_mode == "random":
        return torch.rand(3, generator=state.generator).to(ctx.background.device)
    return ctx.background


def evaluation_background(state: TrainState, ctx: TrainContext) -> SkyModel | FixedBackground:
    """What held-out renders are composited over: the learned sky, else the fixed colour."""
    from spaceport.train.background import FixedBackground

    return state.sky if state.sky is not None else FixedBackground(ctx.background)


def train_step(state: TrainState, view: CameraView, ctx: TrainContext) -> tuple[float, float]:
    """One optimisation step on one view; returns its loss and training PSNR."""
    config, step = ctx.config, state.iteration + 1
    for group in state.optimizer.param_groups:
        if group["name"] == "means":
            group["lr"] = means_learning_rate(config, ctx.extent, step)
    background = training_background(state, ctx, view)
    result = render_view(state.params, view, active_sh_degree(config, step), ctx.renderer, background)
    image = state.appearance.apply(result.image, view.name) if state.appearance is not None else result.image
    loss = training_loss(image, view.image, config.ssim_lambda)
    photometric = float(loss.detach())
    if config.alpha_entropy_weight > 0:
        loss = loss + config.alpha_entropy_weight * alpha_entropy(result.alpha)
    for extra in (ctx.strategy.loss(state.params), depth_loss(state, view, ctx), surface_opacity(result, view, ctx)):
        if extra is not None:
            loss = loss + extra
    state.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    ctx.strategy.after_backward(state, result, view)
    state.optimizer.step()
    for model in (state.sky, state.appearance):
        if model is not None:
            model.step()
    state.iteration = step
    ctx.strategy.after_step(state, ctx)
    return photometric, psnr(image, view.image)


def depth_loss(state: TrainState, view: CameraView, ctx: TrainContext) -> torch.Tensor | None:
    """The weighted depth term on the steps its schedule names, else None."""
    from spaceport.train.depth_prior import depth_term

    config, step = ctx.config, state.iteration + 1
    if ctx.observed_depths is None or config.depth_loss_weight <= 0 or step % max(config.depth_loss_every, 1):
        return None
    term = depth_term(state.params, view, ctx.observed_depths[view.name], ctx.renderer)
    return None if term is None else config.depth_loss_weight * term


def surface_opacity(result: RenderResult, view: CameraView, ctx: TrainContext) -> torch.Tensor | None:
    """The weighted transparency at the view's observed SfM points, when asked for."""
    from spaceport.train.depth_prior import surface_opacity_term

    if ctx.observed_depths is None or ctx.config.surface_opacity_weight <= 0:
        return None
    term = surface_opacity_term(result.alpha, ctx.observed_depths[view.name])
    return None if term is None else ctx.config.surface_opacity_weight * term


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
    """Held-out scores: means over the views, the worst and the median view, and each view's own.

    Attributes:
        psnr: mean PSNR.
        ssim: mean SSIM.
        per_view: each view's PSNR by name.
        cc_psnr: mean colour-corrected PSNR (each render mapped by the affine colour transform that fits its photo
            best, as gsplat reports it): what is left once exposure and white balance are forgiven.
    """

    psnr: float
    ssim: float
    per_view: dict[str, float]
    cc_psnr: float = 0.0

    @property
    def worst(self) -> float:
        return min(self.per_view.values(), default=0.0)

    @property
    def median(self) -> float:
        import statistics

        return statistics.median(self.per_view.values()) if self.per_view else 0.0


def evaluate(params: dict[str, torch.Tensor], degree: int, views: list[CameraView], renderer: Renderer,
             background: SkyModel | FixedBackground, gains: dict[str, float] | None = None) -> Evaluation:  # fmt: skip
    """PSNR and SSIM over ``views``, rendered at their own resolution over ``background``, each render times its
    photo's exposure gain in ``gains`` where given (see :mod:`spaceport.train.appearance`)."""
    import torch

    from spaceport.train.losses import colour_corrected

    scores, corrected, structures = {}, [], []
    with torch.no_grad():
        frozen = {name: value.detach() for name, value in params.items()}
        for view in views:
            image = render_view(frozen, view, degree, renderer, background.behind(view)).image
            image = (image * (gains or {}).get(view.name, 1.0)).clamp(0, 1)
            scores[view.name] = psnr(image, view.image)
            corrected.append(psnr(colour_corrected(image, view.image), view.image))
            structures.append(float(ssim(image, view.image)))
    count = max(len(views), 1)
    return Evaluation(sum(scores.values()) / count, sum(structures) / count, scores, sum(corrected) / count)


def evaluate_full_size(params: dict[str, torch.Tensor], degree: int, sources: list[PosedImage], renderer: Renderer,
                       background: SkyModel | FixedBackground,
                       gains: dict[str, float] | None = None) -> Evaluation:  # fmt: skip
    """``evaluate`` on the held-out photos at their full size, loading one at a time to bound memory."""
    from spaceport.train.data import load_view

    device = params["means"].device.type
    results = [evaluate(params, degree, [load_view(source, 0, device)], renderer, background, gains)
               for source in sources]  # fmt: skip
    count = max(len(results), 1)
    per_view = {name: value for result in results for name, value in result.per_view.items()}
    return Evaluation(sum(r.psnr for r in results) / count, sum(r.ssim for r in results) / count, per_view,
                      sum(r.cc_psnr for r in results) / count)  # fmt: skip


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
        "sky": state.sky.state_dict() if state.sky is not None else None,
        "appearance": state.appearance.state_dict() if state.appearance is not None else None,
    }


def restore_state(payload: dict[str, Any], config: TrainConfig, extent: float, device: str,
                  sources: list[PosedImage] | None = None) -> TrainState:  # fmt: skip
    """Rebuild the state a checkpoint describes: parameters, Adam moments, statistics and random streams."""
    import torch

    params = {name: payload["params"][name].to(device).requires_grad_(True) for name in PARAM_NAMES}
    optimizer = create_optimizer(params, config, extent)
    optimizer.load_state_dict(payload["optimizer"])
    stats = DensityStats(**{key: value.to(device) for key, value in payload["stats"].items()})
    generator = torch.Generator()
    generator.set_state(payload["generator"])
    torch.set_rng_state(payload["torch_rng"])
    sky, appearance = new_sky(config), new_appearance(config, sources or [])
    for model, key in ((sky, "sky"), (appearance, "appearance")):
        if model is not None and payload.get(key) is not None:
            model.load_state_dict(payload[key])
    return TrainState(params, optimizer, stats, generator, int(payload["iteration"]), payload["psnr_initial"],
                      list(payload["view_queue"]), sky, appearance)  # fmt: skip
