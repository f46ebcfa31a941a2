"""Ground truth from where no photo was taken: the novel-view sweep a splat is scored on beside its held-out photos.

Held-out photos sit on the capture path, so a splat that holds up only near its photos still scores well on them.
A viewer leaves the path. The sweep takes ``SWEEP_ANCHORS`` places spread along the path, each half-way between two
neighbouring photos (turned half-way between them, looking at what their centre ray meets), and from each renders
four views:

- ``between``: the half-way pose itself, on the path;
- ``raised`` and ``lowered``: moved up and down by ``SWEEP_OFFSET`` of the distance to what it looks at (for an
  orbit, of the orbit's radius);
- ``inward``: moved that much horizontally towards what it looks at;

each still looking at the same point. The views are rendered like the photos, losslessly, into ``novel_views/``,
outside the photo folder, so structure from motion and training never see them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaceport.scene.cameras import CameraPose, look_at
from spaceport.scene.shapes import World, intersect_ground, nearest_object_hits

NOVEL_VIEWS_DIR = "novel_views"
SWEEP_ANCHORS = 4
SWEEP_OFFSET = 0.15
# Two consecutive photos farther apart than this many times the median step are not neighbours (a ring's end).
NEIGHBOUR_GAP_FACTOR = 2.0
KINDS = ("between", "raised", "lowered", "inward")


@dataclass
class NovelView:
    """One pose of the sweep: what kind it is and where it looks from."""

    kind: str
    pose: CameraPose


def neighbour_pairs(centres: np.ndarray) -> list[int]:
    """Indices i of the consecutive photos (i, i + 1) that are neighbours on the path."""
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    if not len(steps):
        return []
    limit = NEIGHBOUR_GAP_FACTOR * float(np.median(steps))
    return [index for index, step in enumerate(steps) if step <= limit]


def surface_distance(world: World, centre: np.ndarray, forward: np.ndarray) -> float | None:
    """How far along ``forward`` from ``centre`` the first surface lies (None: the ray meets only sky)."""
    origins, directions = centre[None, :], forward[None, :]
    t_ground = intersect_ground(origins, directions, world.ground_radius)
    t_backdrop = world.backdrop.intersect(origins, directions) if world.backdrop else np.full(1, np.inf)
    t_hit, _, _ = nearest_object_hits(world.objects, origins, directions, np.minimum(t_ground, t_backdrop))
    return float(t_hit[0]) if np.isfinite(t_hit[0]) else None


def _forward(pose: CameraPose) -> np.ndarray:
    return np.asarray(pose.rotation, dtype=np.float64)[2]


def _pose(name: str, centre: np.ndarray, target: np.ndarray) -> CameraPose:
    rotation, translation = look_at(centre, target)
    return CameraPose(name, rotation.tolist(), translation.tolist(), centre.tolist())


def sweep(poses: list[CameraPose], world: World) -> list[NovelView]:
    """The sweep's poses for a capture's photo ``poses`` in ``world`` (empty for fewer than two photos)."""
    centres = np.array([pose.center for pose in poses], dtype=np.float64).reshape(-1, 3)
    pairs = neighbour_pairs(centres)
    if not pairs:
        return []
    chosen = [pairs[round(k * len(pairs) / SWEEP_ANCHORS)] for k in range(min(SWEEP_ANCHORS, len(pairs)))]
    views = []
    for anchor, index in enumerate(chosen):
        centre = (centres[index] + centres[index + 1]) / 2
        forward = _forward(poses[index]) + _forward(poses[index + 1])
        forward /= np.linalg.norm(forward)
        neighbours_apart = float(np.linalg.norm(centres[index + 1] - centres[index]))
        distance = surface_distance(world, centre, forward) or 10.0 * neighbours_apart
        target = centre + distance * forward
        horizontal = target - centre
        horizontal[2] = 0.0
        reach = float(np.linalg.norm(horizontal))
        offset = SWEEP_OFFSET * (reach if reach > 1e-9 else distance)
        inward = horizontal / reach if reach > 1e-9 else np.zeros(3)
        moves = {"between": np.zeros(3), "raised": np.array([0.0, 0.0, offset]),
                 "lowered": np.array([0.0, 0.0, -offset]), "inward": offset * inward}  # fmt: skip
        for kind in KINDS:
            views.append(NovelView(kind, _pose(f"novel_{anchor:02d}_{kind}.png", centre + moves[kind], target)))
    return views
