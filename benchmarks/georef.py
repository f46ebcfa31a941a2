"""Georeferencing: how close the frame the sfm stage delivers is to the truth, on every generator layout.

Each layout of the sample-scene generator is rendered (the sample orbit is the workspace's own) and goes through
the sfm stage, which registers it: by GPS when its photos carry EXIF GPS (the drone double orbit does, as real
drones do, with receiver noise and one deliberately wrong fix), else upright from the cameras. The output is then
compared with the scene's ground truth:

- with GPS: the RMS of the camera centres against their GPS fixes (the fit's residual over the fixes used) and
  against the true camera positions, in metres; the largest centre error as a share of the orbit's extent; the
  verticality error (the angle between the model's +z and the true vertical, seen through every camera's
  orientation); whether the wrong fix was named.
- without GPS: the upright error, the same angle.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import SuiteResult, Table, Target, Workspace, fmt

# (layout, title): the generator's layouts, the captures the quality suite trains on.
SCENES = (
    ("orbit", "sample orbit (32 photos)"),
    ("drone", "drone double orbit (36 photos, GPS)"),
    ("facade", "facade walk (32 photos)"),
    ("object", "close object orbit (32 photos)"),
)
MAX_CENTRE_ERROR_PCT, MAX_VERTICAL_DEG, MAX_UPRIGHT_DEG = 1.0, 1.0, 3.0


def scene_dir(workspace: Workspace, layout: str) -> Path:
    """The layout's rendered capture (made once per work folder; the orbit is the workspace's sample scene)."""
    if layout == "orbit":
        return workspace.sample_scene()
    root = workspace.root / "georef" / layout / "scene"
    if not (root / "ground_truth.json").is_file():
        from spaceport.scene.generator import render_sample_scene
        from spaceport.scene.layouts import SceneConfig

        render_sample_scene(root, SceneConfig(layout=layout))
    return root


def tilt_deg(model: Any, truth: dict[str, Any]) -> float:
    """Angle between the model's +z and the true vertical, averaged over the cameras' orientations."""
    images = {image.name: image for image in model.images.values() if image.has_pose}
    true_ups = [images[item["name"]].cam_from_world().rotation.matrix().T @ (np.array(item["rotation"])[:, 2])
                for item in truth["images"] if item["name"] in images]  # fmt: skip
    mean = np.mean(true_ups, axis=0)
    return math.degrees(math.acos(min(1.0, float(mean[2] / np.linalg.norm(mean)))))


def gps_errors(model: Any, truth: dict[str, Any], georef: dict[str, Any]) -> dict[str, Any]:
    """Camera centres against their true positions, in georef.json's east-north-up frame."""
    import pycolmap

    origin = georef["origin"]
    converter = pycolmap.GPSTransform(pycolmap.GPSTransformEllipsoid.WGS84)
    true_positions = {item["name"]: item["true"] for item in truth["gps"]["images"]}
    centres = {image.name: image.projection_center() for image in model.images.values() if image.has_pose}
    names = [name for name in true_positions if name in centres]
    expected = converter.ellipsoid_to_enu(np.array([true_positions[name] for name in names]), origin["latitude"],
                                          origin["longitude"], origin["altitude_m"])  # fmt: skip
    errors = np.linalg.norm(np.array([centres[name] for name in names]) - expected, axis=1)
    rejected = [item["name"] for item in georef["photos"]["rejected"]]
    return {
        "rms_vs_gps_m": georef["rms_m"],
        "rms_vs_truth_m": round(math.sqrt(float((errors**2).mean())), 4),
        "max_error_pct_of_extent": round(100 * float(errors.max()) / float(np.ptp(expected, axis=0).max()), 4),
        "photos_used": georef["photos"]["used"],
        "rejected": rejected,
        "wrong_fix_named": rejected == [truth["gps"]["wrong_fix"]],
        "scale_m_per_unit": georef["scale"],
    }


def measure(workspace: Workspace, layout: str, title: str) -> dict[str, Any]:
    """The sfm stage on one capture, and its delivered frame against the truth."""
    import pycolmap

    from spaceport.sfm.stage import SfmConfig, run_sfm

    root = scene_dir(workspace, layout)
    base = workspace.root / "georef" / layout
    result = run_sfm(root / "images", base / "output", base / "work", SfmConfig())
    truth = json.loads((root / "ground_truth.json").read_text(encoding="utf-8"))
    georef = json.loads((base / "output" / "georef.json").read_text(encoding="utf-8"))
    model = pycolmap.Reconstruction(base / "output" / "sparse" / "0")
    figures = {"layout": layout, "title": title, "gps": "gps" in truth, "method": georef["method"],
               "registered": f"{result.figures['registered_images']}/{result.figures['total_images']}",
               "vertical_error_deg": round(tilt_deg(model, truth), 4),
               "georeferencing_s": result.figures["seconds"]["georeferencing"],
               "warnings": georef["warnings"]}  # fmt: skip
    if georef["method"] == "gps":
        figures |= gps_errors(model, truth, georef)
    return figures


def targets(results: list[dict[str, Any]]) -> list[Target]:
    listed = []
    for r in results:
        if r["gps"]:
            located = r["method"] == "gps"
            listed += [
                Target(f"{r['layout']} (GPS): camera centres within {MAX_CENTRE_ERROR_PCT:g} % of the orbit's extent",
                       f"{fmt(r.get('max_error_pct_of_extent'), 3)} % (largest)",
                       located and r["max_error_pct_of_extent"] < MAX_CENTRE_ERROR_PCT),
                Target(f"{r['layout']} (GPS): z within {MAX_VERTICAL_DEG:g} deg of the true vertical",
                       f"{r['vertical_error_deg']:.3f} deg", located and r["vertical_error_deg"] < MAX_VERTICAL_DEG),
                Target(f"{r['layout']} (GPS): the wrong fix named", ", ".join(r.get("rejected", [])) or "none",
                       located and r["wrong_fix_named"]),
            ]  # fmt: skip
        else:
            error = r["vertical_error_deg"]
            listed.append(Target(f"{r['layout']} (no GPS): upright within {MAX_UPRIGHT_DEG:g} deg",
                                 f"{error:.3f} deg", error < MAX_UPRIGHT_DEG))  # fmt: skip
    return listed


def run(workspace: Workspace) -> SuiteResult:
    results = [measure(workspace, layout, title) for layout, title in SCENES]
    with_gps = Table(
        "Scenes with GPS: the fit, and the delivered frame against the truth (east-north-up metres)",
        ["Scene", "Frame", "Photos used / rejected", "RMS vs GPS fixes", "RMS vs true positions",
         "Largest centre error", "Verticality error"],
        [[r["title"], r["method"], f"{r.get('photos_used', 0)} / {', '.join(r.get('rejected', [])) or 'none'}",
          fmt(r.get("rms_vs_gps_m"), 3, " m"), fmt(r.get("rms_vs_truth_m"), 3, " m"),
          f"{fmt(r.get('max_error_pct_of_extent'), 3)} % of the extent", f"{r['vertical_error_deg']:.3f} deg"]
         for r in results if r["gps"]],
    )  # fmt: skip
    without_gps = Table(
        "Scenes without GPS: upright from the cameras (scale arbitrary)",
        ["Scene", "Frame", "Registered", "Upright error"],
        [[r["title"], r["method"], r["registered"], f"{r['vertical_error_deg']:.3f} deg"]
         for r in results if not r["gps"]],
    )  # fmt: skip
    notes = [
        "The verticality / upright error is the angle between the delivered model's +z and the true vertical, "
        "seen through every registered camera's orientation (averaged). GPS noise: 0.35 m horizontal, 0.5 m "
        "vertical per fix (independent), one fix about 40 m off; the drone's world unit is 4 m.",
    ]
    return SuiteResult("georef", "Georeferencing: upright, metric, on Earth", {"scenes": results},
                       [with_gps, without_gps], targets(results), notes=notes)  # fmt: skip
