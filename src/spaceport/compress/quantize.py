"""The quantisers behind SOG: 1D codebooks and the Morton order (the SH palette is in ``palette.py``).

numpy only, so the compress container needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CODEBOOK_SIZE = 256


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
