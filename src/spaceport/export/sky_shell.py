"""The sky shell at the end of a trained ``scene.ply``, and the scene without it.

The train stage appends the learned sky to the splat as a shell of far, flat, opaque Gaussians (its manifest's
``sky_shell``: ``first``, ``gaussians``, ``centre``, ``radius``), so that splat viewers, which have no sky, show one.
On the globe the shell must go: the globe has its own sky, and a sphere ten times the scene's size would swell every
bounding volume and make the coarsest level of detail a ball of sky. glTF and SPZ leave it out too by default (see
``spaceport.export.writer``).

Where the shell starts, in order of trust:

1. what the caller says (``spaceport export --sky-shell N`` or ``none``);
2. the train stage's manifest (``manifest.json`` beside the PLY, in the compress stage's input) or a run's
   ``report.json`` (``train.sky_shell``);
3. the shape itself: the last ``SHELL_GAUSSIANS`` Gaussians lie on one sphere (to a part in a thousand of its
   radius) that holds every other Gaussian.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.gaussians import GaussianCloud
from spaceport.train.background import SHELL_GAUSSIANS

# How far (as a fraction of the radius) the tail's Gaussians may lie from one sphere and still be called a shell:
# the shell is baked exactly on it, and float32 rounds a coordinate by about 1e-7 of its size.
SPHERE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class SkyShell:
    """Where a cloud's sky shell starts, and how that was found.

    Attributes:
        first: index of the first shell Gaussian (the cloud's length when there is none).
        gaussians: how many shell Gaussians follow (0: none).
        source: ``option``, ``manifest``, ``report``, ``detected`` or ``none found``.
    """

    first: int
    gaussians: int
    source: str

    def describe(self) -> str:
        """One line for the user: where the shell is and how that was found."""
        how = {
            "option": "as --sky-shell says",
            "manifest": "per the train stage's manifest",
            "report": "per the run's report.json",
            "detected": "found by its shape: the last ones lie on one sphere around all the others",
            "none found": "none found: no record, and the last Gaussians are not on one sphere around the rest",
        }[self.source]
        if not self.gaussians:
            return f"sky shell: none ({how})" if self.source != "none found" else f"sky shell: {how}"
        return f"sky shell: Gaussians {self.first} to {self.first + self.gaussians - 1} ({how})"

    def to_json(self) -> dict[str, Any]:
        return {"first": self.first, "gaussians": self.gaussians, "source": self.source}


def scene_without_shell(cloud: GaussianCloud, shell: SkyShell) -> GaussianCloud:
    """The Gaussians before the shell."""
    return cloud if not shell.gaussians else cloud.subset(np.arange(shell.first))


def shell_from_description(description: dict[str, Any] | None, count: int, source: str) -> SkyShell:
    """The shell a manifest's ``sky_shell`` describes (None or missing: no shell).

    Raises:
        ValueError: the description does not fit a cloud of ``count`` Gaussians.
    """
    if not description:
        return SkyShell(count, 0, source)
    first, gaussians = int(description["first"]), int(description["gaussians"])
    if first < 0 or first + gaussians != count:
        raise ValueError(f"the {source} says the sky shell is Gaussians {first} to {first + gaussians - 1}, "
                         f"but the PLY holds {count}")  # fmt: skip
    return SkyShell(first, gaussians, source)


def recorded_shell(ply: Path, count: int) -> SkyShell | None:
    """The shell the train stage recorded for ``ply``: its ``manifest.json`` beside it, else the ``report.json`` of
    the run folder it is in; None when neither says anything about a shell."""
    manifest = ply.parent / "manifest.json"
    if manifest.is_file():
        payload = json.loads(manifest.read_text(encoding="utf-8"))
        if payload.get("stage") == "train":
            return shell_from_description(payload.get("sky_shell"), count, "manifest")
    report = ply.parent / "report.json"
    if report.is_file():
        train = json.loads(report.read_text(encoding="utf-8")).get("train") or {}
        if "sky_shell" in train:
            return shell_from_description(train["sky_shell"], count, "report")
    return None


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, radius) of the sphere through ``points`` in the least-squares sense (the algebraic fit:
    |x|^2 = 2 c.x + (r^2 - |c|^2) is linear in c and the constant)."""
    points = np.asarray(points, dtype=np.float64)
    design = np.concatenate([2.0 * points, np.ones((len(points), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, np.sum(points**2, axis=1), rcond=None)
    centre = solution[:3]
    return centre, float(np.sqrt(max(solution[3] + centre @ centre, 0.0)))


def detect_shell(cloud: GaussianCloud, gaussians: int = SHELL_GAUSSIANS) -> SkyShell:
    """The shell found by its shape: the last ``gaussians`` on one sphere that holds all the others."""
    count = len(cloud)
    if count <= gaussians:
        return SkyShell(count, 0, "none found")
    tail = cloud.means[count - gaussians :].astype(np.float64)
    centre, radius = fit_sphere(tail)
    if not np.isfinite(radius) or radius <= 0:
        return SkyShell(count, 0, "none found")
    on_sphere = np.abs(np.linalg.norm(tail - centre, axis=1) - radius) <= SPHERE_TOLERANCE * radius
    inside = np.linalg.norm(cloud.means[: count - gaussians] - centre, axis=1) < radius
    if on_sphere.all() and inside.all():
        return SkyShell(count - gaussians, gaussians, "detected")
    return SkyShell(count, 0, "none found")


def find_shell(cloud: GaussianCloud, ply: Path | None, option: str | None = None) -> SkyShell:
    """Where ``cloud``'s shell starts: ``option`` (``none``, ``auto`` or an index) first, then what the train stage
    recorded beside ``ply``, then the shape.

    Raises:
        ValueError: ``option`` is not ``none``, ``auto`` or an index inside the cloud, or a record does not fit.
    """
    count = len(cloud)
    if option == "none":
        return SkyShell(count, 0, "option")
    if option not in (None, "auto"):
        if not option.isdigit() or not 0 <= int(option) <= count:
            raise ValueError(f"--sky-shell takes none, auto or the index of the first shell Gaussian (0 to {count})")
        return SkyShell(int(option), count - int(option), "option")
    recorded = recorded_shell(ply, count) if ply is not None else None
    return recorded if recorded is not None else detect_shell(cloud)
