"""Compression: our SOG writer against ``splat-transform -g cpu`` on the same PLYs.

Two inputs: the sample scene trained with the fast preset (its held-out photos give a "dB lost" figure),
and a synthetic scene-like cloud at SH degree 3 (20k Gaussians with ``--quick``, 100k otherwise). Both SOGs
are decoded by splat-transform (an independent reader), rendered with the CPU rasteriser from the held-out
cameras, and scored against the original PLY's renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.common import SPLAT_TRANSFORM, SuiteResult, Table, Target, Workspace, fmt, fmt_bytes
from spaceport.compress.bench import measure_ours, splat_transform
from spaceport.compress.evaluate import orbit_cameras, psnr, synthetic_cloud
from spaceport.gaussians import read_ply, write_ply

TARGET_RATIO = 15.0
TARGET_DB_LOST = 0.5
TARGET_SPEEDUP = 5.0


@dataclass
class Scene:
    """A PLY to compress and the cameras that judge it; ``photos`` are the true images where there are any."""

    name: str
    ply: Path
    views: list[Any]
    photos: list[np.ndarray] | None = None


def trained_sample_scene(workspace: Workspace) -> Scene:
    """The sample scene trained with the CPU fast preset; its held-out views at full resolution."""
    from spaceport.train.data import load_scene
    from spaceport.train.stage import TrainPaths, train_stage

    model_dir = workspace.root / "train-fast" / "model"
    sfm_dir = workspace.sfm_dir()
    if not (model_dir / "manifest.json").is_file():
        base = model_dir.parent
        paths = TrainPaths(sfm_dir, model_dir, base / "checkpoints", base / "failure", base / "hyperparameters.json")
        train_stage(paths, {"preset": "fast", "device": "cpu"})
    views = load_scene(sfm_dir, resolution=0, device="cpu").test_views
    photos = [view.image.numpy() for view in views]
    return Scene("sample scene, trained (fast preset)", model_dir / "scene.ply", views, photos)


def synthetic_scene(workspace: Workspace, count: int) -> Scene:
    """A scene-like synthetic cloud at SH degree 3, seen by four orbit cameras at 320x240."""
    import torch

    ply = workspace.root / f"synthetic-{count}" / "scene.ply"
    if not ply.is_file():
        ply.parent.mkdir(parents=True, exist_ok=True)
        write_ply(synthetic_cloud(count, 3, seed=0), ply)
    views = []
    for camera in orbit_cameras(4, width=320, height=240):
        rotation = camera.world_to_camera()
        viewmat = np.eye(4)
        viewmat[:3, :3], viewmat[:3, 3] = rotation, -rotation @ np.asarray(camera.eye)
        K = np.array([[camera.focal, 0, camera.width / 2], [0, camera.focal, camera.height / 2], [0, 0, 1]])
        views.append(SimpleNamespace(viewmat=torch.tensor(viewmat, dtype=torch.float32),
                                     K=torch.tensor(K, dtype=torch.float32), width=camera.width,
                                     height=camera.height, camera_center=torch.tensor(camera.eye)))  # fmt: skip
    return Scene(f"synthetic, {count // 1000}k Gaussians", ply, views)


def renders(ply: Path, views: list[Any]) -> list[np.ndarray]:
    """The cloud in ``ply`` rendered from each view with the CPU rasteriser, floats in [0, 1]."""
    from spaceport.local.views import render_cloud_view

    return [render_cloud_view(ply, view, (0.0, 0.0, 0.0)).astype(np.float64) / 255 for view in views]


def mean_psnr(references: list[np.ndarray], images: list[np.ndarray]) -> float:
    return float(np.mean([psnr(reference, image) for reference, image in zip(references, images, strict=True)]))


def score(scene: Scene, sog: Path, originals: list[np.ndarray]) -> dict[str, float]:
    """Decode ``sog`` with splat-transform and compare its renders with the original's (and the photos')."""
    decoded_ply = sog.with_suffix(".decoded.ply")
    splat_transform(SPLAT_TRANSFORM, sog, decoded_ply)
    images = renders(decoded_ply, scene.views)
    scores = {"psnr_vs_ply_db": round(mean_psnr(originals, images), 2)}
    if scene.photos is not None:
        scores["psnr_vs_photos_db"] = round(mean_psnr(scene.photos, images), 3)
    return scores


def measure_scene(scene: Scene, compare: bool) -> dict[str, Any]:
    """Encode with both tools, then score both decodes; the encodes run one after the other, never together."""
    out = scene.ply.parent
    cloud = read_ply(scene.ply)
    figures: dict[str, Any] = {"scene": scene.name, "gaussians": len(cloud), "sh_degree": cloud.sh_degree,
                               "ply_bytes": scene.ply.stat().st_size}  # fmt: skip
    originals = renders(scene.ply, scene.views)
    if scene.photos is not None:
        figures["ply_psnr_vs_photos_db"] = round(mean_psnr(scene.photos, originals), 3)
    ours = measure_ours(scene.ply, out / "spaceport.sog")
    ours |= score(scene, out / "spaceport.sog", originals)
    figures["spaceport"] = ours
    if compare:
        seconds = splat_transform(SPLAT_TRANSFORM, scene.ply, out / "splat-transform.sog")
        theirs = {"seconds": round(seconds, 2), "bytes": (out / "splat-transform.sog").stat().st_size}
        theirs |= score(scene, out / "splat-transform.sog", originals)
        figures["splat_transform"] = theirs
    for tool in ("spaceport", "splat_transform"):
        if tool in figures:
            figures[tool]["ratio"] = round(figures["ply_bytes"] / figures[tool]["bytes"], 2)
            if "psnr_vs_photos_db" in figures[tool]:
                lost = figures["ply_psnr_vs_photos_db"] - figures[tool]["psnr_vs_photos_db"]
                figures[tool]["db_lost_vs_photos"] = round(lost, 3)
    return figures


def _rows(figures: dict[str, Any]) -> list[list[str]]:
    rows = []
    for tool, label in (("spaceport", "spaceport SOG"), ("splat_transform", "splat-transform -g cpu")):
        if tool not in figures:
            rows.append([figures["scene"], label, "not run (--skip)", "", "", "", ""])
            continue
        entry = figures[tool]
        rows.append([figures["scene"], label, fmt_bytes(entry["bytes"]), fmt(entry["ratio"], 1, "x"),
                     fmt(entry["seconds"], 2, " s"), fmt(entry["psnr_vs_ply_db"], 2, " dB"),
                     fmt(entry.get("db_lost_vs_photos"), 3, " dB")])  # fmt: skip
    return rows


def _targets(scenes: list[dict[str, Any]]) -> list[Target]:
    sh3 = [scene for scene in scenes if scene["sh_degree"] == 3]
    ratios = [scene["spaceport"]["ratio"] for scene in sh3]
    targets = [Target(f">= {TARGET_RATIO:g}x smaller than PLY at SH3",
                      ", ".join(f"{ratio:.1f}x" for ratio in ratios) or "no SH3 scene",
                      bool(ratios) and min(ratios) >= TARGET_RATIO)]  # fmt: skip
    lost = [scene["spaceport"]["db_lost_vs_photos"] for scene in scenes if "db_lost_vs_photos" in scene["spaceport"]]
    targets.append(Target(f"< {TARGET_DB_LOST:g} dB held-out PSNR lost (trained scene, against the photos)",
                          ", ".join(f"{value:.3f} dB" for value in lost) or "not measured",
                          max(lost) < TARGET_DB_LOST if lost else None))  # fmt: skip
    compared = [scene for scene in scenes if "splat_transform" in scene]
    if compared:
        speedups = [scene["splat_transform"]["seconds"] / scene["spaceport"]["seconds"] for scene in compared]
        smaller = all(scene["spaceport"]["bytes"] <= scene["splat_transform"]["bytes"] for scene in compared)
        size_ratios = [scene["spaceport"]["bytes"] / scene["splat_transform"]["bytes"] for scene in compared]
        sizes = ", ".join(f"{value:.2f}" for value in size_ratios)
        measured = ", ".join(f"{value:.1f}x" for value in speedups) + f" faster; size ours/theirs {sizes}"
        targets.append(Target(f">= {TARGET_SPEEDUP:g}x faster than splat-transform CPU at equal or smaller size",
                              measured, min(speedups) >= TARGET_SPEEDUP and smaller))  # fmt: skip
    else:
        targets.append(Target(f">= {TARGET_SPEEDUP:g}x faster than splat-transform CPU", "not measured", None))
    return targets


def run(workspace: Workspace, compare: bool = True) -> SuiteResult:
    """Compress both scenes with both tools and score them."""
    count = 20_000 if workspace.quick else 100_000
    scenes = [measure_scene(trained_sample_scene(workspace), compare),
              measure_scene(synthetic_scene(workspace, count), compare)]  # fmt: skip
    table = Table("Size, encode time and fidelity (decoded by splat-transform, rendered by the CPU rasteriser)",
                  ["Scene", "Encoder", "Size", "vs PLY", "Encode", "PSNR vs PLY renders", "dB lost vs photos"],
                  [row for scene in scenes for row in _rows(scene)])  # fmt: skip
    inputs = Table("Inputs", ["Scene", "Gaussians", "SH degree", "PLY"],
                   [[scene["scene"], f"{scene['gaussians']:,}", str(scene["sh_degree"]), fmt_bytes(scene["ply_bytes"])]
                    for scene in scenes])  # fmt: skip
    notes = ["Encode time is wall time from reading the PLY to the written .sog, both tools on the same cores, "
             "one after the other. Held-out views: the sample scene's test cameras (every 8th photo, 320x240); "
             "for the synthetic cloud four orbit cameras at 320x240. 'dB lost' is the drop in held-out PSNR "
             "against the photos from the trained PLY to its decoded SOG."]  # fmt: skip
    return SuiteResult("compress", "Compression: SOG writer vs splat-transform", {"scenes": scenes},
                       [inputs, table], _targets(scenes), notes=notes)  # fmt: skip
