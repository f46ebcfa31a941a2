"""Many Gaussians as one: moment matching, for the coarser levels of detail.

Each Gaussian carries a *mass*, its opacity times the area of its largest cross-section (pi s_1 s_2 of its two
largest standard deviations): what it covers of a view, seen face on. A group becomes the Gaussian with the
group's mass-weighted mean and covariance (each member's own covariance plus its offset from the mean: the second
moment of the mixture), its colour the mass-weighted mean of the members' SH coefficients, and its opacity the
group's mass spread over the merged Gaussian's cross-section (at most ``OPACITY_CAP``: crowded groups are opaque).
A group of one is the Gaussian itself. Masses add up, so merging merged Gaussians with their masses is merging
their members.
"""

from __future__ import annotations

import numpy as np

from spaceport.gaussians import GaussianCloud

# A merged Gaussian is at most this opaque (its logit stays finite); a group of one keeps its own opacity.
OPACITY_CAP = 1.0 - 1e-7
# Standard deviations below this many metres are raised to it: a flat merged patch stays a flat disc, not a
# degenerate one with a zero axis (and a log of minus infinity).
MIN_SIGMA = 1e-6


def rotation_matrices(quats_wxyz: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotations of (N, 4) quaternions (w, x, y, z), normalised first."""
    q = quats_wxyz.astype(np.float64)
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=1),
    ], axis=1)  # fmt: skip


def quaternions_from_rotations(rotations: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions (w, x, y, z) of (N, 3, 3) proper rotations (Shepperd: the largest of the four
    candidate components is computed first, so no division is by a small number)."""
    m = rotations.astype(np.float64)
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    candidates = np.stack([trace, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    choice = np.argmax(candidates, axis=1)
    quats = np.empty((len(m), 4))
    for case in range(4):
        rows = np.flatnonzero(choice == case)
        r = m[rows]
        if case == 0:
            s = 2.0 * np.sqrt(1.0 + trace[rows])
            parts = [
                0.25 * s,
                (r[:, 2, 1] - r[:, 1, 2]) / s,
                (r[:, 0, 2] - r[:, 2, 0]) / s,
                (r[:, 1, 0] - r[:, 0, 1]) / s,
            ]
        elif case == 1:
            s = 2.0 * np.sqrt(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2])
            parts = [
                (r[:, 2, 1] - r[:, 1, 2]) / s,
                0.25 * s,
                (r[:, 0, 1] + r[:, 1, 0]) / s,
                (r[:, 0, 2] + r[:, 2, 0]) / s,
            ]
        elif case == 2:
            s = 2.0 * np.sqrt(1.0 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2])
            parts = [
                (r[:, 0, 2] - r[:, 2, 0]) / s,
                (r[:, 0, 1] + r[:, 1, 0]) / s,
                0.25 * s,
                (r[:, 1, 2] + r[:, 2, 1]) / s,
            ]
        else:
            s = 2.0 * np.sqrt(1.0 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1])
            parts = [
                (r[:, 1, 0] - r[:, 0, 1]) / s,
                (r[:, 0, 2] + r[:, 2, 0]) / s,
                (r[:, 1, 2] + r[:, 2, 1]) / s,
                0.25 * s,
            ]
        quats[rows] = np.stack(parts, axis=1)
    return quats / np.linalg.norm(quats, axis=1, keepdims=True)


def covariances(cloud: GaussianCloud) -> np.ndarray:
    """(N, 3, 3) covariance matrices R S S^T R^T."""
    rotations = rotation_matrices(cloud.quats)
    variances = np.exp(2.0 * cloud.log_scales.astype(np.float64))
    return np.einsum("nij,nj,nkj->nik", rotations, variances, rotations)


def cross_section(log_scales: np.ndarray) -> np.ndarray:
    """(N,) pi times the product of the two largest standard deviations."""
    largest_two = np.sort(log_scales.astype(np.float64), axis=1)[:, 1:]
    return np.pi * np.exp(largest_two.sum(axis=1))


def masses(cloud: GaussianCloud) -> np.ndarray:
    """(N,) each Gaussian's opacity times its largest cross-section."""
    return 1.0 / (1.0 + np.exp(-cloud.opacities.astype(np.float64))) * cross_section(cloud.log_scales)


def _group_sums(groups: np.ndarray, count: int, weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per group, the weighted sum of ``values`` rows (any trailing shape)."""
    flat = (weights[:, None] * values.reshape(len(values), -1)).T
    sums = np.stack([np.bincount(groups, weights=row, minlength=count) for row in flat], axis=1)
    return sums.reshape((count, *values.shape[1:]))


def merge_groups(cloud: GaussianCloud, mass: np.ndarray, groups: np.ndarray) -> tuple[GaussianCloud, np.ndarray]:
    """One Gaussian per group label (0 to G-1, every label used), and the masses they carry.

    Args:
        cloud: the Gaussians.
        mass: (N,) their masses (:func:`masses`, or what an earlier merge returned).
        groups: (N,) the group of each.
    """
    count = int(groups.max()) + 1
    weight = np.maximum(mass.astype(np.float64), 1e-30)
    total = np.bincount(groups, weights=weight, minlength=count)
    share = weight / total[groups]
    mean = _group_sums(groups, count, share, cloud.means.astype(np.float64))
    offset = cloud.means.astype(np.float64) - mean[groups]
    second = covariances(cloud) + offset[:, :, None] * offset[:, None, :]
    covariance = _group_sums(groups, count, share, second)
    variances, axes = np.linalg.eigh(covariance)
    axes[np.linalg.det(axes) < 0, :, 0] *= -1.0  # a proper rotation: flipping one axis keeps the Gaussian
    log_scales = 0.5 * np.log(np.maximum(variances, MIN_SIGMA**2))
    opacity = np.clip(total / cross_section(log_scales), 1e-6, OPACITY_CAP)
    merged = GaussianCloud(
        means=mean,
        sh0=_group_sums(groups, count, share, cloud.sh0.astype(np.float64)),
        shN=_group_sums(groups, count, share, cloud.shN.astype(np.float64)),
        opacities=np.log(opacity / (1.0 - opacity)),
        log_scales=log_scales,
        quats=quaternions_from_rotations(axes),
    )
    return merged, opacity * cross_section(log_scales)
