"""Camera poses, and cameras that look at a target.

Poses follow COLMAP / OpenCV: ``x_cam = R x_world + t`` with the camera looking along +z, x to the right and y down,
in a world with z up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class CameraPose:
    """One photo's pose: ``x_cam = rotation @ x_world + translation`` (OpenCV / COLMAP)."""

    name: str
    rotation: list[list[float]]
    translation: list[float]
    center: list[float]


def look_at(center: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera rotation and translation for a camera at ``center`` looking at ``target`` (z up)."""
    forward = target - center
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    return rotation, -rotation @ center


def poses_looking_at(centers: np.ndarray, targets: np.ndarray) -> list[CameraPose]:
    """Named poses, in order, for cameras at ``centers`` (N, 3) each looking at its target ((N, 3) or (3,))."""
    poses = []
    for index, (center, target) in enumerate(zip(centers, np.broadcast_to(targets, centers.shape), strict=True)):
        rotation, translation = look_at(center, target)
        poses.append(CameraPose(f"frame_{index:03d}.jpg", rotation.tolist(), translation.tolist(), center.tolist()))
    return poses
