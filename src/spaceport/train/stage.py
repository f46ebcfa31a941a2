"""The train stage: the sfm channel's COLMAP model in, ``scene.ply`` and ``manifest.json`` out.

SageMaker Training contract (see :mod:`spaceport.contract`): hyperparameters in
``input/config/hyperparameters.json``, the model in the ``sfm`` channel, outputs in ``model``,
checkpoints in ``checkpoints`` (synced to S3 for managed spot), the failure reason in ``output/failure``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spaceport.contract import TrainingLayout, begin_output, read_hyperparameters, timed, write_manifest
from spaceport.gaussians import GaussianCloud, write_ply
from spaceport.train.config import TrainConfig, build_config, fitted_to_capture

if TYPE_CHECKING:
    from spaceport.train.backend import Renderer
    from spaceport.train.data import SceneData
    from spaceport.train.progress import ProgressCallback
    from spaceport.train.trainer import TrainContext, TrainState

logger = logging.getLogger("spaceport.train")

STAGE = "train"
SFM_CHANNEL = "sfm"
SCENE_FILE = "scene.ply"


@dataclass(frozen=True)
class TrainPaths:
    """Where the stage reads and writes; by default the SageMaker layout under one root."""

    sfm_dir: Path
    model_dir: Path
    checkpoint_dir: Path
    failure_file: Path
    hyperparameters_file: Path

    @classmethod
    def from_layout(cls, layout: TrainingLayout) -> TrainPaths:
        return cls(layout.channel_dir(SFM_CHANNEL), layout.model_dir, layout.checkpoint_dir, layout.failure_file,
                   layout.hyperparameters_file)  # fmt: skip


def _start_state(scene: SceneData, ctx: TrainContext, config: TrainConfig) -> TrainState:
    """Resume from the newest checkpoint, or initialise from the SfM points and score that start."""
    from spaceport.train.trainer import evaluate, evaluation_background, initial_state, restore_state

    payload = ctx.store.load_latest() if ctx.store is not None else None
    if payload is not None:
        logger.info("resuming from the checkpoint at iteration %d", payload["iteration"])
        return restore_state(payload, config, scene.extent, config.device, scene.train_sources)
    state = initial_state(scene.points, scene.colors, config, scene.extent, scene.train_sources)
    initial = evaluate(state.params, 0, scene.test_views, ctx.renderer, evaluation_background(state, ctx))
    state.psnr_initial = initial.psnr
    return state


def _context(scene: SceneData, config: TrainConfig, paths: TrainPaths, progress: ProgressCallback | None):  # noqa: ANN202
    import torch

    from spaceport.train.backend import select_renderer
    from spaceport.train.checkpoint import CheckpointStore
    from spaceport.train.depth_prior import scene_observed_depths
    from spaceport.train.near_field import build_near_field
    from spaceport.train.progress import ProgressLog
    from spaceport.train.strategy import select_strategy
    from spaceport.train.trainer import TrainContext

    background = torch.tensor(config.background, dtype=torch.float32, device=config.device)
    return TrainContext(config, scene.train_views, select_renderer(config.device, config.absgrad), background,
                        scene.extent,
                        ProgressLog(config.log_every, progress), select_strategy(config, scene.extent),
                        CheckpointStore(paths.checkpoint_dir),
                        build_near_field(scene.train_sources, config, config.device),
                        scene_observed_depths(scene.train_views, scene.train_sources)
                        if config.depth_loss_weight > 0 or config.surface_opacity_weight > 0 else None)  # fmt: skip


def train_stage(paths: TrainPaths, overrides: dict[str, str] | None = None,
                progress: ProgressCallback | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the whole stage and return the manifest it wrote.

    Args:
        paths: inputs and outputs.
        overrides: hyperparameters that take precedence over the file's (the CLI's explicit flags).
        progress: called with each progress line's figures (iteration, loss, psnr, gaussians).

    Raises:
        StageError: bad hyperparameters or input; the message is the job's failure reason.
    """
    from spaceport.train.backend import configure_threads
    from spaceport.train.data import load_scene
    from spaceport.train.memory import check_fits
    from spaceport.train.progress import logger as progress_logger
    from spaceport.train.trainer import active_sh_degree, train

    config = build_config(read_hyperparameters(paths.hyperparameters_file) | (overrides or {}))
    logger.info("config: %s", config.to_dict())
    # Before any image loads: a run the device cannot hold fails now, naming what to change, not an hour in.
    memory = check_fits(config, paths.sfm_dir)
    logger.info("memory model: about %.2f GiB on %s", memory.total_bytes / 2**30, config.device)
    configure_threads(config.device)
    seconds: dict[str, float] = {}
    begin_output(paths.model_dir)
    with timed(seconds, "load"):
        scene = load_scene(paths.sfm_dir, config.resolution, config.device)
        config = fitted_to_capture(config, len(scene.train_views))
        ctx = _context(scene, config, paths, progress)
    with timed(seconds, "initialise"):
        state = _start_state(scene, ctx, config)
    with timed(seconds, "train"):
        train(state, ctx)
    degree = active_sh_degree(config, state.iteration)
    with timed(seconds, "evaluate"):
        scores = _score_held_out(state, scene, ctx, degree)
    progress_logger.info("evaluation psnr_test=%.2f ssim_test=%.4f psnr_initial=%.2f views=%d", scores["psnr_test"],
                         scores["ssim_test"], state.psnr_initial, len(scene.test_views))  # fmt: skip
    with timed(seconds, "export"):
        cloud, sky_shell = exported_cloud(state, scene, degree, ctx.renderer)
        write_ply(cloud, paths.model_dir / SCENE_FILE)
    figures = _figures(config, scene, state, degree, seconds) | scores | {"sky_shell": sky_shell}
    figures["memory_model_bytes"] = memory.total_bytes
    if config.device == "cuda":
        import torch

        # This process's high-water marks: tensors (allocated) and the caching allocator's hold (reserved).
        figures |= {"peak_gpu_memory_bytes": torch.cuda.max_memory_allocated(),
                    "peak_gpu_reserved_bytes": torch.cuda.max_memory_reserved()}  # fmt: skip
    return write_manifest(paths.model_dir, STAGE, figures)


def exported_cloud(state: TrainState, scene: SceneData, degree: int,
                   renderer: Renderer) -> tuple[GaussianCloud, dict[str, Any] | None]:  # fmt: skip
    """The Gaussians as the PLY carries them, with the learned sky baked behind them as a far shell (what the
    shell is, for the manifest; None without a sky model). ``renderer`` renders the training views to find which
    directions of the sky they saw."""
    import numpy as np

    from spaceport.gaussians import concatenate
    from spaceport.train.background import (
        SHELL_GAUSSIANS,
        bake_sky_shell,
        fibonacci_directions,
        inside_shell,
        shell_radius,
    )
    from spaceport.train.model import to_cloud
    from spaceport.train.sky_coverage import seen_share, sky_sight

    cloud = to_cloud(state.params, degree)
    if state.sky is None:
        return cloud, None
    centre = np.mean([view.camera_center.cpu().numpy() for view in scene.train_views], axis=0).astype(np.float64)
    radius = shell_radius(cloud.means, centre, scene.extent)
    inside = inside_shell(cloud.means, centre, radius)
    kept = cloud.subset(np.flatnonzero(inside))
    sight = sky_sight(state.params, scene.train_views, renderer, fibonacci_directions(SHELL_GAUSSIANS))
    shell = bake_sky_shell(state.sky, centre, radius, cloud.shN.shape[1], sight=sight)
    description = {"gaussians": len(shell), "first": len(kept), "centre": [round(float(v), 6) for v in centre],
                   "radius": round(radius, 6), "sh_degree": state.sky.degree,
                   "beyond_shell_dropped": int((~inside).sum()),
                   "seen_share": round(seen_share(sight), 4)}  # fmt: skip
    return concatenate([kept, shell]), description


def _score_held_out(state: TrainState, scene: SceneData, ctx: TrainContext, degree: int) -> dict[str, Any]:
    """Held-out PSNR / SSIM at the training resolution and at the photos' full size, and haze and floaters."""
    from spaceport.train.floaters import measure_floaters
    from spaceport.train.trainer import evaluate, evaluate_full_size, evaluation_background, held_out_gains

    background = evaluation_background(state, ctx)
    gains = held_out_gains(state, scene.train_sources, scene.full_size_test)
    evaluation = evaluate(state.params, degree, scene.test_views, ctx.renderer, background, gains)
    full_size = evaluation
    scores: dict[str, Any] = {}
    if _full_size_differs(scene):
        full_size = evaluate_full_size(state.params, degree, scene.full_size_test, ctx.renderer, background, gains)
        scores["psnr_test_full_size_ceiling"] = round(upscaling_ceiling(scene), 3)
    observed = [source.observed_points for source in scene.full_size_test]
    floaters = measure_floaters(state.params, scene.test_views, observed, ctx.renderer)
    return scores | {
        # At the training resolution (resolution.evaluate), as 3DGS scores; the *_full_size ones at the photos'.
        "psnr_test": round(evaluation.psnr, 3),
        "psnr_test_worst": round(evaluation.worst, 3),
        "psnr_test_median": round(evaluation.median, 3),
        "psnr_test_colour_corrected": round(evaluation.cc_psnr, 3),
        "ssim_test": round(evaluation.ssim, 4),
        "psnr_per_view": {name: round(value, 3) for name, value in evaluation.per_view.items()},
        # A model trained at the training resolution, rendered at the photos' size: it cannot hold finer detail than
        # it saw, so the ceiling beside it is the photo itself shrunk to the training size and enlarged back.
        "psnr_test_full_size": round(full_size.psnr, 3),
        "ssim_test_full_size": round(full_size.ssim, 4),
        "held_out_floaters": floaters.as_dict(),
    }


def upscaling_ceiling(scene: SceneData) -> float:
    """Mean PSNR of the held-out photos against themselves shrunk to the training size and enlarged back."""
    import numpy as np
    from PIL import Image

    scores = []
    for view, source in zip(scene.test_views, scene.full_size_test, strict=True):
        with Image.open(source.path) as opened:
            photo = opened.convert("RGB")
        small = photo.resize((view.width, view.height), Image.Resampling.LANCZOS)
        back = np.asarray(small.resize(photo.size, Image.Resampling.LANCZOS), np.float64) / 255
        mse = float(((back - np.asarray(photo, np.float64) / 255) ** 2).mean())
        scores.append(100.0 if mse <= 1e-10 else -10 * np.log10(mse))
    return float(np.mean(scores))


def _full_size_differs(scene: SceneData) -> bool:
    return any((view.width, view.height) != (source.width, source.height)
               for view, source in zip(scene.test_views, scene.full_size_test, strict=True))  # fmt: skip


def _figures(config: TrainConfig, scene: SceneData, state: TrainState, degree: int,
             seconds: dict[str, float]) -> dict[str, Any]:  # fmt: skip
    train_view, test_source = scene.train_views[0], scene.full_size_test[0]
    return {
        "iterations": state.iteration,
        "num_gaussians": len(state.params["means"]),
        "strategy": config.strategy,
        "psnr_initial": round(state.psnr_initial, 3),
        "test_views": [view.name for view in scene.test_views],
        "train_views": len(scene.train_views),
        "background": list(config.background),
        "background_mode": config.background_mode,
        "sh_degree": degree,
        "device": config.device,
        "preset": config.preset,
        "resolution": {
            "train": [train_view.width, train_view.height],
            "evaluate": [scene.test_views[0].width, scene.test_views[0].height],
            "evaluate_full_size": [test_source.width, test_source.height],
        },  # fmt: skip
        "scene_file": SCENE_FILE,
        "seconds": seconds,
    }
