"""Views of a finished run: the viewer's first camera and ``preview.png`` (a render beside its photo)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# The start of an upright scene: looking down on it from this far above the horizon, as from a drone.
START_ELEVATION_DEG = 30.0
# The part of the sparse points the start view frames: stray points far out must not shrink the scene.
FRAMED_PERCENTILES = (5.0, 95.0)
# Room around the framed points, so the scene does not touch the window's edges.
FRAMING_MARGIN = 1.1


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


def start_camera(sfm_dir: Path, georef: dict[str, Any] | None) -> dict[str, Any]:
    """Where the viewer starts: an oblique view of the whole scene when it is upright (``georef.json`` says so),
    else at the first held-out camera (SfM's own frame has no up to orbit about)."""
    if georef and georef.get("method") in ("gps", "upright"):
        import pycolmap

        return oblique_camera(pycolmap.Reconstruction(sfm_dir / "sparse" / "0"))
    return viewer_camera(sfm_dir)


def folder_view(folder: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(camera, georef) to open a folder's scene with, when it has no page of its own (a downloaded cloud job, a
    bare SOG): its ``georef.json``, and for an upright frame the oblique start of its SfM model (``sfm/sparse/0``).
    The camera is None, for the page to frame the scene, without a model or where pycolmap is not installed."""
    import json

    georef_file = folder / "georef.json"
    georef = json.loads(georef_file.read_text(encoding="utf-8")) if georef_file.is_file() else None
    model = folder / "sfm" / "sparse" / "0"
    if not georef or georef.get("method") not in ("gps", "upright") or not model.is_dir():
        return None, georef
    try:
        import pycolmap
    except ImportError:
        return None, georef
    return oblique_camera(pycolmap.Reconstruction(model)), georef


def oblique_camera(reconstruction: Any) -> dict[str, Any]:
    """A pleasant first view of an upright model (z up): the whole scene, from above the first held-out photo's
    side at ``START_ELEVATION_DEG``, with that photo's field of view; it orbits about world up (+z).

    Args:
        reconstruction: a ``pycolmap.Reconstruction`` in a z-up frame, with points and posed images.
    """
    from spaceport.train.data import split_names
    from spaceport.viewer import ViewerCamera

    points = np.array([point.xyz for point in reconstruction.points3D.values()], dtype=np.float64).reshape(-1, 3)
    images = {image.name: image for image in reconstruction.images.values() if image.has_pose}
    reference = images[split_names(list(images))[1][0]]
    if not len(points):
        points = np.array([image.projection_center() for image in images.values()])
    low, high = np.percentile(points, FRAMED_PERCENTILES, axis=0)
    target = (low + high) / 2
    radius = max(float(np.linalg.norm(high - low)) / 2, 1e-6)
    camera = reconstruction.cameras[reference.camera_id]
    fov = 2.0 * math.atan(0.5 * camera.height / camera.focal_length_y)
    # From the photo's side of the scene, so the first view resembles a picture the user took.
    side = reference.projection_center() - target
    side[2] = 0.0
    side = side / np.linalg.norm(side) if np.linalg.norm(side) > 1e-9 * radius else np.array([0.0, -1.0, 0.0])
    elevation = math.radians(START_ELEVATION_DEG)
    direction = math.cos(elevation) * side + np.array([0.0, 0.0, math.sin(elevation)])
    distance = FRAMING_MARGIN * radius / math.sin(fov / 2)
    view = ViewerCamera(position=tuple((target + distance * direction).tolist()), target=tuple(target.tolist()),
                        up=(0.0, 0.0, 1.0), fov=math.degrees(fov))  # fmt: skip
    return view.model_dump(mode="json")


def render_cloud_view(ply_path: Path, view: Any, background: tuple[float, float, float]) -> np.ndarray:
    """Render ``scene.ply`` from a camera with the CPU rasteriser; (H, W, 3) uint8."""
    from spaceport.gaussians import read_ply

    return render_cloud(read_ply(ply_path), view.viewmat, view.K, view.width, view.height, view.camera_center,
                        background)  # fmt: skip


def render_cloud(cloud: Any, viewmat: Any, intrinsics: Any, width: int, height: int, centre: Any,
                 background: tuple[float, float, float]) -> np.ndarray:  # fmt: skip
    """Render a ``GaussianCloud`` with the CPU rasteriser: ``viewmat`` (4, 4) world to camera (x right, y down,
    z forward), ``intrinsics`` (3, 3) and the camera ``centre`` (for the SH colours) as torch tensors; (H, W, 3)
    uint8."""
    import torch

    from spaceport.train.model import sh_colors
    from spaceport.train.rasterize_cpu import render

    params = {
        "means": torch.from_numpy(cloud.means),
        "quats": torch.from_numpy(cloud.quats),
        "log_scales": torch.from_numpy(cloud.log_scales),
        "opacity_logits": torch.from_numpy(cloud.opacities),
        "sh0": torch.from_numpy(cloud.sh0)[:, None, :],
        "shN": torch.from_numpy(cloud.shN),
    }
    with torch.no_grad():
        colors = sh_colors(params, cloud.sh_degree, centre)
        result = render(params["means"], params["quats"], params["log_scales"], params["opacity_logits"], colors,
                        viewmat, intrinsics, width, height, torch.tensor(background))  # fmt: skip
    return (result.image.clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def write_preview(ply_path: Path, sfm_dir: Path, target: Path, background: tuple[float, float, float]) -> None:
    """``preview.png``: the splat rendered from the first test camera, left, beside that photo, right."""
    view, _ = first_test_view(sfm_dir)
    rendered = render_cloud_view(ply_path, view, background)
    photo = (view.image.numpy() * 255 + 0.5).astype(np.uint8)
    gap = np.full((view.height, 8, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([rendered, gap, photo], axis=1)).save(target)
