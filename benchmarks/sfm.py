"""SfM on the sample scene: seconds per step from the stage's manifest, registration, and pose error.

Poses are compared with the scene's ``ground_truth.json`` after a similarity alignment (SfM has no absolute
scale or frame): camera-centre error as a fraction of the orbit's extent and rotation error in degrees.
Incremental (COLMAP) and global (GLOMAP in COLMAP 4) mapping run on the same photos, one after the other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import SuiteResult, Table, Target, Workspace, fmt

MAPPERS = ("incremental", "global")


def pose_errors(sparse_dir: Path, ground_truth: Path) -> dict[str, float]:
    """Centre and rotation errors of the model's cameras against the truth after a Sim(3) alignment."""
    import pycolmap

    truth = {item["name"]: item for item in json.loads(ground_truth.read_text(encoding="utf-8"))["images"]}
    model = pycolmap.Reconstruction(str(sparse_dir))
    images = sorted((image for image in model.images.values() if image.has_pose), key=lambda image: image.name)
    estimated = np.array([image.projection_center() for image in images])
    true_centres = np.array([truth[image.name]["center"] for image in images])
    truth_from_model = pycolmap.estimate_sim3d(estimated, true_centres)
    aligned = np.array([truth_from_model * point for point in estimated])
    centre_error = np.linalg.norm(aligned - true_centres, axis=1) / np.ptp(true_centres, axis=0).max()
    # A camera's rotation in the truth's frame is its cam_from_model rotation times model_from_truth.
    model_from_truth = truth_from_model.rotation.matrix().T
    angles = []
    for image in images:
        relative = np.asarray(truth[image.name]["rotation"]).T @ (image.cam_from_world().rotation.matrix()
                                                                  @ model_from_truth)  # fmt: skip
        angles.append(np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1.0, 1.0))))
    return {"centre_error_mean_pct": round(float(centre_error.mean()) * 100, 4),
            "centre_error_max_pct": round(float(centre_error.max()) * 100, 4),
            "rotation_error_mean_deg": round(float(np.mean(angles)), 4),
            "rotation_error_max_deg": round(float(np.max(angles)), 4)}  # fmt: skip


def measure_mapper(workspace: Workspace, mapper: str) -> dict[str, Any]:
    figures = workspace.run_sfm(mapper)
    output = workspace.sfm_dir(mapper)
    errors = pose_errors(output / "sparse" / "0", workspace.sample_scene() / "ground_truth.json")
    return {"mapper": mapper, "seconds": figures["seconds"], "registered_images": figures["registered_images"],
            "total_images": figures["total_images"], "points": figures["points"],
            "reprojection_error_px": figures["mean_reprojection_error_px"], **errors}  # fmt: skip


def run(workspace: Workspace) -> SuiteResult:
    workspace.sample_scene()
    results = [measure_mapper(workspace, mapper) for mapper in MAPPERS]
    steps = ("extraction", "matching", "mapping", "undistortion")
    timing = Table("Seconds per step (from the sfm manifest; 32 photos of 320x240, exhaustive matching)",
                   ["Mapper", *steps, "total"],
                   [[r["mapper"], *(fmt(r["seconds"].get(step), 2) for step in steps),
                     fmt(sum(r["seconds"].values()), 2)] for r in results])  # fmt: skip
    accuracy = Table("Registration and pose error against ground truth (after a similarity alignment)",
                     ["Mapper", "Registered", "Points", "Reprojection", "Centre error mean / max (% of extent)",
                      "Rotation error mean / max"],
                     [[r["mapper"], f"{r['registered_images']}/{r['total_images']}", f"{r['points']:,}",
                       fmt(r["reprojection_error_px"], 3, " px"),
                       f"{r['centre_error_mean_pct']:.3f} / {r['centre_error_max_pct']:.3f}",
                       f"{r['rotation_error_mean_deg']:.3f} / {r['rotation_error_max_deg']:.3f} deg"]
                      for r in results])  # fmt: skip
    incremental, global_ = results
    ratio = sum(global_["seconds"].values()) / sum(incremental["seconds"].values())
    targets = [Target(f"every photo registered ({r['mapper']})", f"{r['registered_images']}/{r['total_images']}",
                      r["registered_images"] == r["total_images"]) for r in results]  # fmt: skip
    mapping = global_["seconds"]["mapping"], incremental["seconds"]["mapping"]
    notes = [f"Global mapping's whole stage took {ratio:.2f}x the incremental one's time "
             f"(mapping step alone: {mapping[0]:.2f} s vs {mapping[1]:.2f} s)."]  # fmt: skip
    return SuiteResult("sfm", "Structure from motion", {"mappers": results}, [timing, accuracy], targets,
                       notes=notes)  # fmt: skip
