"""The novel-view sweep scored: a synthetic scene's ground truth from off the capture path, in the SfM model's frame.

The generator renders the sweep in its own world frame (:mod:`spaceport.scene.novel_views`); structure from motion
chose another (upright and metric, or its own). The similarity between the two is fitted to the photos' camera
centres, known in both, and carries each sweep pose into the model's frame. Each sweep view keeps the generator's
exact intrinsics (the images are its renders, uncropped by SfM's undistortion), shrunk to the training resolution.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from spaceport.train.data import CameraView


@dataclass(frozen=True)
class Similarity:
    """``x_model = scale * rotation @ x_truth + translation``."""

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * points @ self.rotation.T + self.translation


def mean_rotation(rotations: list[np.ndarray]) -> np.ndarray:
    """The rotation nearest the sum of ``rotations`` (the chordal L2 mean)."""
    u, _, vt = np.linalg.svd(np.sum(rotations, axis=0))
    sign = np.eye(3)
    sign[2, 2] = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ sign @ vt


def truth_to_model(sfm_dir: Path, truth: dict) -> Similarity:
    """The similarity from the generator's world to the SfM model's frame, fitted on the registered photos.

    The rotation comes from the photos' orientations (each gives ``R_model^T R_truth``), the scale and offset from
    their centres: centres alone leave the rotation about a nearly straight path (the facade walk) loose by over a
    degree, which at 320 px is several pixels of brick.
    """
    import pycolmap

    reconstruction = pycolmap.Reconstruction(str(sfm_dir / "sparse" / "0"))
    model = {image.name: image for image in reconstruction.images.values() if image.has_pose}
    items = [item for item in truth["images"] if item["name"] in model]
    return similarity_from_poses(
        [np.asarray(item["rotation"], dtype=np.float64) for item in items],
        np.array([item["center"] for item in items], dtype=np.float64),
        [model[item["name"]].cam_from_world().rotation.matrix() for item in items],
        np.array([model[item["name"]].projection_center() for item in items], dtype=np.float64),
    )


def similarity_from_poses(truth_rotations: list[np.ndarray], truth_centres: np.ndarray,
                          model_rotations: list[np.ndarray], model_centres: np.ndarray) -> Similarity:  # fmt: skip
    """The similarity taking cameras posed in one frame onto the same cameras posed in another: rotation from their
    orientations (``R_model = R_truth @ rotation.T`` for each), then scale and offset from their centres."""
    rotation = mean_rotation([model.T @ truth for truth, model in zip(truth_rotations, model_rotations, strict=True)])
    source = truth_centres @ rotation.T
    centred_s, centred_t = source - source.mean(axis=0), model_centres - model_centres.mean(axis=0)
    scale = float((centred_s * centred_t).sum() / (centred_s**2).sum())
    return Similarity(scale, rotation, model_centres.mean(axis=0) - scale * source.mean(axis=0))


def sweep_views(sfm_dir: Path, scene_root: Path, resolution: int, device: str) -> tuple[list[CameraView], list[str]]:
    """The sweep's views in the model's frame at ``resolution``, and each one's kind (between, raised, ...)."""
    from spaceport.scene.novel_views import NOVEL_VIEWS_DIR
    from spaceport.train.data import PosedImage, load_view

    truth = json.loads((scene_root / "ground_truth.json").read_text(encoding="utf-8"))
    similarity = truth_to_model(sfm_dir, truth)
    camera = truth["camera"]
    K = np.array([[camera["fx"], 0.0, camera["cx"]], [0.0, camera["fy"], camera["cy"]], [0.0, 0.0, 1.0]])
    views, kinds = [], []
    for item in truth.get("novel_views", []):
        rotation = np.asarray(item["rotation"], dtype=np.float64) @ similarity.rotation.T
        centre = similarity.apply(np.asarray(item["center"], dtype=np.float64)[None, :])[0]
        viewmat = np.eye(4)
        viewmat[:3, :3], viewmat[:3, 3] = rotation, -rotation @ centre
        source = PosedImage(item["name"], scene_root / NOVEL_VIEWS_DIR / item["name"], K, viewmat, camera["width"],
                            camera["height"], np.zeros((0, 3), np.float32))  # fmt: skip
        views.append(load_view(source, resolution, device))
        kinds.append(item["kind"])
    return views, kinds
