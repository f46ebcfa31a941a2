"""A tiny synthetic scene for the train stage: known Gaussians, orbiting pinhole cameras, a COLMAP model.

Ground-truth Gaussians are rendered by the CPU rasteriser into PNGs; the COLMAP model is built with
pycolmap from the exact cameras, and its 3D points are a noisy, partial sample of the Gaussians' centres
with perturbed colours, so training has real work to do (move, recolour, densify) and can be scored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image


@dataclass(frozen=True)
class SyntheticSpec:
    views: int = 16
    width: int = 64
    height: int = 48
    gaussians: int = 300
    points: int = 200
    radius: float = 4.0
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seed: int = 0


Z_UP = np.array([0.0, 0.0, 1.0])


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = Z_UP) -> np.ndarray:
    """(4, 4) world-to-camera in OpenCV axes (x right, y down, z forward)."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    viewmat = np.eye(4)
    viewmat[:3, :3] = np.stack([right, down, forward])
    viewmat[:3, 3] = -viewmat[:3, :3] @ eye
    return viewmat


def orbit_viewmats(spec: SyntheticSpec) -> list[np.ndarray]:
    """Cameras on a tilted ring around the origin, alternating height so the views are not coplanar."""
    mats = []
    for index in range(spec.views):
        angle = 2 * math.pi * index / spec.views
        height = 1.2 if index % 2 else 0.4
        eye = np.array([spec.radius * math.cos(angle), spec.radius * math.sin(angle), height])
        mats.append(look_at(eye, np.zeros(3)))
    return mats


def ground_truth(spec: SyntheticSpec) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(spec.seed)
    count = spec.gaussians
    quats = rng.normal(size=(count, 4))
    values = {
        "means": rng.uniform(-1.0, 1.0, size=(count, 3)),
        "quats": quats / np.linalg.norm(quats, axis=1, keepdims=True),
        "log_scales": np.log(rng.uniform(0.04, 0.18, size=(count, 3))),
        "opacity_logits": np.full(count, 2.0),
        "colors": rng.uniform(0.05, 0.95, size=(count, 3)),
    }
    return {name: torch.tensor(value, dtype=torch.float32) for name, value in values.items()}


def intrinsics(spec: SyntheticSpec) -> np.ndarray:
    focal = 0.9 * spec.width
    return np.array([[focal, 0, spec.width / 2], [0, focal, spec.height / 2], [0, 0, 1.0]])


def render_ground_truth(spec: SyntheticSpec, truth: dict[str, torch.Tensor], viewmat: np.ndarray) -> np.ndarray:
    from spaceport.train.rasterize_cpu import render

    with torch.no_grad():
        result = render(truth["means"], truth["quats"], truth["log_scales"], truth["opacity_logits"],
                        truth["colors"], torch.tensor(viewmat, dtype=torch.float32),
                        torch.tensor(intrinsics(spec), dtype=torch.float32), spec.width, spec.height,
                        torch.tensor(spec.background, dtype=torch.float32))  # fmt: skip
    return (result.image.clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def write_colmap_model(spec: SyntheticSpec, truth: dict[str, torch.Tensor], viewmats: list[np.ndarray],
                       sparse_dir: Path, camera_model: str = "PINHOLE") -> None:  # fmt: skip
    import pycolmap

    K = intrinsics(spec)
    params = [K[0, 0], K[1, 1], K[0, 2], K[1, 2]] if camera_model == "PINHOLE" else [K[0, 0], K[0, 2], K[1, 2], 0.0]
    reconstruction = pycolmap.Reconstruction()
    camera = pycolmap.Camera(model=camera_model, width=spec.width, height=spec.height, params=params, camera_id=1)
    reconstruction.add_camera_with_trivial_rig(camera)
    for index, viewmat in enumerate(viewmats):
        image = pycolmap.Image(name=f"view_{index:03d}.png", camera_id=1, image_id=index + 1)
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(viewmat[:3, :3]), viewmat[:3, 3])
        reconstruction.add_image_with_trivial_frame(image, pose)
    rng = np.random.default_rng(spec.seed + 1)
    chosen = rng.choice(spec.gaussians, size=min(spec.points, spec.gaussians), replace=False)
    for index in chosen:
        xyz = truth["means"][index].numpy().astype(np.float64) + rng.normal(scale=0.05, size=3)
        color = np.clip(truth["colors"][index].numpy() + rng.normal(scale=0.15, size=3), 0, 1)
        reconstruction.add_point3D(xyz, pycolmap.Track(), (color * 255).astype(np.uint8))
    sparse_dir.mkdir(parents=True, exist_ok=True)
    reconstruction.write(str(sparse_dir))


def make_synthetic_sfm(root: Path, spec: SyntheticSpec = SyntheticSpec(), camera_model: str = "PINHOLE") -> Path:
    """Write ``root/sparse/0`` and ``root/images`` as the sfm stage would; returns ``root``."""
    truth = ground_truth(spec)
    viewmats = orbit_viewmats(spec)
    (root / "images").mkdir(parents=True, exist_ok=True)
    for index, viewmat in enumerate(viewmats):
        Image.fromarray(render_ground_truth(spec, truth, viewmat)).save(root / "images" / f"view_{index:03d}.png")
    write_colmap_model(spec, truth, viewmats, root / "sparse" / "0", camera_model)
    return root
