"""The SH palette of SOG: a weighted k-means of the SH-rest vectors, sized by a compute budget.

The palette is what grows with the scene: labelling costs N x P distances, fitting costs (points seen) x P.
Three choices, each made by measurement (2 cores shared with another process, one BLAS thread; the Scaling
section of ``benchmarks/RESULTS.md`` has the encoder's figures against N):

- Distances are one matrix product: ``[p, 1] . [-2c, |c|^2]`` gives ``|c|^2 - 2 p.c`` directly, in blocks that stay
  in cache. Against a product followed by two passes over a 64 MB block it ran 2.7x faster (19 to 52 GFLOP/s on
  40k x 16384 entries, 45 dimensions) with the same labels.
- Up to ``FIT_POINTS_PER_ENTRY`` points per entry, Lloyd's iterations run on every point (the earlier design).
  Beyond, mini-batch k-means (Sculley 2010) fits on fresh batches instead of iterating over one fixed subset:
  at the same number of distances (300k SH-3 Gaussians, 4096 entries) its weighted RMS error was 0.0303 against
  0.0310 for Lloyd on a 32-per-entry subset (Lloyd on all 300k points: 0.0297, at 1.8x the time).
- The default size is capped so that fitting plus labelling stays within ``PALETTE_BUDGET`` multiply-adds,
  a count (never a clock) so the output stays the same on every machine.

numpy only (BLAS matmul), so the compress container needs no torch.
"""

from __future__ import annotations

import numpy as np

# Points per entry up to which Lloyd's iterations run on every point; above, mini-batches.
FIT_POINTS_PER_ENTRY = 32
# A mini-batch holds this many points per entry (measured at equal cost: 8 per entry 0.0303, 4 per entry 0.0305).
BATCH_POINTS_PER_ENTRY = 8
# Multiply-adds allowed for a default palette's fit and labelling: about 4 minutes on one core at the 25 G/s
# measured here (half on two), so up to 3.7M SH-3 Gaussians keep 16384 entries and larger scenes get fewer.
PALETTE_BUDGET = 6e12
# Distances per block of the labelling: 8 MB of float32, small enough to stay in cache between product and argmin.
_BLOCK_DISTANCES = 1 << 21


def nearest_entries(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of each point's nearest centroid (squared Euclidean), exactly, in bounded memory.

    Args:
        points: (N, D) float32 vectors.
        centroids: (P, D) float32 palette.

    Returns:
        (N,) int64 labels.
    """
    count, dimensions = points.shape
    # One product gives |c|^2 - 2 p.c (the point's own |p|^2 does not change which entry is nearest).
    augmented = np.empty((dimensions + 1, len(centroids)), np.float32)
    augmented[:dimensions] = -2.0 * centroids.T
    augmented[dimensions] = np.einsum("ij,ij->i", centroids, centroids)
    block = max(1, min(count, _BLOCK_DISTANCES // max(1, len(centroids))))
    rows = np.ones((block, dimensions + 1), np.float32)
    distances = np.empty((block, len(centroids)), np.float32)
    labels = np.empty(count, np.int64)
    for start in range(0, count, block):
        size = min(block, count - start)
        rows[:size, :dimensions] = points[start : start + size]
        np.matmul(rows[:size], augmented, out=distances[:size])
        labels[start : start + size] = np.argmin(distances[:size], axis=1)
    return labels


def fit_points_seen(count: int, size: int, iterations: int) -> int:
    """Points whose distances to every entry the fit computes: Lloyd's passes, or the mini-batches."""
    if count <= FIT_POINTS_PER_ENTRY * size:
        return (iterations + 1) * count
    return iterations * FIT_POINTS_PER_ENTRY * size


def palette_work(count: int, size: int, dimensions: int, iterations: int) -> float:
    """Multiply-adds of fitting a ``size``-entry palette to ``count`` points and labelling them all."""
    return float(fit_points_seen(count, size, iterations) + count) * size * (dimensions + 1)


def default_palette_size(count: int, dimensions: int = 45, iterations: int = 8) -> int:
    """SH palette entries for ``count`` Gaussians: about one per 16, a power of two, within splat-transform's size
    and within ``PALETTE_BUDGET``.

    splat-transform uses ``min(64, 2^floor(log2(N/1024))) * 1024``, i.e. one entry per one to two Gaussians
    below 64k; those centroids then cost more bytes than the labels that point at them. One entry per ~16
    Gaussians keeps the SH error small (the higher bands are a small share of the colour) at a tenth of the size.
    The budget halves the palette until fitting and labelling fit in it: at SH 3 that is 16384 entries from 262k
    to 3.7M Gaussians, 8192 to 13M.

    Args:
        count: Gaussians.
        dimensions: SH-rest values per Gaussian (45 at SH 3, 24 at SH 2, 9 at SH 1).
        iterations: the fit's iterations (``kmeans_palette``).
    """
    if count <= 1:
        return 1
    splat_transform = int(min(64, 2 ** np.floor(np.log2(count / 1024))) * 1024)
    size = max(1, min(2 ** int(np.round(np.log2(max(count / 16, 64)))), splat_transform, count))
    while size > 1 and palette_work(count, size, dimensions, iterations) > PALETTE_BUDGET:
        size //= 2
    return size


def kmeans_palette(
    points: np.ndarray, size: int, iterations: int = 8, seed: int = 0, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the SH-rest vectors into a palette (weighted k-means, initialised from random points).

    Each point counts in its centroid's mean by its weight (e.g. how much of the image it covers), so the
    palette is accurate where errors show; the assignment stays plain nearest-centroid. Entries left empty are
    re-seeded with the points of largest weighted error, so every entry earns its bytes. Up to
    ``FIT_POINTS_PER_ENTRY`` points per entry this is Lloyd's algorithm on every point; beyond, mini-batch
    k-means over ``iterations * FIT_POINTS_PER_ENTRY`` points per entry, in batches of
    ``BATCH_POINTS_PER_ENTRY``. Every point is then labelled with its nearest centroid.

    Args:
        points: (N, D) vectors.
        size: Palette entries, at most N.
        iterations: Lloyd iterations, or the mini-batch fit's equivalent effort.
        seed: Seed of the initial entries and of the batches, for repeatable output.
        weights: (N,) positive importance per point; None weighs all alike.

    Returns:
        (size, D) float32 centroids and (N,) int64 labels.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, np.float64)
    size = min(size, len(points))
    rng = np.random.default_rng(seed)
    centroids = points[rng.choice(len(points), size, replace=False)].copy()
    if len(points) <= FIT_POINTS_PER_ENTRY * size:
        return _lloyd(points, weights, centroids, iterations)
    centroids = _minibatch(points, weights, centroids, iterations, rng)
    return centroids, nearest_entries(points, centroids)


def _lloyd(
    points: np.ndarray, weights: np.ndarray, centroids: np.ndarray, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    labels = nearest_entries(points, centroids)
    for _ in range(iterations):
        centroids = _update_centroids(points, weights, labels, centroids)
        labels = nearest_entries(points, centroids)
    return centroids, labels


def _weighted_sums(points: np.ndarray, weights: np.ndarray, labels: np.ndarray, size: int) -> tuple:
    """Per entry: the total weight and the weighted sum of its points, (P,) and (P, D)."""
    totals = np.bincount(labels, weights=weights, minlength=size)
    # One bincount per column: np.add.at is an order of magnitude slower.
    sums = np.stack([np.bincount(labels, weights=weights * column, minlength=size) for column in points.T], axis=1)
    return totals, sums


def _worst_points(points: np.ndarray, weights: np.ndarray, labels: np.ndarray, centroids: np.ndarray,
                  count: int) -> np.ndarray:  # fmt: skip
    """The ``count`` points of largest weighted error: the seeds for entries no point chose."""
    residual = points - centroids[labels]
    error = weights * np.einsum("ij,ij->i", residual, residual)
    return points[np.argsort(error)[::-1][:count]]


def _update_centroids(points: np.ndarray, weights: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    totals, sums = _weighted_sums(points, weights, labels, len(centroids))
    updated = np.where(totals[:, None] > 0, sums / np.maximum(totals, 1e-30)[:, None], centroids).astype(np.float32)
    empty = np.flatnonzero(totals <= 0)
    if empty.size:
        updated[empty] = _worst_points(points, weights, labels, centroids, empty.size)
    return updated


def _minibatch(points: np.ndarray, weights: np.ndarray, centroids: np.ndarray, iterations: int,
               rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Sculley's mini-batch k-means with weights: each entry is the running weighted mean of every point it won.

    Batches walk one random permutation, so the fit sees distinct points until it has seen them all.
    """
    size = len(centroids)
    batch = BATCH_POINTS_PER_ENTRY * size
    steps = -(-iterations * FIT_POINTS_PER_ENTRY // BATCH_POINTS_PER_ENTRY)
    order = rng.permutation(len(points))
    seen = np.zeros(size)
    fitted = centroids.astype(np.float64)
    for step in range(steps):
        start = (step * batch) % len(points)
        index = np.take(order, np.arange(start, start + batch), mode="wrap")
        chosen, chosen_weights = points[index], weights[index]
        labels = nearest_entries(chosen, fitted.astype(np.float32))
        totals, sums = _weighted_sums(chosen, chosen_weights, labels, size)
        seen += totals
        won = totals > 0
        # Moving by totals / seen towards the batch's mean keeps each entry the mean of all it has won.
        rate = np.where(won, totals / np.where(won, seen, 1.0), 0.0)
        means = sums / np.maximum(totals, 1e-30)[:, None]
        fitted += rate[:, None] * np.where(won[:, None], means - fitted, 0.0)
        never = np.flatnonzero(seen <= 0)
        if never.size:
            fitted[never] = _worst_points(chosen, chosen_weights, labels, fitted.astype(np.float32), never.size)
    return fitted.astype(np.float32)
