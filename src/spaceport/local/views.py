"""Views of a finished run: the viewer's first camera and ``preview.png`` (a render beside its photo)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def first_test_view(sfm_dir: Path) -> Any:
    """The first held-out view at the model's full resolution (the one the test PSNR starts with)."""
    from spaceport.train.data import load_scene

    scene = load_scene(sfm_dir, resolution=0, device="cpu")
    return (scene.test_views or scene.train_views)[0], scene


def viewer_camera(sfm_dir: Path) -> dict[str, Any]:
    """Where the viewer starts: at the first test camera, orbiting the middle of the SfM points."""
    from spaceport.viewer import camera_from_pose

    view, scene = first_test_view(sfm_dir)
    viewmat = view.viewmat.numpy().astype(np.float64)
    rotation, translation = viewmat[:3, :3], viewmat[:3, 3]
    centre_in_camera = rotation @ np.median(scene.points, axis=0) + translation
    distance = max(float(centre_in_camera[2]), 1e-3)
    return camera_from_pose(rotation, translation, float(view.K[1, 1]), view.height, distance)


def render_cloud_view(ply_path: Path, view: Any, background: tuple[float, float, float]) -> np.ndarray:
    """Render ``scene.ply`` from a camera with the CPU rasteriser; (H, W, 3) uint8."""
    import torch

    from spaceport.gaussians import read_ply
    from spaceport.train.model import sh_colors
    from spaceport.train.rasterize_cpu import render

    cloud = read_ply(ply_path)
    params = {
        "means": torch.from_numpy(cloud.means),
        "quats": torch.from_numpy(cloud.quats),
        "log_scales": torch.from_numpy(cloud.log_scales),
        "opacity_logits": torch.from_numpy(cloud.opacities),
        "sh0": torch.from_numpy(cloud.sh0)[:, None, :],
        "shN": torch.from_numpy(cloud.shN),
    }
    with torch.no_grad():
        colors = sh_colors(params, cloud.sh_degree, view.camera_center)
        result = render(params["means"], params["quats"], params["log_scales"], params["opacity_logits"], colors,
                        view.viewmat, view.K, view.width, view.height, torch.tensor(background))  # fmt: skip
    return (result.image.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def write_preview(ply_path: Path, sfm_dir: Path, target: Path, background: tuple[float, float, float]) -> None:
    """``preview.png``: the splat rendered from the first test camera, left, beside that photo, right."""
    view, _ = first_test_view(sfm_dir)
    rendered = render_cloud_view(ply_path, view, background)
    photo = (view.image.numpy() * 255 + 0.5).astype(np.uint8)
    gap = np.full((view.height, 8, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([rendered, gap, photo], axis=1)).save(target)
