"""The quantisers behind SOG: 1D codebooks, the SH k-means palette and the Morton order.

numpy only (BLAS matmul for the k-means distances), so the compress container needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CODEBOOK_SIZE = 256
MAX_DEFAULT_PALETTE = 16384
# k-means fits on at most this many points per palette entry, then labels every point once.
FIT_POINTS_PER_ENTRY = 32
# Points per block when computing palette distances: (block, palette) float32 stays under ~64 MB.
_DISTANCE_BUDGET = 16 * 1024 * 1024


@dataclass
class Codebook:
    """A sorted 256-entry scalar codebook and every value's index into it."""

    centroids: np.ndarray
    labels: np.ndarray


def _nearest_sorted(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest entry of a sorted 1D codebook, by binary search on the midpoints."""
    midpoints = (centroids[1:] + centroids[:-1]) * 0.5
    return np.searchsorted(midpoints, values)


def codebook_1d(values: np.ndarray, size: int = CODEBOOK_SIZE, iterations: int = 16) -> Codebook:
    """Fit a 1D k-means codebook (Lloyd's algorithm from half quantile, half evenly spaced entries).

    Quantiles alone put every entry where values are dense and Lloyd barely moves them into the tails, so a
    large background Gaussian's scale could be off by a factor of two; the evenly spaced half keeps the tails
    covered (on log-scales it cuts the worst error twentyfold and the RMS error in half).

    Args:
        values: Any array; it is flattened.
        size: Codebook entries (at most 256 so an index fits a byte).
        iterations: Lloyd iterations; it stops earlier once no entry moves.

    Returns:
        The sorted centroids (float32, exactly ``size`` long) and the labels (uint8, the shape of ``values``).
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 0:
        return Codebook(np.zeros(size, np.float32), np.zeros(np.shape(values), np.uint8))
    quantile_count = size // 2
    quantiles = np.quantile(flat, (np.arange(quantile_count) + 0.5) / quantile_count)
    centroids = np.sort(np.concatenate([quantiles, np.linspace(flat.min(), flat.max(), size - quantile_count)]))
    for _ in range(iterations):
        labels = _nearest_sorted(flat, centroids)
        counts = np.bincount(labels, minlength=size)
        sums = np.bincount(labels, weights=flat, minlength=size)
        updated = np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), centroids))
        if np.array_equal(updated, centroids):
            break
        centroids = updated
    centroids = centroids.astype(np.float32)
    labels = _nearest_sorted(flat, centroids.astype(np.float64)).astype(np.uint8)
    return Codebook(centroids, labels.reshape(np.shape(values)))


def default_palette_size(count: int) -> int:
    """SH palette entries for ``count`` Gaussians: about one per 16, a power of two, at most splat-transform's.

    splat-transform uses ``min(64, 2^floor(log2(N/1024))) * 1024``, i.e. one entry per one to two Gaussians
    below 64k; those centroids then cost more bytes than the labels that point at them. One entry per ~16
    Gaussians keeps the SH error small (the higher bands are a small share of the colour) at a tenth of the size.
    Capped at ``MAX_DEFAULT_PALETTE``: k-means costs N x palette per iteration, and past ~250k Gaussians a
    larger palette would take many minutes on CPU (``--sh-palette`` asks for more).
    """
    if count <= 1:
        return 1
    splat_transform = int(min(64, 2 ** np.floor(np.log2(count / 1024))) * 1024)
    ours = 2 ** int(np.round(np.log2(max(count / 16, 64))))
    return max(1, min(ours, splat_transform, count, MAX_DEFAULT_PALETTE))


def _assign(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid per point: ||c||^2 - 2 p.c in blocks, so memory stays bounded."""
    centroid_norms = np.einsum("ij,ij->i", centroids, centroids)
    block = max(1, _DISTANCE_BUDGET // max(1, len(centroids)))
    labels = np.empty(len(points), np.int64)
    for start in range(0, len(points), block):
        chunk = points[start : start + block]
        distances = centroid_norms[None, :] - 2.0 * (chunk @ centroids.T)
        labels[start : start + block] = np.argmin(distances, axis=1)
    return labels


def kmeans_palette(
    points: np.ndarray, size: int, iterations: int = 8, seed: int = 0, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster the SH-rest vectors into a palette (weighted Lloyd's k-means, initialised from a random subset).

    Each point counts in its centroid's mean by its weight (e.g. how much of the image it covers), so the
    palette is accurate where errors show; the assignment stays plain nearest-centroid. Empty clusters are
    re-seeded with the points of largest weighted error, so every entry earns its bytes. Large inputs are
    fitted on a random subset of ``FIT_POINTS_PER_ENTRY`` points per entry, which bounds the cost per
    iteration; every point is then labelled with its nearest centroid.

    Args:
        points: (N, D) vectors.
        size: Palette entries, at most N.
        iterations: Lloyd iterations (assignment + mean update).
        seed: Seed of the initial subset, for repeatable output.
        weights: (N,) positive importance per point; None weighs all alike.

    Returns:
        (size, D) float32 centroids and (N,) int64 labels.
    """
    points = np.ascontiguousarray(points, dtype=np.float32)
    weights = np.ones(len(points)) if weights is None else np.asarray(weights, np.float64)
    size = min(size, len(points))
    rng = np.random.default_rng(seed)
    fit, fit_weights = points, weights
    if len(points) > FIT_POINTS_PER_ENTRY * size:
        subset = rng.choice(len(points), FIT_POINTS_PER_ENTRY * size, replace=False)
        fit, fit_weights = points[subset], weights[subset]
    centroids = fit[rng.choice(len(fit), size, replace=False)].copy()
    labels = _assign(fit, centroids)
    for _ in range(iterations):
        centroids = _update_centroids(fit, fit_weights, labels, centroids)
        labels = _assign(fit, centroids)
    return centroids, (labels if fit is points else _assign(points, centroids))


def _update_centroids(points: np.ndarray, weights: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    size = len(centroids)
    totals = np.bincount(labels, weights=weights, minlength=size)
    # One bincount per column: np.add.at is an order of magnitude slower.
    sums = np.stack([np.bincount(labels, weights=weights * column, minlength=size) for column in points.T], axis=1)
    updated = np.where(totals[:, None] > 0, sums / np.maximum(totals, 1e-30)[:, None], centroids).astype(np.float32)
    empty = np.flatnonzero(totals <= 0)
    if empty.size:
        residual = points - centroids[labels]
        error = weights * np.einsum("ij,ij->i", residual, residual)
        updated[empty] = points[np.argsort(error)[::-1][: empty.size]]
    return updated


def _spread_bits(values: np.ndarray) -> np.ndarray:
    """Insert two zero bits after each of the low 21 bits (the classic 3D Morton bit spread)."""
    x = values.astype(np.uint64) & np.uint64(0x1FFFFF)
    for shift, mask in ((32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F),
                        (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249)):  # fmt: skip
        x = (x | (x << np.uint64(shift))) & np.uint64(mask)
    return x


def morton_order(positions: np.ndarray) -> np.ndarray:
    """A permutation that sorts the points along a 3D Z-order curve over their bounding box.

    Neighbours in space become neighbours in the images, which is what lets lossless WebP predict texels.
    """
    if len(positions) == 0:
        return np.zeros(0, np.int64)
    low, high = positions.min(axis=0), positions.max(axis=0)
    extent = np.where(high > low, high - low, 1.0)
    cells = np.clip((positions - low) / extent * ((1 << 21) - 1), 0, (1 << 21) - 1).astype(np.uint64)
    codes = _spread_bits(cells[:, 0]) | (_spread_bits(cells[:, 1]) << np.uint64(1))
    codes |= _spread_bits(cells[:, 2]) << np.uint64(2)
    return np.argsort(codes, kind="stable")
