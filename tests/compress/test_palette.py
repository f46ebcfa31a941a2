"""The SH palette at scale: exact labels from the fused distances, mini-batch fitting, and the budgeted size."""

from __future__ import annotations

import numpy as np
import pytest

from spaceport.compress import palette
from spaceport.compress.palette import (
    PALETTE_BUDGET,
    default_palette_size,
    kmeans_palette,
    nearest_entries,
    palette_work,
)


def _weighted_rms(points: np.ndarray, weights: np.ndarray, centroids: np.ndarray, labels: np.ndarray) -> float:
    residual = points - centroids[labels]
    return float(np.sqrt(np.sum(weights * np.einsum("ij,ij->i", residual, residual)) / weights.sum()))


def test_nearest_entries_match_brute_force_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN blocks far smaller than the input, so labels come from many products
    monkeypatch.setattr(palette, "_BLOCK_DISTANCES", 1000)
    rng = np.random.default_rng(4)
    points = rng.normal(size=(2500, 45)).astype(np.float32)
    centroids = rng.normal(size=(300, 45)).astype(np.float32)

    # WHEN labelled
    labels = nearest_entries(points, centroids)

    # THEN each label is the nearest centroid (ties aside: the float64 distances of both choices agree)
    distances = ((points[:, None, :].astype(np.float64) - centroids[None]) ** 2).sum(-1)
    chosen = distances[np.arange(len(points)), labels]
    np.testing.assert_allclose(chosen, distances.min(axis=1), rtol=1e-5)


def test_mini_batch_fit_is_about_as_good_as_lloyd_on_every_point() -> None:
    # GIVEN 16k noisy SH-3-like vectors around 400 centres, weighted like render footprints, and a 64-entry palette
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 0.1, (400, 45))
    points = (centres[rng.integers(0, 400, 16_000)] + rng.normal(0, 0.03, (16_000, 45))).astype(np.float32)
    weights = rng.lognormal(0, 1, 16_000)

    # WHEN fitted by mini-batches (far more than 32 points per entry) and, for reference, by Lloyd on every point
    centroids, labels = kmeans_palette(points, 64, iterations=8, seed=0, weights=weights)
    start = points[np.random.default_rng(0).choice(len(points), 64, replace=False)].copy()
    reference, reference_labels = palette._lloyd(points, weights, start, 8)

    # THEN its weighted error is within 5 % of Lloyd's, and every point carries its nearest entry's label
    assert _weighted_rms(points, weights, centroids, labels) <= 1.05 * _weighted_rms(
        points, weights, reference, reference_labels
    )
    assert np.array_equal(labels, nearest_entries(points, centroids))


def test_mini_batch_fit_is_repeatable_and_uses_every_entry() -> None:
    # GIVEN points with far fewer distinct values than palette entries could chase, fitted twice with one seed
    rng = np.random.default_rng(6)
    points = rng.normal(size=(6000, 9)).astype(np.float32)

    # WHEN fitted twice
    first = kmeans_palette(points, 32, iterations=4, seed=3)
    second = kmeans_palette(points, 32, iterations=4, seed=3)

    # THEN the palettes are identical and no entry is left unused
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert len(np.unique(first[1])) == 32


@pytest.mark.parametrize(
    ("count", "dimensions", "expected"),
    [(20_000, 45, 1024), (100_000, 45, 8192), (300_000, 45, 16384), (3_000_000, 45, 16384),
     (10_000_000, 45, 8192), (1_000_000, 9, 32768)],
)  # fmt: skip
def test_default_palette_follows_the_scene_within_the_budget(count: int, dimensions: int, expected: int) -> None:
    # GIVEN a scene size and its SH-rest width, WHEN the default palette is chosen
    size = default_palette_size(count, dimensions)
    # THEN it is the expected power of two, within splat-transform's size and the compute budget
    assert size == expected
    assert size <= min(64, 2 ** np.floor(np.log2(count / 1024))) * 1024
    assert palette_work(count, size, dimensions, 8) <= PALETTE_BUDGET
