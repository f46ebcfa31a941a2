"""A small structured splat scene for the viewer tests, and the camera that looks at it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from spaceport.gaussians import SH_C0, GaussianCloud, write_ply

REPO_ROOT = Path(__file__).resolve().parents[2]
SPLAT_TRANSFORM = REPO_ROOT / "node_modules" / ".bin" / "splat-transform"

# Regions of the sphere and their colours. In COLMAP's camera frame y points down and x right, so from the
# camera below the top of the image is red, its lower left blue and its lower right green.
RED, BLUE, GREEN = (0.9, 0.1, 0.1), (0.1, 0.2, 0.9), (0.1, 0.85, 0.15)


def sphere_cloud(count: int = 4000, radius: float = 1.0, seed: int = 0) -> GaussianCloud:
    """Gaussians on a sphere at the origin, coloured by region (see RED, BLUE, GREEN)."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    colours = np.where(directions[:, 1:2] < 0, RED, np.where(directions[:, 0:1] < 0, BLUE, GREEN))
    # Flat discs tangent to the sphere, big enough to overlap into a closed surface.
    spacing = radius * np.sqrt(4 * np.pi / count)
    log_scales = np.log(np.tile([spacing * 0.8, spacing * 0.8, spacing * 0.1], (count, 1)))
    quats = _rotations_from_z(directions)
    return GaussianCloud(
        means=directions * radius,
        sh0=(colours - 0.5) / SH_C0,
        shN=np.zeros((count, 0, 3)),
        opacities=np.full(count, 3.0),  # logit: sigmoid(3) = 0.95
        log_scales=log_scales,
        quats=quats,
    )


def _rotations_from_z(normals: np.ndarray) -> np.ndarray:
    """Quaternions (w, x, y, z) that turn the local z axis onto each unit normal (the disc's thin axis)."""
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, normals)
    cos = normals @ z
    # Half-angle form: q = (1 + cos, axis), normalised; the antipodal case gets a rotation about x.
    quats = np.concatenate([1.0 + cos[:, None], axis], axis=1)
    antipodal = quats[:, 0] < 1e-6
    quats[antipodal] = [0.0, 1.0, 0.0, 0.0]
    return quats / np.linalg.norm(quats, axis=1, keepdims=True)


def write_scene_sog(out_dir: Path, cloud: GaussianCloud) -> Path:
    """Write ``cloud`` as ``out_dir/scene.sog`` through splat-transform (the reference SOG writer).

    Raises:
        FileNotFoundError: the npm tools are not installed.
        subprocess.CalledProcessError: splat-transform failed.
    """
    if not SPLAT_TRANSFORM.exists() or shutil.which("node") is None:
        raise FileNotFoundError(f"{SPLAT_TRANSFORM} (or node) is missing: run `make setup`")
    ply = out_dir / "scene.ply"
    sog = out_dir / "scene.sog"
    write_ply(cloud, ply)
    # -g cpu: no GPU here; with SH degree 0 there is no k-means, so this takes about a second.
    subprocess.run(
        [str(SPLAT_TRANSFORM), "-w", "-g", "cpu", str(ply), str(sog)], check=True, capture_output=True, timeout=120
    )
    return sog
