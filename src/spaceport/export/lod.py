"""Levels of detail: the tile tree of a splat, for ``REPLACE`` refinement in 3D Tiles.

A scene of at most ``TILE_LIMIT`` Gaussians is one tile. A larger one is split where it is largest: along every
axis whose spread is at least half the largest one, at the median of the Gaussians' centres (so a flat aerial
scene becomes a quadtree, a tower a binary tree, and children hold similar counts), again and again until each
leaf holds at most ``TILE_LIMIT``. Leaves keep the trained Gaussians as they are (geometric error 0). Each parent
holds its children's contents merged (``spaceport.export.merge``) on a voxel grid just coarse enough to leave at
most ``TILE_LIMIT / COARSE_SHARE`` Gaussians, and its geometric error is that voxel's size in metres: nothing
finer than one voxel survives. The root, the coarsest level, is small and loads first; a viewer replaces a tile
by its children once the tile's voxels would look larger than its error threshold on screen.

``TILE_LIMIT`` is the largest of the tile sizes measured (50 k, 200 k and 800 k Gaussians) whose single tile drew
its first frame within 10 s in CesiumJS on a CPU renderer (SwiftShader): 9.6 s, where 800 k took 65 s
(``python -m benchmarks --only globe``, whose target checks this rule again; ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spaceport.export.merge import covariances, masses, merge_groups
from spaceport.gaussians import GaussianCloud, concatenate

TILE_LIMIT = 200_000
COARSE_SHARE = 4
# A split axis: one whose spread is at least this share of the largest.
SPLIT_AXIS_SHARE = 0.5
VOXEL_SEARCH_STEPS = 18
# A tile's bounding box holds each of its Gaussians out to this many standard deviations (3DGS's own cut-off).
BOX_SIGMAS = 3.0


@dataclass
class Tile:
    """One tile: its Gaussians (in the scene's z-up frame), their masses, its error and box, its children.

    Attributes:
        name: a path from the root, e.g. ``0``, ``0_2``, ``0_2_1`` (content files are named after it).
        cloud: the tile's own Gaussians (a leaf's as trained, a parent's merged).
        mass: (N,) what each carries (``spaceport.export.merge.masses``).
        geometric_error: metres; 0 for a leaf.
        low, high: (3,) the box holding the tile's Gaussians and all its descendants', to ``BOX_SIGMAS``.
        children: the finer tiles that replace it.
    """

    name: str
    cloud: GaussianCloud
    mass: np.ndarray
    geometric_error: float
    low: np.ndarray
    high: np.ndarray
    children: list[Tile] = field(default_factory=list)

    def walk(self) -> list[Tile]:
        """This tile and every descendant, parents before children."""
        return [self, *(tile for child in self.children for tile in child.walk())]

    @property
    def depth(self) -> int:
        return 1 + max((child.depth for child in self.children), default=0)


def gaussian_box(cloud: GaussianCloud) -> tuple[np.ndarray, np.ndarray]:
    """The axis-aligned box holding every Gaussian out to ``BOX_SIGMAS`` (its exact reach along each axis)."""
    reach = BOX_SIGMAS * np.sqrt(np.einsum("nii->ni", covariances(cloud)))
    means = cloud.means.astype(np.float64)
    return (means - reach).min(axis=0), (means + reach).max(axis=0)


def split_cells(means: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the non-empty children of a node holding ``means``: split at the median along every axis
    spread at least ``SPLIT_AXIS_SHARE`` of the widest. A single array back means it cannot be split."""
    spread = means.max(axis=0) - means.min(axis=0)
    axes = [axis for axis in range(3) if spread[axis] > 0 and spread[axis] >= SPLIT_AXIS_SHARE * spread.max()]
    cell = np.zeros(len(means), dtype=np.int64)
    for axis in axes:
        values = means[:, axis]
        upper = values >= np.median(values)
        if upper.all():  # more than half share the median: split just above it instead
            upper = values > np.median(values)
        cell = cell * 2 + upper
    return [indices for indices in (np.flatnonzero(cell == key) for key in np.unique(cell)) if len(indices)]


def voxel_groups(means: np.ndarray, size: float) -> tuple[np.ndarray, int]:
    """(N,) the voxel of edge ``size`` each centre falls in, numbered 0 to G-1, and G."""
    cells = np.floor((means - means.min(axis=0)) / size).astype(np.int64)
    span = cells.max(axis=0) + 1
    keys = (cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]
    _, groups = np.unique(keys, return_inverse=True)
    return groups.reshape(-1), int(groups.max()) + 1


def coarsest_voxel(means: np.ndarray, target: int) -> float:
    """About the smallest voxel edge that leaves at most ``target`` occupied voxels (a search on a log scale)."""
    extent = float(np.max(means.max(axis=0) - means.min(axis=0)))
    high = max(extent, 1e-9) * 1.01  # one voxel holds everything
    # At most a million voxels along an axis: the keys below stay inside int64.
    low = high / min(max(len(means), 2), 1_000_000)
    for _ in range(VOXEL_SEARCH_STEPS):
        middle = float(np.sqrt(low * high))
        if voxel_groups(means, middle)[1] <= target:
            high = middle
        else:
            low = middle
    return high


def coarser(cloud: GaussianCloud, mass: np.ndarray, target: int) -> tuple[GaussianCloud, np.ndarray, float]:
    """``cloud`` merged on the finest voxel grid that leaves at most ``target`` Gaussians; the grid's edge."""
    size = coarsest_voxel(cloud.means.astype(np.float64), target)
    groups, _ = voxel_groups(cloud.means.astype(np.float64), size)
    merged, merged_mass = merge_groups(cloud, mass, groups)
    return merged, merged_mass, size


def _leaf(name: str, cloud: GaussianCloud, mass: np.ndarray) -> Tile:
    low, high = gaussian_box(cloud)
    return Tile(name, cloud, mass, 0.0, low, high)


def _build(name: str, cloud: GaussianCloud, mass: np.ndarray, limit: int) -> Tile:
    if len(cloud) <= limit:
        return _leaf(name, cloud, mass)
    cells = split_cells(cloud.means.astype(np.float64))
    if len(cells) == 1:  # every centre in one place: nothing to split, so one (large) leaf
        return _leaf(name, cloud, mass)
    children = [_build(f"{name}_{index}", cloud.subset(cell), mass[cell], limit) for index, cell in enumerate(cells)]
    union = concatenate([child.cloud for child in children])
    merged, merged_mass, voxel = coarser(union, np.concatenate([child.mass for child in children]),
                                         max(limit // COARSE_SHARE, 1))  # fmt: skip
    low, high = gaussian_box(merged)
    low = np.minimum.reduce([low, *(child.low for child in children)])
    high = np.maximum.reduce([high, *(child.high for child in children)])
    # A parent's error exceeds its children's, or a viewer could stop refining above a finer level.
    error = max(voxel, *(1.01 * child.geometric_error for child in children))
    return Tile(name, merged, merged_mass, error, low, high, children)


def build_tiles(cloud: GaussianCloud, limit: int = TILE_LIMIT) -> Tile:
    """The tile tree of ``cloud`` (z-up scene frame): one tile up to ``limit`` Gaussians, levels of detail above.

    Raises:
        ValueError: the cloud is empty.
    """
    if not len(cloud):
        raise ValueError("no Gaussians to tile")
    return _build("0", cloud, masses(cloud), limit)
