"""Training quality across scenes: the CPU default preset on captures it was and was not tuned on, judged where a
viewer looks, not only where the photos were taken.

Each scene goes through the sfm stage, then the train stage's own loop in a fresh process
(:mod:`benchmarks.quality_run`), which scores the held-out photos every 100 steps (clock paused) and at the end:
mean, worst and median view, the novel-view sweep of a synthetic scene (poses off the capture path that the
generator renders: :mod:`spaceport.scene.novel_views`), haze and floaters, and the opacity outside the scene's bounds
along the viewer's opening view. The same scene is trained with the code of ``BEFORE_REF`` (the release before the
sky model and the near-camera rules) in the same suite run, so the training times compare side by side, and its PLY
is scored the same way. Both are compressed to SOG and photographed in our viewer's opening view in headless Chromium.

Scenes: the bundled sample (the one the presets were tuned on), four synthetic captures unlike it (a drone double
orbit, a one-sided facade walk, a close object orbit with a textured backdrop, a low ring looking past the ground's
edge into a featureless sky) and two real photo captures prepared by script (``benchmarks/real_capture.py``;
``--real-source KEY=PATH`` points at a local copy of a capture's repository).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, SuiteResult, Workspace, described, fingerprint
from benchmarks.plot import LinePlot, save
from benchmarks.quality_looked import LOOKED_AT
from benchmarks.quality_report import BEFORE_REF, DROP_FROM_STEP, RESET_GRACE_STEPS, tables, targets
from benchmarks.quality_run import EVALUATE_EVERY
from benchmarks.report import HERE, rewrite_section


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
            render_sample_scene(root, SceneConfig(layout=layout), novel_views=True)
        return root / "images"

    return prepare


def _real(key: str, source: Path | None) -> Callable[[Path], Path]:
    def prepare(root: Path) -> Path:
        from benchmarks.real_capture import CAPTURES
        from benchmarks.real_capture import prepare as prepare_capture

        return prepare_capture(root, CAPTURES[key], source=source)

    return prepare


def scenes(real_sources: dict[str, Path], include_real: bool) -> list[QualityScene]:
    """The suite's scenes; ``real_sources`` maps a real capture's key to a local copy of its repository."""
    listed = [
        QualityScene("sample", "sample (drone orbit, 32 photos; tuned on)", _synthetic("orbit"), tuned_on=True),
        QualityScene("drone", "drone double orbit (36 photos)", _synthetic("drone")),
        QualityScene("facade", "facade walk, one-sided (32 photos)", _synthetic("facade")),
        QualityScene("object", "close object orbit, textured backdrop (32 photos)", _synthetic("object")),
        QualityScene(
            "skyline", "low ring looking into the sky past the ground's edge (32 photos)", _synthetic("skyline")
        ),
    ]
    if include_real:
        from benchmarks.real_capture import CAPTURES

        for key, capture in CAPTURES.items():
            listed.append(
                QualityScene(key, f"real photos: {capture.title}", _real(key, real_sources.get(key)), real=True)
            )
    return listed


def reset_steps(overrides: dict[str, str]) -> list[int]:
    """The scheduled opacity resets of the CPU default preset (plus ``overrides``)."""
    from spaceport.train.config import apply_overrides, preset_config
    from spaceport.train.strategy import resets_allowed

    config = apply_overrides(preset_config("default", "cpu"), overrides)
    if config.strategy != "adc":
        return []
    every = max(config.opacity_reset_every, 1)
    return [step for step in range(every, config.densify_until, every) if resets_allowed(config, step)]


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
    return {
        "largest_drop_db": round(worst_drop, 3),
        "largest_drop_at": worst_at,
        "best_db": best,
        "final_below_best_db": round(best - curve[-1]["psnr"], 3),
    }


def compression_loss(ply: Path, sfm_dir: Path, resolution: int, sog: Path) -> dict[str, Any]:
    """Held-out PSNR against the photos of the PLY and of its SOG (decoded), at the training resolution."""
    import numpy as np

    from spaceport.compress.bench import measure_ours
    from spaceport.compress.decode import read_sog
    from spaceport.gaussians import write_ply
    from spaceport.local.views import render_cloud_view
    from spaceport.train.data import load_scene

    encoded = measure_ours(ply, sog)
    decoded_ply = sog.with_name("decoded.ply")
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
    return {
        "psnr_ply": round(before, 3),
        "psnr_sog": round(after, 3),
        "loss_db": round(before - after, 3),
        "sog_bytes": encoded["bytes"],
        "encode_s": encoded["seconds"],
    }


def _python(module: str, *args: str, code: Path = ROOT) -> dict[str, Any]:
    """Run ``python -m module args`` in ``code`` (its ``src`` first on the path); its last stdout line as JSON."""
    import os

    env = {**os.environ, "PYTHONPATH": str(code / "src"), "GLOG_minloglevel": "2"}
    output = subprocess.run(
        [sys.executable, "-m", module, *args], check=True, capture_output=True, text=True, cwd=code, env=env
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def before_code(work: Path) -> Path:
    """The code at ``BEFORE_REF`` (``src`` and ``benchmarks``), extracted once into ``work``."""
    code = work / f"code-{BEFORE_REF}"
    if not (code / "src").is_dir():
        code.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "archive", BEFORE_REF, "src", "benchmarks"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as bundle:
            bundle.extractall(code, filter="data")
    return code


def train_both(workspace: Workspace, sfm_dir: Path, capture: Path, base: Path, real: bool) -> dict[str, Any]:
    """Today's code, then the code at ``BEFORE_REF``, on one scene: each one's figures and PLY, scored alike."""
    ground_truth = [] if real else [str(capture)]  # the novel-view sweep of a synthetic scene
    after_ply, before_ply = base / "after" / "scene.ply", base / "before" / "scene.ply"
    for ply in (after_ply, before_ply):
        ply.parent.mkdir(parents=True, exist_ok=True)
    after = _python("benchmarks.quality_run", str(sfm_dir), "{}", str(after_ply), *ground_truth)
    trained = _python("benchmarks.quality", str(sfm_dir), "{}", str(before_ply), code=before_code(workspace.root))
    before = _python(
        "benchmarks.quality_run",
        "--score-ply",
        str(before_ply),
        str(sfm_dir),
        str(max(after["resolution"])),
        *ground_truth,
    )
    before |= {"train_seconds": trained["train_seconds"], "curve": trained["curve"], "ply": str(before_ply)}
    return {"after": after | {"ply": str(after_ply)}, "before": before}


def opening_screenshots(sfm_dir: Path, plys: dict[str, Path], scratch: Path, target: Path) -> None:
    """The viewer's opening view of each PLY (compressed to SOG, as a run delivers it), side by side, labelled."""
    import numpy as np
    from PIL import Image, ImageDraw

    from benchmarks.opening_view import opening_camera, screenshot
    from spaceport.compress.bench import measure_ours
    from spaceport.sfm.georef import GEOREF_FILE, read_georef
    from spaceport.viewer import write_viewer

    panels = []
    for label, ply in plys.items():
        folder = scratch / f"viewer-{label}"
        folder.mkdir(parents=True, exist_ok=True)
        measure_ours(ply, folder / "scene.sog")
        write_viewer(folder, opening_camera(sfm_dir), read_georef(sfm_dir / GEOREF_FILE))
        screenshot(folder, folder / "opening.png")
        with Image.open(folder / "opening.png") as shot:
            panel = shot.convert("RGB")
        ImageDraw.Draw(panel).text((8, 8), label, fill=(255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0))
        panels.append(np.asarray(panel))
        panels.append(np.full((panel.height, 8, 3), 255, np.uint8))
    Image.fromarray(np.concatenate(panels[:-1], axis=1)).save(target)


def write_preview(plys: dict[str, Path], sfm_dir: Path, resolution: int, target: Path) -> None:
    """The first held-out photo (middle) between the renders of the PLYs (left: before, right: after)."""
    import numpy as np
    from PIL import Image

    from spaceport.local.views import render_cloud_view
    from spaceport.train.data import load_scene

    view = load_scene(sfm_dir, resolution, "cpu").test_views[0]
    photo = (view.image.numpy() * 255 + 0.5).astype(np.uint8)
    gap = np.full((view.height, 8, 3), 255, np.uint8)
    before, after = (render_cloud_view(plys[label], view, (0.0, 0.0, 0.0)) for label in ("before", "after"))
    Image.fromarray(np.concatenate([before, gap, photo, gap, after], axis=1)).save(target)


def opening_plot(key: str) -> str:
    return f"quality_opening_{key}.png"


def preview_plot(key: str) -> str:
    return f"quality_{key}_preview.png"


def measure_scene(workspace: Workspace, scene: QualityScene) -> dict[str, Any]:
    from spaceport.sfm.stage import SfmConfig, run_sfm

    base = workspace.root / "quality" / scene.key
    images = scene.prepare(base / "capture")
    sfm_out = base / "sfm"
    if not (sfm_out / "manifest.json").is_file():
        run_sfm(images, sfm_out, base / "sfm-work", SfmConfig())
    sfm = json.loads((sfm_out / "manifest.json").read_text(encoding="utf-8"))
    runs = train_both(workspace, sfm_out, base / "capture", base, scene.real)
    after = runs["after"]
    resolution = max(after["resolution"])
    plys = {label: Path(runs[label]["ply"]) for label in ("before", "after")}
    opening_screenshots(sfm_out, plys, base, workspace.plots_dir / opening_plot(scene.key))
    if scene.real:
        write_preview(plys, sfm_out, resolution, workspace.plots_dir / preview_plot(scene.key))
    return {
        "key": scene.key,
        "title": scene.title,
        "tuned_on": scene.tuned_on,
        "real": scene.real,
        "photos": sfm.get("total_images"),
        "registered": sfm.get("registered_images"),
        **after,
        "before": runs["before"],
        "stability": stability(after["curve"], reset_steps({})),
        "compression": compression_loss(plys["after"], sfm_out, resolution, base / "after" / "scene.sog"),
    }


def _plots(measured: list[dict[str, Any]], plots_dir: Path) -> list[str]:
    series = {
        scene["key"]: [(point["step"], point["psnr"]) for point in scene["curve"] if point["step"] > 0]
        for scene in measured
    }
    save(
        LinePlot(f"Held-out PSNR every {EVALUATE_EVERY} steps (CPU default preset)", "step", "test PSNR", series),
        plots_dir / "quality_psnr.png",
    )
    names = ["quality_psnr.png"] + [opening_plot(scene["key"]) for scene in measured]
    return names + [preview_plot(scene["key"]) for scene in measured if scene["real"]]


def screenshots(scene: dict[str, Any]) -> list[str]:
    """The scene's opening view, and its preview when it is a real capture."""
    return [opening_plot(scene["key"])] + ([preview_plot(scene["key"])] if scene["real"] else [])


def redistributable(scene: dict[str, Any]) -> bool:
    """Whether images of the scene may be kept in this repository: a real capture's photos (and renders made from
    them) only where its repository grants a licence."""
    from benchmarks.real_capture import CAPTURES

    return not scene["real"] or scene["key"] not in CAPTURES or CAPTURES[scene["key"]].licence is not None


def set_aside(scene: dict[str, Any], plots_dir: Path, folder: Path) -> dict[str, str]:
    """The fingerprints of the scene's screenshots; those of a capture without a licence moved out of the
    repository's plots into ``folder`` (its work folder), so that they are looked at but never committed."""
    kept = {}
    for name in screenshots(scene):
        path = plots_dir / name
        if path.is_file():
            kept[name] = fingerprint(path)
            if not redistributable(scene):
                folder.mkdir(parents=True, exist_ok=True)
                path.replace(folder / name)
    return kept


def run(
    workspace: Workspace,
    real_sources: dict[str, Path] | None = None,
    only: set[str] | None = None,
    earlier: dict[str, Any] | None = None,
) -> SuiteResult:
    """Train every scene with today's code and the code before, and report quality where the viewer looks.

    ``only`` names the scenes to measure again (``--quality-scenes``); the others keep their figures from
    ``earlier`` (the last results.json), each with the date it was measured.
    """
    kept = {scene["key"]: scene for scene in (earlier or {}).get("scenes", [])}
    measured, notes = [], []
    for scene in scenes(real_sources or {}, include_real=True):
        if only is not None and scene.key not in only:
            if scene.key in kept:
                measured.append(kept[scene.key])
            continue
        try:
            figures = measure_scene(workspace, scene) | {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
            figures["screenshots"] = set_aside(figures, workspace.plots_dir, workspace.root / "quality" / scene.key)
            measured.append(figures)
        except Exception as error:  # a capture that cannot be prepared (no network, no source) is reported, not fatal
            if not scene.real:
                raise
            notes.append(f"The real capture {scene.key} was not measured: {error}")
    if only is not None:
        notes.append(
            "Scenes measured at different times: "
            + ", ".join(f"{scene['key']} {scene.get('measured', 'earlier')}" for scene in measured)
            + "."
        )
    return report({"scenes": measured, "run_notes": notes}, workspace.plots_dir)


def report(figures: dict[str, Any], plots_dir: Path = HERE / "plots") -> SuiteResult:
    """The suite's section from its figures: targets, tables, plots, and what was seen in each screenshot and
    preview (``quality_looked.LOOKED_AT``, for the bytes it was written about; a new run's are not looked at yet)."""
    measured = figures["scenes"]
    plots = _plots(measured, plots_dir)
    withheld = {name for scene in measured if not redistributable(scene) for name in screenshots(scene)}
    notes = list(figures.get("run_notes", [])) + [
        "Scores use the held-out photos (every 8th) and, for synthetic scenes, the 16 poses of the novel-view sweep, "
        "at the training resolution; 'Training' counts training steps only, clock paused while scoring. 'Floaters': "
        "SfM points the held-out photos observed with something rendered nearer than 0.8 of their depth. 'Opening: "
        "opacity outside': mean accumulated opacity, over the viewer's opening view, of the Gaussians centred "
        "outside the box holding every SfM point; the sky shell "
        "is not counted. 'SOG loss': held-out PSNR of the trained PLY minus that of its SOG.",
        "quality_opening_<scene>.png: our viewer's opening view in headless Chromium, the code before (left) and "
        "today's (right), each from its own SOG. quality_<real scene>_preview.png: the first held-out photo "
        "(middle) between the renders before (left) and after (right).",
        "What the screenshots and previews show:",
    ]
    recorded = {name: value for scene in measured for name, value in scene.get("screenshots", {}).items()}
    for plot in plots[1:]:
        path = plots_dir / plot
        shot = recorded.get(plot) or (fingerprint(path) if path.is_file() else None)
        seen = described(LOOKED_AT, plot, shot)
        line = f"- `{plot}`: {seen or 'not looked at yet (a new run: describe it in quality_looked.py)'}"
        if plot in withheld:
            line += (
                " (Not kept here: the capture's repository grants no licence to redistribute its photos or renders "
                "made from them.)"
            )
        notes.append(line)
    return SuiteResult(
        "quality",
        "Training quality across scenes, where the viewer looks",
        {"scenes": measured, "run_notes": figures.get("run_notes", [])},
        tables(measured),
        targets(measured),
        [plot for plot in plots if plot not in withheld],
        notes,
    )


def report_again() -> None:
    """Write the section again from results.json, after describing its screenshots in ``quality_looked``."""
    rewrite_section("quality", report)
