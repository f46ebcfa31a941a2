"""Measuring compression: a synthetic but scene-like cloud, and a small reference renderer for render PSNR.

The renderer is plain numpy EWA splatting (Zwicker et al. 2001, as in 3DGS): project each Gaussian's
covariance through the camera Jacobian, evaluate SH colour along the view ray, composite front to back.
It is slow (every pixel against every Gaussian) and meant for small images: it compares two clouds
rendered the same way, not photos.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spaceport.gaussians import SH_C0, GaussianCloud, sh_coefficients_for_degree

# Real SH constants for bands 1 to 3 (the 3DGS reference implementation's order).
_SH_C1 = 0.4886025119029199
_SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
_SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
          1.445305721320277, -0.5900435899266435)  # fmt: skip
_ROW_BAND = 2


def synthetic_cloud(count: int, sh_degree: int = 3, seed: int = 0) -> GaussianCloud:
    """Gaussians laid on surfaces (a ground plane and spheres), colours varying smoothly in space, like a scene.

    Values follow what trained scenes show: log-scales around ln(0.02), mostly opaque, SH-rest small and
    shrinking with the band. Random but spatially coherent, so image compression sees realistic texels.
    """
    rng = np.random.default_rng(seed)
    on_ground = rng.random(count) < 0.4
    ground = np.column_stack([rng.uniform(-4, 4, count), rng.normal(-1.0, 0.02, count), rng.uniform(-4, 4, count)])
    centres = np.array([[0.0, 0.0, 0.0], [2.0, 0.5, -1.5], [-2.0, 0.2, 1.0]])
    radii = np.array([1.0, 0.6, 0.8])
    which = rng.integers(0, 3, count)
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    spheres = centres[which] + directions * (radii[which] + rng.normal(0, 0.01, count))[:, None]
    means = np.where(on_ground[:, None], ground, spheres) + np.array([0.3, -0.2, 1.5])
    phase = means @ np.array([[1.3, 0.4, -0.7], [0.2, -1.1, 0.9], [0.8, 0.6, 1.2]])
    sh0 = 1.2 * np.sin(phase) + rng.normal(0, 0.15, (count, 3))
    rest = sh_coefficients_for_degree(sh_degree)
    band_std = np.repeat([0.12, 0.06, 0.035], [3, 5, 7])[:rest]
    shN = rng.normal(size=(count, rest, 3)) * band_std[None, :, None] * 0.6
    shN += 0.4 * band_std[None, :, None] * np.sin(phase[:, None, :] * (1 + np.arange(rest))[None, :, None] * 0.3)
    log_scales = np.log(0.02) + rng.normal(0, 0.6, (count, 1)) + rng.normal(0, 0.4, (count, 3))
    opacities = np.where(rng.random(count) < 0.8, rng.normal(3.0, 1.5, count), rng.normal(-1.0, 1.5, count))
    quats = rng.normal(size=(count, 4)) * rng.uniform(0.5, 2.0, (count, 1))
    return GaussianCloud(means, sh0, shN, opacities, log_scales, quats)


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking from ``eye`` at ``target`` (y up), ``width`` x ``height`` pixels."""

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    width: int = 64
    height: int = 48
    focal: float = 60.0

    def world_to_camera(self) -> np.ndarray:
        """3x3 rotation whose rows are the camera's right, down and forward axes (OpenCV convention)."""
        forward = np.subtract(self.target, self.eye)
        forward = forward / np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        return np.stack([right, np.cross(forward, right), forward])


def _sh_colour(cloud: GaussianCloud, directions: np.ndarray) -> np.ndarray:
    """RGB per Gaussian seen along unit ``directions`` (N, 3), as 3DGS evaluates it."""
    x, y, z = directions[:, 0:1], directions[:, 1:2], directions[:, 2:3]
    basis = []
    if cloud.sh_degree >= 1:
        basis += [-_SH_C1 * y, _SH_C1 * z, -_SH_C1 * x]
    if cloud.sh_degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        basis += [_SH_C2[0] * x * y, _SH_C2[1] * y * z, _SH_C2[2] * (2 * zz - xx - yy), _SH_C2[3] * x * z]
        basis += [_SH_C2[4] * (xx - yy)]
    if cloud.sh_degree >= 3:
        basis += [_SH_C3[0] * y * (3 * xx - yy), _SH_C3[1] * x * y * z, _SH_C3[2] * y * (4 * zz - xx - yy)]
        basis += [_SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy), _SH_C3[4] * x * (4 * zz - xx - yy)]
        basis += [_SH_C3[5] * z * (xx - yy), _SH_C3[6] * x * (xx - 3 * yy)]
    colour = 0.5 + SH_C0 * cloud.sh0.astype(np.float64)
    for index, value in enumerate(basis):
        colour += value * cloud.shN[:, index, :]
    return np.maximum(colour, 0.0)


def _covariances(cloud: GaussianCloud) -> np.ndarray:
    """World covariances R S S^T R^T, (N, 3, 3)."""
    q = cloud.quats.astype(np.float64)
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    rotation = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=1).reshape(-1, 3, 3)  # fmt: skip
    scaled = rotation * np.exp(cloud.log_scales.astype(np.float64))[:, None, :]
    return scaled @ scaled.transpose(0, 2, 1)


def render(cloud: GaussianCloud, camera: Camera) -> np.ndarray:
    """Render to a (height, width, 3) float image on a black background."""
    rotation = camera.world_to_camera()
    points = (cloud.means.astype(np.float64) - camera.eye) @ rotation.T
    visible = points[:, 2] > 0.2
    cloud, points = cloud.subset(np.flatnonzero(visible)), points[visible]
    depth_order = np.argsort(points[:, 2])
    cloud, points = cloud.subset(depth_order), points[depth_order]
    x, y, z = points.T
    centre = np.column_stack([camera.focal * x / z + camera.width / 2, camera.focal * y / z + camera.height / 2])
    jacobian = np.zeros((len(z), 2, 3))
    jacobian[:, 0, 0] = jacobian[:, 1, 1] = camera.focal / z
    jacobian[:, 0, 2], jacobian[:, 1, 2] = -camera.focal * x / z**2, -camera.focal * y / z**2
    projection = jacobian @ rotation
    covariance_2d = projection @ _covariances(cloud) @ projection.transpose(0, 2, 1) + 0.3 * np.eye(2)
    conic = np.linalg.inv(covariance_2d)
    directions = cloud.means - np.asarray(camera.eye)
    colour = _sh_colour(cloud, directions / np.linalg.norm(directions, axis=1, keepdims=True))
    opacity = 1.0 / (1.0 + np.exp(-cloud.opacities.astype(np.float64)))
    # 3-sigma extent on screen: a band of rows only needs the Gaussians that reach it.
    radius = 3.0 * np.sqrt(np.stack([covariance_2d[:, 0, 0], covariance_2d[:, 1, 1]], axis=1))
    on_screen = (centre[:, 0] + radius[:, 0] >= 0) & (centre[:, 0] - radius[:, 0] <= camera.width)
    image = np.zeros((camera.height, camera.width, 3))
    cols = np.arange(camera.width) + 0.5
    for top in range(0, camera.height, _ROW_BAND):
        rows = np.arange(top, min(top + _ROW_BAND, camera.height)) + 0.5
        reach = on_screen & (centre[:, 1] + radius[:, 1] >= rows[0]) & (centre[:, 1] - radius[:, 1] <= rows[-1])
        index = np.flatnonzero(reach)  # still front to back
        pixels = np.stack(np.meshgrid(cols, rows), axis=-1).reshape(-1, 2)
        band = _composite(pixels, centre[index], conic[index], opacity[index], colour[index])
        image[top : top + len(rows)] = band.reshape(len(rows), camera.width, 3)
    return image.reshape(camera.height, camera.width, 3)


def _composite(pixels: np.ndarray, centre: np.ndarray, conic: np.ndarray, opacity: np.ndarray,
               colour: np.ndarray) -> np.ndarray:  # fmt: skip
    """Alpha-composite depth-sorted 2D Gaussians at ``pixels`` (P, 2); returns (P, 3)."""
    offset = pixels[:, None, :] - centre[None]
    power = -0.5 * (conic[:, 0, 0] * offset[..., 0] ** 2 + conic[:, 1, 1] * offset[..., 1] ** 2)
    power -= conic[:, 0, 1] * offset[..., 0] * offset[..., 1]
    alpha = np.minimum(0.99, opacity * np.exp(power))
    alpha[alpha < 1 / 255] = 0.0
    # Front to back: the transmittance before each Gaussian is an exclusive cumulative product.
    log_clear = np.log1p(-alpha)
    transmittance = np.exp(np.cumsum(log_clear, axis=1) - log_clear)
    return (transmittance * alpha) @ colour


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1] (values above 1 are clipped, as a display does)."""
    error = np.mean((np.clip(reference, 0, 1) - np.clip(image, 0, 1)) ** 2)
    return float("inf") if error == 0 else float(-10 * np.log10(error))


def orbit_cameras(count: int = 4, radius: float = 7.0, width: int = 64, height: int = 48) -> list[Camera]:
    """Cameras on a circle around the synthetic scene's centre, slightly above it."""
    target = (0.3, -0.2, 1.5)
    angles = np.linspace(0, 2 * np.pi, count, endpoint=False)
    eyes = [(target[0] + radius * np.cos(a), target[1] + 2.0, target[2] + radius * np.sin(a)) for a in angles]
    return [Camera(tuple(float(v) for v in eye), target, width, height, focal=width * 0.9) for eye in eyes]


def render_psnr(reference: GaussianCloud, candidate: GaussianCloud, cameras: list[Camera]) -> float:
    """Mean PSNR of ``candidate``'s renders against ``reference``'s, over ``cameras``."""
    return float(np.mean([psnr(render(reference, camera), render(candidate, camera)) for camera in cameras]))
