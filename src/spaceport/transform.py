"""Similarity transforms of what a run makes: points, camera poses and Gaussians, spherical harmonics included.

A similarity maps ``x_new = scale * rotation @ x_old + translation``. Under it a Gaussian's mean moves like a
point, its rotation is pre-multiplied by ``rotation``, its log-scales grow by ``log(scale)`` and its view-dependent
colour must be re-expressed: the same colour is now seen along the rotated direction ``rotation @ d``. Each real SH
band ``l`` mixes only within itself under a rotation, ``Y_l(R d) = D_l(R) Y_l(d)``, so the band's coefficients
become ``D_l^-T c`` (``D_l`` is orthogonal for the orthonormal basis 3DGS uses, so that is ``D_l c``). ``D_l`` is
solved for from the basis sampled at directions spread over the sphere rather than written out from Wigner
formulas: the basis is the renderer's own (``spaceport.train.model``), so its ordering and sign conventions
cannot drift apart from what training and the viewer evaluate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from spaceport.gaussians import GaussianCloud

# Enough directions to over-determine band 3 (7 functions) many times over; a Fibonacci lattice covers the
# sphere evenly, so the least-squares solve is well conditioned.
SH_SAMPLE_DIRECTIONS = 96


@dataclass(frozen=True)
class Similarity:
    """``x_new = scale * rotation @ x_old + translation``.

    Attributes:
        scale: positive factor.
        rotation: (3, 3) proper rotation.
        translation: (3,) offset, in the new frame's units.
    """

    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self) -> None:
        rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3, 3)
        if not self.scale > 0 or not math.isfinite(self.scale):
            raise ValueError(f"a similarity's scale must be positive and finite, not {self.scale}")
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
            raise ValueError("a similarity's rotation must be a proper rotation matrix")
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "translation", np.asarray(self.translation, dtype=np.float64).reshape(3))

    @classmethod
    def identity(cls) -> Similarity:
        return cls(1.0, np.eye(3), np.zeros(3))

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) points, or one (3,) point, in the new frame."""
        points = np.asarray(points, dtype=np.float64)
        return self.scale * points @ self.rotation.T + self.translation

    def then(self, after: Similarity) -> Similarity:
        """This transform followed by ``after``."""
        return Similarity(after.scale * self.scale, after.rotation @ self.rotation,
                          after.scale * after.rotation @ self.translation + after.translation)  # fmt: skip

    def inverse(self) -> Similarity:
        inverse_rotation = self.rotation.T
        return Similarity(1.0 / self.scale, inverse_rotation, -(inverse_rotation @ self.translation) / self.scale)

    def to_pycolmap(self) -> Any:
        """The same transform as a ``pycolmap.Sim3d`` (for ``Reconstruction.transform``)."""
        import pycolmap

        return pycolmap.Sim3d(self.scale, pycolmap.Rotation3d(self.rotation), self.translation)

    @classmethod
    def from_pycolmap(cls, sim3d: Any) -> Similarity:
        return cls(float(np.asarray(sim3d.scale)), sim3d.rotation.matrix(), np.asarray(sim3d.translation))

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": self.scale,
            "rotation": self.rotation.tolist(),
            "translation": self.translation.tolist(),
            "maps": "x_new = scale * rotation @ x_old + translation",
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> Similarity:
        return cls(payload["scale"], np.array(payload["rotation"]), np.array(payload["translation"]))


def rotation_between(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) that turns unit vector ``source`` onto unit vector ``target``."""
    source = np.asarray(source, dtype=np.float64) / np.linalg.norm(source)
    target = np.asarray(target, dtype=np.float64) / np.linalg.norm(target)
    axis = np.cross(source, target)
    sine, cosine = np.linalg.norm(axis), float(source @ target)
    if sine < 1e-12:
        if cosine > 0:
            return np.eye(3)
        # Opposite vectors: half a turn about any axis perpendicular to them.
        helper = np.eye(3)[np.argmin(np.abs(source))]
        axis = np.cross(source, helper)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    axis /= sine
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + sine * cross + (1 - cosine) * cross @ cross


def quaternion_from_matrix(rotation: np.ndarray) -> np.ndarray:
    """(w, x, y, z) unit quaternion of a rotation matrix (Shepperd's method: stable for every angle)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    quaternion = np.array(q)
    return quaternion / np.linalg.norm(quaternion)


def quaternion_multiply(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Hamilton products ``left * right`` of (w, x, y, z) quaternions; either may be (4,) or (N, 4)."""
    w1, x1, y1, z1 = np.moveaxis(np.asarray(left, dtype=np.float64), -1, 0)
    w2, x2, y2, z2 = np.moveaxis(np.asarray(right, dtype=np.float64), -1, 0)
    return np.stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], axis=-1)  # fmt: skip


def sh_basis(directions: np.ndarray, degree: int) -> np.ndarray:
    """(N, (degree+1)^2 - 1) real SH of bands 1..degree at unit ``directions`` (N, 3), in the PLY's ``f_rest`` order.

    The same functions and constants as the training renderer (``spaceport.train.model``), in numpy.
    """
    from spaceport.train.model import SH_C1, SH_C2, SH_C3

    x, y, z = np.asarray(directions, dtype=np.float64).T
    columns: list[np.ndarray] = []
    if degree >= 1:
        columns += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        columns += [SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2 * zz - xx - yy), SH_C2[3] * x * z,
                    SH_C2[4] * (xx - yy)]  # fmt: skip
    if degree >= 3:
        columns += [
            SH_C3[0] * y * (3 * xx - yy),
            SH_C3[1] * x * y * z,
            SH_C3[2] * y * (4 * zz - xx - yy),
            SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            SH_C3[4] * x * (4 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3 * yy),
        ]
    return np.stack(columns, axis=1) if columns else np.zeros((len(x), 0))


def fibonacci_sphere(count: int) -> np.ndarray:
    """(count, 3) unit vectors spread evenly over the sphere."""
    index = np.arange(count) + 0.5
    z = 1.0 - 2.0 * index / count
    azimuth = math.pi * (1.0 + math.sqrt(5.0)) * index
    radius = np.sqrt(1.0 - z * z)
    return np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth), z], axis=1)


def sh_band_rotations(rotation: np.ndarray, degree: int) -> list[np.ndarray]:
    """For bands 1..degree, the (2l+1, 2l+1) matrix ``M_l`` that maps a band's coefficients into the rotated frame.

    ``M_l = D_l^-T`` where ``Y_l(R d) = D_l Y_l(d)``: then ``sum c'_l Y_l(R d) = sum c_l Y_l(d)``, so a Gaussian seen
    along ``R d`` in the new frame shows the colour it showed along ``d`` in the old one.
    """
    directions = fibonacci_sphere(SH_SAMPLE_DIRECTIONS)
    before = sh_basis(directions, degree)
    after = sh_basis(directions @ np.asarray(rotation, dtype=np.float64).T, degree)
    matrices, start = [], 0
    for band in range(1, degree + 1):
        width = 2 * band + 1
        columns = slice(start, start + width)
        # after = before @ D^T, solved in the least-squares sense (exact up to rounding: D exists by theory).
        d_transposed, *_ = np.linalg.lstsq(before[:, columns], after[:, columns], rcond=None)
        matrices.append(np.linalg.inv(d_transposed))  # (D^T)^-1 = D^-T
        start += width
    return matrices


def rotate_sh(sh_rest: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """(N, K, 3) higher-order SH coefficients (``f_rest`` order) re-expressed in a frame rotated by ``rotation``."""
    coefficients = np.asarray(sh_rest, dtype=np.float64)
    if coefficients.shape[1] == 0:
        return coefficients.astype(np.float32)
    from spaceport.gaussians import sh_degree_for_coefficients

    rotated, start = np.empty_like(coefficients), 0
    for matrix in sh_band_rotations(rotation, sh_degree_for_coefficients(coefficients.shape[1])):
        width = len(matrix)
        rotated[:, start : start + width] = np.einsum("ij,njc->nic", matrix, coefficients[:, start : start + width])
        start += width
    return rotated.astype(np.float32)


def transform_cloud(cloud: GaussianCloud, similarity: Similarity) -> GaussianCloud:
    """The Gaussians of ``cloud`` carried into the frame ``similarity`` maps to: they render the same images there."""
    rotation_quaternion = quaternion_from_matrix(similarity.rotation)
    return GaussianCloud(
        means=similarity.apply(cloud.means),
        sh0=cloud.sh0,
        shN=rotate_sh(cloud.shN, similarity.rotation),
        opacities=cloud.opacities,
        log_scales=cloud.log_scales.astype(np.float64) + math.log(similarity.scale),
        # R_new = R_sim @ R_gaussian; the product keeps each quaternion's norm (the PLY need not normalise it).
        quats=quaternion_multiply(rotation_quaternion, cloud.quats),
    )
