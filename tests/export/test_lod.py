"""Levels of detail: leaves keep every trained Gaussian, parents merge them with their moments kept, errors grow
towards the root and boxes hold everything below them."""

from __future__ import annotations

import numpy as np

from spaceport.export.lod import COARSE_SHARE, build_tiles, gaussian_box, split_cells
from spaceport.export.merge import covariances, masses, merge_groups, quaternions_from_rotations, rotation_matrices
from spaceport.gaussians import GaussianCloud, concatenate

from .scenes import random_cloud


def _aerial(count: int, seed: int = 0) -> GaussianCloud:
    """A flat, wide scene (200 x 200 x 5 m), as a drone sees it."""
    cloud = random_cloud(count, degree=1, seed=seed)
    rng = np.random.default_rng(seed)
    cloud.means = np.c_[rng.uniform(-100, 100, (count, 2)), rng.uniform(0, 5, count)].astype(np.float32)
    cloud.log_scales = np.log(rng.uniform(0.05, 0.4, (count, 3))).astype(np.float32)
    return cloud


def test_merging_one_gaussian_leaves_it_as_it_was() -> None:
    # GIVEN Gaussians each in a group of its own
    cloud = random_cloud(200, degree=2, seed=1)
    # WHEN they are merged
    merged, mass = merge_groups(cloud, masses(cloud), np.arange(len(cloud)))
    # THEN each is itself: same centre, covariance, opacity, colour, and mass
    assert np.allclose(merged.means, cloud.means, atol=1e-5)
    assert np.allclose(covariances(merged), covariances(cloud), rtol=1e-4, atol=1e-9)
    assert np.allclose(merged.opacities, cloud.opacities, atol=1e-3)
    assert np.allclose(merged.sh0, cloud.sh0) and np.allclose(merged.shN, cloud.shN)
    assert np.allclose(mass, masses(cloud), rtol=1e-4)


def test_merging_keeps_the_mixture_moments_and_merging_merged_is_merging_all() -> None:
    # GIVEN 60 Gaussians in 3 groups, and the same groups merged in two steps (halves first)
    cloud = random_cloud(60, degree=1, seed=2)
    groups = np.repeat([0, 1, 2], 20)
    weight = masses(cloud)
    # WHEN they are merged at once, and in two steps carrying the masses
    merged, merged_mass = merge_groups(cloud, weight, groups)
    halves = np.repeat(np.arange(6), 10)
    first, first_mass = merge_groups(cloud, weight, halves)
    second, _ = merge_groups(first, first_mass, np.repeat([0, 1, 2], 2))
    # THEN the merged centre and covariance are the mass-weighted mixture's, and two steps give the same Gaussians
    for group in range(3):
        members = groups == group
        share = weight[members] / weight[members].sum()
        mean = share @ cloud.means[members].astype(np.float64)
        offsets = cloud.means[members] - mean
        moment = np.einsum("n,nij->ij", share, covariances(cloud)[members] + offsets[:, :, None] * offsets[:, None])
        assert np.allclose(merged.means[group], mean, atol=1e-4)
        assert np.allclose(covariances(merged)[group], moment, rtol=1e-3, atol=1e-6)
    assert np.allclose(second.means, merged.means, atol=1e-4)
    assert np.allclose(covariances(second), covariances(merged), rtol=1e-3, atol=1e-6)
    assert np.allclose(second.sh0, merged.sh0, atol=1e-5)
    assert np.all(merged_mass <= np.bincount(groups, weights=weight) * (1 + 1e-9))


def test_quaternions_and_matrices_convert_both_ways() -> None:
    # GIVEN random rotations, half-turns included
    quats = np.concatenate([np.random.default_rng(3).normal(size=(500, 4)), [[0, 1, 0, 0], [0, 0, 0, 1.0]]])
    # WHEN they go to matrices and back
    back = quaternions_from_rotations(rotation_matrices(quats))
    # THEN they are the same rotations
    unit = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    assert np.abs(np.abs(np.sum(unit * back, axis=1)) - 1).max() < 1e-9


def test_a_small_scene_is_one_tile_without_levels() -> None:
    # GIVEN a scene under the tile limit
    cloud = _aerial(1000)
    # WHEN it is tiled
    root = build_tiles(cloud, limit=1000)
    # THEN it is one leaf holding every Gaussian as trained
    assert not root.children and root.geometric_error == 0.0 and root.cloud is cloud


def test_a_large_scene_becomes_a_tree_whose_leaves_are_the_scene() -> None:
    # GIVEN a flat aerial scene of 40,000 Gaussians and a limit of 3,000 per tile
    cloud, limit = _aerial(40_000), 3000
    # WHEN it is tiled
    root = build_tiles(cloud, limit=limit)
    tiles = root.walk()
    leaves = [tile for tile in tiles if not tile.children]
    # THEN the leaves hold every trained Gaussian once, none over the limit, with error 0
    rows = lambda c: np.concatenate([c.means, c.sh0, c.log_scales], axis=1)  # noqa: E731
    joined = rows(concatenate([leaf.cloud for leaf in leaves]))
    assert sorted(map(tuple, joined)) == sorted(map(tuple, rows(cloud)))
    assert all(len(leaf.cloud) <= limit and leaf.geometric_error == 0 for leaf in leaves)
    # AND a flat scene splits four ways (east and north), parents hold at most a quarter of a tile, their errors
    # exceed their children's, and every box holds its own Gaussians and its children's boxes
    assert len(root.children) == 4 and root.depth >= 3
    for tile in tiles:
        if tile.children:
            assert len(tile.cloud) <= limit // COARSE_SHARE
            assert all(tile.geometric_error > child.geometric_error for child in tile.children)
            assert all(np.all(tile.low <= child.low) and np.all(tile.high >= child.high) for child in tile.children)
        low, high = gaussian_box(tile.cloud)
        assert np.all(tile.low <= low + 1e-9) and np.all(tile.high >= high - 1e-9)


def test_parent_errors_are_the_detail_they_lose() -> None:
    # GIVEN an aerial scene tiled in levels
    root = build_tiles(_aerial(40_000, seed=5), limit=3000)
    # WHEN a parent's Gaussians are compared with its children's
    parent = root.children[0]
    children = concatenate([child.cloud for child in parent.children])
    # THEN every child Gaussian lies within one geometric error (the voxel's size) of some parent Gaussian
    from scipy.spatial import cKDTree

    distances, _ = cKDTree(parent.cloud.means).query(children.means)
    assert distances.max() <= np.sqrt(3) * parent.geometric_error


def test_split_cells_halves_a_line_and_cannot_split_a_point() -> None:
    # GIVEN centres along a line (x only), and centres all in one place
    line = np.c_[np.arange(10.0), np.zeros(10), np.zeros(10)]
    # WHEN they are split THEN the line halves along x and the point stays whole
    assert [len(cell) for cell in split_cells(line)] == [5, 5]
    assert len(split_cells(np.zeros((10, 3)))) == 1
