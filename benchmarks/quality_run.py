"""One quality run: the train stage's loop with the CPU default preset on one scene, and every score the suite reads.

``python -m benchmarks.quality_run SFM_DIR OVERRIDES_JSON OUT_PLY [SCENE_ROOT]`` trains in a fresh process and
prints its figures as one JSON line (``--score-ply PLY SFM_DIR RESOLUTION [SCENE_ROOT]`` scores a PLY that another
version of the code trained, over black, the same way):

- the held-out curve every ``EVALUATE_EVERY`` steps (clock paused while scoring) and the final held-out scores at
  the training resolution: mean, worst and median view, colour-corrected mean, each view;
- the full-size score beside its ceiling (the photo shrunk to the training size and enlarged back);
- haze and floaters in front of the held-out photos;
- the novel-view sweep, when ``SCENE_ROOT`` holds a synthetic scene's ground truth (``novel_views``);
- the opacity outside the scene's bounds along the viewer's opening view.

The trained scene is written to ``OUT_PLY`` as the train stage exports it (the sky shell included).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

EVALUATE_EVERY = 100


def _scores(evaluation: Any) -> dict[str, Any]:
    return {"psnr": round(evaluation.psnr, 3), "ssim": round(evaluation.ssim, 4),
            "worst": round(evaluation.worst, 3), "median": round(evaluation.median, 3),
            "cc_psnr": round(evaluation.cc_psnr, 3),
            "per_view": {name: round(value, 3) for name, value in evaluation.per_view.items()}}  # fmt: skip


def score_sweep(params: dict, degree: int, sfm_dir: Path, scene_root: Path, resolution: int, renderer: Any,
                background: Any) -> dict[str, Any] | None:  # fmt: skip
    """The novel-view sweep's scores, overall and per kind of pose; None for a scene without one."""
    from benchmarks.novel_views import sweep_views
    from spaceport.train.trainer import evaluate

    truth = scene_root / "ground_truth.json"
    if not truth.is_file() or "novel_views" not in json.loads(truth.read_text(encoding="utf-8")):
        return None
    views, kinds = sweep_views(sfm_dir, scene_root, resolution, "cpu")
    overall = evaluate(params, degree, views, renderer, background)
    by_kind = {}
    for kind in dict.fromkeys(kinds):
        chosen = [view for view, view_kind in zip(views, kinds, strict=True) if view_kind == kind]
        result = evaluate(params, degree, chosen, renderer, background)
        by_kind[kind] = {"mean": round(result.psnr, 3), "worst": round(result.worst, 3)}
    return _scores(overall) | {"by_kind": by_kind}


def score_opening_view(params: dict, sfm_dir: Path, points: Any, renderer: Any) -> dict[str, Any]:
    from benchmarks.opening_view import camera_view, opening_camera, outside_opacity, scene_bounds

    camera = opening_camera(sfm_dir)
    opacity = outside_opacity(params, camera_view(camera), scene_bounds(points), renderer)
    return {"camera": camera, "outside_opacity": round(opacity, 4)}


def train_and_score(sfm_dir: Path, overrides: dict[str, str], ply: Path | None,
                    scene_root: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Train with the CPU default preset plus ``overrides`` and score the result every way the suite reports."""
    from benchmarks.training import cpu_trainer
    from spaceport.gaussians import write_ply
    from spaceport.train.config import apply_overrides, preset_config
    from spaceport.train.stage import exported_cloud
    from spaceport.train.trainer import (
        active_sh_degree,
        evaluate,
        evaluation_background,
        held_out_gains,
        next_view,
        train_step,
    )

    config = apply_overrides(preset_config("default", "cpu"), overrides)
    scene, ctx, state = cpu_trainer(sfm_dir, config)
    config = ctx.config  # fitted to the capture (the SH degree by photo count)

    def score() -> dict[str, Any]:
        result = evaluate(state.params, active_sh_degree(config, state.iteration), scene.test_views, ctx.renderer,
                          evaluation_background(state, ctx))  # fmt: skip
        return {"step": state.iteration, "seconds": round(elapsed, 1), "psnr": round(result.psnr, 3),
                "ssim": round(result.ssim, 4), "worst": round(result.worst, 3),
                "gaussians": len(state.params["means"])}  # fmt: skip

    elapsed = 0.0
    curve = [score()]
    while state.iteration < config.iterations:
        started = time.perf_counter()
        train_step(state, ctx.views[next_view(state, len(ctx.views))], ctx)
        elapsed += time.perf_counter() - started
        if state.iteration % EVALUATE_EVERY == 0 or state.iteration == config.iterations:
            curve.append(score())
    degree = active_sh_degree(config, state.iteration)
    gains = held_out_gains(state, scene.train_sources, scene.full_size_test)
    figures = final_scores(state.params, degree, evaluation_background(state, ctx), scene, sfm_dir, scene_root, gains)
    sky_shell = None
    if ply is not None:
        cloud, sky_shell = exported_cloud(state, scene, degree, ctx.renderer)
        write_ply(cloud, ply)
    return {"curve": curve, "train_seconds": round(elapsed, 1), "strategy": config.strategy,
            "background_mode": config.background_mode, "overrides": overrides, "sky_shell": sky_shell, **figures,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # fmt: skip


def final_scores(params: dict, degree: int, background: Any, scene: Any, sfm_dir: Path, scene_root: Path | None,
                 gains: dict[str, float] | None = None) -> dict[str, Any]:  # fmt: skip
    """Every score of a trained splat: held-out (training and full size), floaters, sweep and opening view."""
    from spaceport.train.backend import select_renderer
    from spaceport.train.floaters import measure_floaters
    from spaceport.train.stage import upscaling_ceiling
    from spaceport.train.trainer import evaluate, evaluate_full_size

    renderer = select_renderer("cpu")
    held_out = evaluate(params, degree, scene.test_views, renderer, background, gains)
    full_size = evaluate_full_size(params, degree, scene.full_size_test, renderer, background, gains)
    floaters = measure_floaters(params, scene.test_views, [s.observed_points for s in scene.full_size_test], renderer)
    view, source = scene.test_views[0], scene.full_size_test[0]
    sweep = score_sweep(params, degree, sfm_dir, scene_root, max(view.width, view.height), renderer, background) \
        if scene_root is not None else None  # fmt: skip
    return {"resolution": [view.width, view.height], "held_out": _scores(held_out),
            "full_size": {"psnr": round(full_size.psnr, 3), "ssim": round(full_size.ssim, 4),
                          "ceiling": round(upscaling_ceiling(scene), 3), "resolution": [source.width, source.height]},
            "floaters": floaters.as_dict(), "sweep": sweep,
            "opening_view": score_opening_view(params, sfm_dir, scene.points, renderer),
            "train_views": len(scene.train_views), "test_views": len(scene.test_views)}  # fmt: skip


def score_ply(ply: Path, sfm_dir: Path, resolution: int, scene_root: Path | None) -> dict[str, Any]:
    """``final_scores`` of a PLY written by any version of the train stage, rendered over black."""
    import torch

    from spaceport.gaussians import read_ply
    from spaceport.train.background import FixedBackground
    from spaceport.train.data import load_scene

    cloud = read_ply(ply)
    params = {"means": torch.from_numpy(cloud.means), "quats": torch.from_numpy(cloud.quats),
              "log_scales": torch.from_numpy(cloud.log_scales), "opacity_logits": torch.from_numpy(cloud.opacities),
              "sh0": torch.from_numpy(cloud.sh0)[:, None, :], "shN": torch.from_numpy(cloud.shN)}  # fmt: skip
    scene = load_scene(sfm_dir, resolution, "cpu")
    return final_scores(params, cloud.sh_degree, FixedBackground(torch.zeros(3)), scene, sfm_dir, scene_root)


def main() -> None:
    if sys.argv[1] == "--score-ply":
        ply, sfm_dir, resolution = Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(score_ply(ply, sfm_dir, resolution, Path(sys.argv[5]) if len(sys.argv) > 5 else None)))
        return
    sfm_dir, overrides = Path(sys.argv[1]), json.loads(sys.argv[2])
    ply = Path(sys.argv[3]) if len(sys.argv) > 3 and sys.argv[3] != "-" else None
    scene_root = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    figures = train_and_score(sfm_dir, {key: str(value) for key, value in overrides.items()}, ply, scene_root)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
