"""Training quality across scenes: the CPU default preset on captures it was and was not tuned on.

Each scene goes through the sfm stage, then the train stage's own loop with the CPU ``default`` preset in a fresh
process (``python -m benchmarks.quality SFM_DIR OVERRIDES_JSON OUT_PLY`` prints its figures as JSON), scored on
the held-out views every 100 steps at the training resolution with the clock paused while scoring. Then the
trained PLY is compressed to SOG and both are scored against the held-out photos.

Scenes: the bundled sample (the one the presets were tuned on), three synthetic captures unlike it (a drone double
orbit, a one-sided facade walk, a close object orbit with a textured backdrop), and a real photo capture when one
is prepared (``benchmarks/real_capture.py``; ``--real-source`` points at its repository). The real capture is
also trained with the code of ``BASELINE_REF`` (the release before this strategy) for a before/after figure.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, SuiteResult, Table, Target, Workspace, fmt
from benchmarks.plot import LinePlot, save

EVALUATE_EVERY = 100
TARGET_SAMPLE_DB, TARGET_OTHER_DB = 31.5, 28.0
# Today's default took ~400 s of training on the sample (32 photos at 320x240, two cores).
TARGET_TRAIN_SECONDS = 400.0
MAX_DROP_DB, DROP_FROM_STEP, RESET_GRACE_STEPS = 1.5, 500, 100
MAX_FINAL_BELOW_BEST_DB = 0.3
MAX_COMPRESSION_LOSS_DB = 0.5
# The last commit with 3DGS's density control and size pruning by default, for the real capture's "before".
BASELINE_REF = "47ab6ca"


@dataclass(frozen=True)
class QualityScene:
    """A capture to train on: ``prepare`` returns its photo folder (made once per work folder)."""

    key: str
    title: str
    prepare: Callable[[Path], Path]
    tuned_on: bool = False
    real: bool = False


def _synthetic(layout: str) -> Callable[[Path], Path]:
    def prepare(root: Path) -> Path:
        from spaceport.scene.generator import render_sample_scene
        from spaceport.scene.layouts import SceneConfig

        if not (root / "ground_truth.json").is_file():
            render_sample_scene(root, SceneConfig(layout=layout))
        return root / "images"

    return prepare


def _real(source: Path | None) -> Callable[[Path], Path]:
    def prepare(root: Path) -> Path:
        from benchmarks.real_capture import prepare as prepare_capture

        return prepare_capture(root, source=source)

    return prepare


def scenes(real_source: Path | None, include_real: bool) -> list[QualityScene]:
    listed = [
        QualityScene("sample", "sample (drone orbit, 32 photos; tuned on)", _synthetic("orbit"), tuned_on=True),
        QualityScene("drone", "drone double orbit (36 photos)", _synthetic("drone")),
        QualityScene("facade", "facade walk, one-sided (32 photos)", _synthetic("facade")),
        QualityScene("object", "close object orbit, textured backdrop (32 photos)", _synthetic("object")),
    ]
    if include_real:
        from benchmarks.real_capture import TITLE

        listed.append(QualityScene("real", f"real photos: {TITLE}", _real(real_source), real=True))
    return listed


def _reset_steps(config: Any) -> list[int]:
    from spaceport.train.strategy import resets_allowed

    if config.strategy != "adc":
        return []
    every = max(config.opacity_reset_every, 1)
    return [step for step in range(every, config.densify_until, every) if resets_allowed(config, step)]


def train_with_curve(sfm_dir: Path, overrides: dict[str, str], ply: Path | None) -> dict[str, Any]:
    """The train stage's loop with the CPU default preset (plus ``overrides``), scored every 100 steps."""
    from benchmarks.training import cpu_trainer
    from spaceport.gaussians import write_ply
    from spaceport.train.config import apply_overrides, preset_config
    from spaceport.train.floaters import measure_floaters
    from spaceport.train.model import to_cloud
    from spaceport.train.trainer import active_sh_degree, evaluate, evaluate_full_size, next_view, train_step

    config = apply_overrides(preset_config("default", "cpu"), overrides)
    scene, ctx, state = cpu_trainer(sfm_dir, config)
    background = ctx.background

    def score() -> dict[str, Any]:
        result = evaluate(state.params, active_sh_degree(config, state.iteration), scene.test_views, ctx.renderer,
                          background)  # fmt: skip
        return {"step": state.iteration, "seconds": round(elapsed, 1), "psnr": round(result.psnr, 3),
                "ssim": round(result.ssim, 4), "gaussians": len(state.params["means"])}  # fmt: skip

    elapsed = 0.0
    curve = [score()]
    while state.iteration < config.iterations:
        started = time.perf_counter()
        train_step(state, ctx.views[next_view(state, len(ctx.views))], ctx)
        elapsed += time.perf_counter() - started
        if state.iteration % EVALUATE_EVERY == 0 or state.iteration == config.iterations:
            curve.append(score())
    degree = active_sh_degree(config, state.iteration)
    full_size = evaluate_full_size(state.params, degree, scene.full_size_test, ctx.renderer, background)
    floaters = measure_floaters(state.params, scene.test_views, [s.observed_points for s in scene.full_size_test],
                                ctx.renderer)  # fmt: skip
    if ply is not None:
        write_ply(to_cloud(state.params, degree), ply)
    view = scene.test_views[0]
    return {"curve": curve, "train_seconds": round(elapsed, 1), "resets": _reset_steps(config),
            "strategy": config.strategy, "resolution": [view.width, view.height],
            "full_size": {"psnr": round(full_size.psnr, 3), "ssim": round(full_size.ssim, 4),
                          "resolution": [scene.full_size_test[0].width, scene.full_size_test[0].height]},
            "floaters": floaters.as_dict(), "train_views": len(scene.train_views),
            "test_views": len(scene.test_views),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}  # fmt: skip


def stability(curve: list[dict[str, Any]], resets: list[int]) -> dict[str, Any]:
    """The largest drop between consecutive scores after step 500 (outside a reset's grace) and final vs best."""
    worst_drop, worst_at = 0.0, None
    for previous, current in zip(curve, curve[1:], strict=False):
        if current["step"] <= DROP_FROM_STEP:
            continue
        if any(reset <= current["step"] <= reset + RESET_GRACE_STEPS for reset in resets):
            continue
        drop = previous["psnr"] - current["psnr"]
        if drop > worst_drop:
            worst_drop, worst_at = drop, current["step"]
    best = max(point["psnr"] for point in curve)
    return {"largest_drop_db": round(worst_drop, 3), "largest_drop_at": worst_at,
            "best_db": best, "final_below_best_db": round(best - curve[-1]["psnr"], 3)}  # fmt: skip


def compression_loss(ply: Path, sfm_dir: Path, resolution: int, scratch: Path) -> dict[str, Any]:
    """Held-out PSNR against the photos of the PLY and of its SOG (decoded), at the training resolution."""
    import numpy as np

    from spaceport.compress.bench import measure_ours
    from spaceport.compress.decode import read_sog
    from spaceport.gaussians import write_ply
    from spaceport.local.views import render_cloud_view
    from spaceport.train.data import load_scene

    sog = scratch / "scene.sog"
    encoded = measure_ours(ply, sog)
    decoded_ply = scratch / "decoded.ply"
    write_ply(read_sog(sog), decoded_ply)
    views = load_scene(sfm_dir, resolution, "cpu").test_views

    def mean_psnr(path: Path) -> float:
        scores = []
        for view in views:
            image = render_cloud_view(path, view, (0.0, 0.0, 0.0)).astype(np.float64) / 255
            mse = float(((image - view.image.numpy()) ** 2).mean())
            scores.append(-10 * np.log10(max(mse, 1e-12)))
        return float(np.mean(scores))

    before, after = mean_psnr(ply), mean_psnr(decoded_ply)
    return {"psnr_ply": round(before, 3), "psnr_sog": round(after, 3), "loss_db": round(before - after, 3),
            "sog_bytes": encoded["bytes"], "encode_s": encoded["seconds"]}  # fmt: skip


def baseline_run(sfm_dir: Path, out: Path) -> dict[str, Any]:
    """Train with the code at ``BASELINE_REF`` (its own default preset), then score its PLY like ours."""
    ply = out / "model" / "scene.ply"
    if not ply.is_file():
        source = out / "code"
        source.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", BASELINE_REF, "src"], cwd=ROOT, check=True,
                                 capture_output=True).stdout  # fmt: skip
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as bundle:
            bundle.extractall(source, filter="data")
        command = [sys.executable, "-c", "import sys; from spaceport.cli import main; sys.exit(main(sys.argv[1:]))",
                   "train", "--ml-root", str(out / "ml"), "--sfm", str(sfm_dir), "--model-dir", str(out / "model"),
                   "--preset", "default", "--device", "cpu"]  # fmt: skip
        env = {**__import__("os").environ, "PYTHONPATH": str(source / "src")}
        subprocess.run(command, check=True, env=env, cwd=out, capture_output=True)
    manifest = json.loads((out / "model" / "manifest.json").read_text(encoding="utf-8"))
    return {"ref": BASELINE_REF, "ply": str(ply), "gaussians": manifest.get("num_gaussians"),
            "train_seconds": manifest.get("seconds", {}).get("train")}  # fmt: skip


def score_ply(ply: Path, sfm_dir: Path, resolution: int) -> dict[str, float]:
    """Held-out PSNR and SSIM of a PLY at a training resolution, with the CPU rasteriser."""
    import numpy as np
    import torch

    from spaceport.local.views import render_cloud_view
    from spaceport.train.data import load_scene
    from spaceport.train.losses import psnr, ssim

    views = load_scene(sfm_dir, resolution, "cpu").test_views
    scores, structures = [], []
    for view in views:
        image = torch.from_numpy(render_cloud_view(ply, view, (0.0, 0.0, 0.0)).astype(np.float32) / 255)
        scores.append(psnr(image, view.image))
        structures.append(float(ssim(image, view.image)))
    return {"psnr": round(float(np.mean(scores)), 3), "ssim": round(float(np.mean(structures)), 4)}


REAL_PREVIEW = "quality_real_preview.png"


def write_before_after_preview(before: Path, after: Path, sfm_dir: Path, resolution: int, target: Path) -> None:
    """The first held-out photo between the render of the code before (left) and after (right), at ``resolution``."""
    import numpy as np
    from PIL import Image

    from spaceport.local.views import render_cloud_view
    from spaceport.train.data import load_scene

    view = load_scene(sfm_dir, resolution, "cpu").test_views[0]
    photo = (view.image.numpy() * 255 + 0.5).astype(np.uint8)
    gap = np.full((view.height, 8, 3), 255, np.uint8)
    panels = [render_cloud_view(before, view, (0.0, 0.0, 0.0)), gap, photo, gap,
              render_cloud_view(after, view, (0.0, 0.0, 0.0))]  # fmt: skip
    Image.fromarray(np.concatenate(panels, axis=1)).save(target)


def measure_scene(workspace: Workspace, scene: QualityScene) -> dict[str, Any]:
    from spaceport.sfm.stage import SfmConfig, run_sfm
    from spaceport.train.config import preset_config

    base = workspace.root / "quality" / scene.key
    images = scene.prepare(base / "capture")
    sfm_out = base / "sfm"
    if not (sfm_out / "manifest.json").is_file():
        run_sfm(images, sfm_out, base / "sfm-work", SfmConfig())
    sfm = json.loads((sfm_out / "manifest.json").read_text(encoding="utf-8"))
    ply = base / "scene.ply"
    command = [sys.executable, "-m", "benchmarks.quality", str(sfm_out), "{}", str(ply)]
    output = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    trained = json.loads(output.strip().splitlines()[-1])
    resolution = preset_config("default", "cpu").resolution
    result = {"key": scene.key, "title": scene.title, "tuned_on": scene.tuned_on, "real": scene.real,
              "photos": sfm.get("total_images"), "registered": sfm.get("registered_images"), **trained,
              "stability": stability(trained["curve"], trained["resets"]),
              "compression": compression_loss(ply, sfm_out, resolution, base)}  # fmt: skip
    if scene.real:
        baseline = baseline_run(sfm_out, base / "baseline")
        result["baseline"] = baseline | score_ply(Path(baseline["ply"]), sfm_out, resolution)
        write_before_after_preview(Path(baseline["ply"]), ply, sfm_out, resolution, workspace.plots_dir / REAL_PREVIEW)
    return result


def _targets(measured: list[dict[str, Any]]) -> list[Target]:
    targets = []
    for scene in measured:
        final = scene["curve"][-1]
        goal = TARGET_SAMPLE_DB if scene["tuned_on"] else TARGET_OTHER_DB
        if not scene["real"]:
            targets.append(Target(f"{scene['key']}: >= {goal:g} dB held-out (default preset, CPU)",
                                  f"{final['psnr']:.2f} dB", final["psnr"] >= goal))  # fmt: skip
            targets.append(
                Target(
                    f"{scene['key']}: training within ~{TARGET_TRAIN_SECONDS:.0f} s",
                    f"{scene['train_seconds']:.0f} s",
                    scene["train_seconds"] <= TARGET_TRAIN_SECONDS,
                )
            )
        drop = scene["stability"]
        targets.append(
            Target(
                f"{scene['key']}: no drop > {MAX_DROP_DB:g} dB between scores after step "
                f"{DROP_FROM_STEP} (outside {RESET_GRACE_STEPS} steps after a reset)",
                f"{drop['largest_drop_db']:.2f} dB",
                drop["largest_drop_db"] <= MAX_DROP_DB,
            )
        )
        targets.append(
            Target(
                f"{scene['key']}: final within {MAX_FINAL_BELOW_BEST_DB:g} dB of the best score",
                f"{drop['final_below_best_db']:.2f} dB below",
                drop["final_below_best_db"] <= MAX_FINAL_BELOW_BEST_DB,
            )
        )
        loss = scene["compression"]["loss_db"]
        targets.append(Target(f"{scene['key']}: SOG loses <= {MAX_COMPRESSION_LOSS_DB:g} dB held-out",
                              f"{loss:.3f} dB", loss <= MAX_COMPRESSION_LOSS_DB))  # fmt: skip
    return targets


def _tables(measured: list[dict[str, Any]]) -> list[Table]:
    rows, haze_rows = [], []
    for scene in measured:
        final, full = scene["curve"][-1], scene["full_size"]
        size = "x".join(map(str, scene["resolution"]))
        full_size = "x".join(map(str, full["resolution"]))
        rows.append([scene["title"], f"{scene['registered']}/{scene['photos']}", fmt(final["psnr"], 2, " dB"),
                     fmt(final["ssim"], 3), size, f"{fmt(full['psnr'], 2, ' dB')} at {full_size}",
                     f"{final['gaussians']:,}", fmt(scene["train_seconds"], 0, " s"),
                     fmt(scene["compression"]["loss_db"], 3, " dB")])  # fmt: skip
        haze = scene["floaters"]
        haze_rows.append([scene["title"], fmt(haze["alpha_mean"], 3), fmt(100 * haze["hazy_fraction"], 1, " %"),
                          fmt(100 * haze["floater_fraction"], 1, " %"), fmt(haze["depth_error_median"], 3),
                          str(haze["points"])])  # fmt: skip
    tables = [
        Table("Held-out figures after the CPU default preset (scored at the training resolution; the full-size "
              "figure beside it)", ["Scene", "Registered", "PSNR", "SSIM", "Scored at", "Full size", "Gaussians",
                                    "Training", "SOG loss"], rows),
        Table("Haze and floaters on the held-out views (opacity of the render; SfM points the photo observed with "
              "something rendered nearer than 0.8 of their depth)", ["Scene", "Mean opacity", "Pixels < 0.9 opaque",
                                                                     "Points behind a floater", "Median depth error",
                                                                     "Points"], haze_rows),
    ]  # fmt: skip
    before_after = [scene for scene in measured if "baseline" in scene]
    if before_after:
        tables.append(Table("Real capture: before (the code at " + BASELINE_REF + ") and after, scored the same way",
                            ["Scene", "Before PSNR", "Before SSIM", "Before Gaussians", "After PSNR", "After SSIM",
                             "After Gaussians"],
                            [[s["title"], fmt(s["baseline"]["psnr"], 2, " dB"), fmt(s["baseline"]["ssim"], 3),
                              f"{s['baseline']['gaussians']:,}", fmt(s["curve"][-1]["psnr"], 2, " dB"),
                              fmt(s["curve"][-1]["ssim"], 3), f"{s['curve'][-1]['gaussians']:,}"]
                             for s in before_after]))  # fmt: skip
    return tables


def _plots(measured: list[dict[str, Any]], plots_dir: Path) -> list[str]:
    names = {"psnr": "quality_psnr.png", "ssim": "quality_ssim.png"}
    for metric, name in names.items():
        series = {scene["key"]: [(point["step"], point[metric]) for point in scene["curve"] if point["step"] > 0]
                  for scene in measured}  # fmt: skip
        save(LinePlot(f"Held-out {metric.upper()} every {EVALUATE_EVERY} steps (CPU default preset)", "step",
                      f"test {metric.upper()}", series), plots_dir / name)  # fmt: skip
    previews = [REAL_PREVIEW] if any("baseline" in scene for scene in measured) else []
    return list(names.values()) + previews


def run(workspace: Workspace, real_source: Path | None = None, only: set[str] | None = None,
        earlier: dict[str, Any] | None = None) -> SuiteResult:  # fmt: skip
    """Train every scene with the CPU default preset and report quality, stability, haze and compression loss.

    ``only`` names the scenes to measure again (``--quality-scenes``); the others keep their figures from
    ``earlier`` (the last results.json), each with the date it was measured.
    """
    kept = {scene["key"]: scene for scene in (earlier or {}).get("scenes", [])}
    measured, notes = [], []
    for scene in scenes(real_source, include_real=True):
        if only is not None and scene.key not in only:
            if scene.key in kept:
                measured.append(kept[scene.key])
            continue
        try:
            measured.append(
                measure_scene(workspace, scene) | {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
            )
        except Exception as error:  # a capture that cannot be prepared (no network, no source) is reported, not fatal
            if not scene.real:
                raise
            notes.append(f"The real capture was not measured: {error}")
    if only is not None:
        notes.append(
            "Scenes measured at different times: "
            + ", ".join(f"{scene['key']} {scene.get('measured', 'earlier')}" for scene in measured)
            + "."
        )
    notes += ["Scores every 100 steps use the held-out views (every 8th photo) at the training resolution, with the "
              "clock paused; 'Training' counts training steps only. 'SOG loss' is the held-out PSNR of the trained "
              "PLY minus that of its SOG, both rendered by the CPU rasteriser against the photos."]  # fmt: skip
    resets = sorted({step for scene in measured for step in scene.get("resets", [])})
    if resets:
        steps = ", ".join(map(str, resets))
        notes.append(f"The dips at step {steps} are the scheduled opacity resets: that score is taken just after every "
                     "opacity is lowered to at most 0.01; the next, 100 steps later, has recovered.")  # fmt: skip
    if any("baseline" in scene for scene in measured):
        notes.append(f"{REAL_PREVIEW}: the real capture's first held-out photo (middle) between the render of the "
                     f"code at {BASELINE_REF} (left) and today's (right), at the training resolution.")  # fmt: skip
    return SuiteResult("quality", "Training quality across scenes", {"scenes": measured}, _tables(measured),
                       _targets(measured), _plots(measured, workspace.plots_dir), notes)  # fmt: skip


def main() -> None:
    sfm_dir, overrides = Path(sys.argv[1]), json.loads(sys.argv[2])
    ply = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    print(json.dumps(train_with_curve(sfm_dir, {key: str(value) for key, value in overrides.items()}, ply)))


if __name__ == "__main__":
    main()
