"""The CPU rasteriser against a brute-force float64 reference (tests/train/reference_rasterizer.py)."""

from __future__ import annotations

import math

import pytest
import torch

from spaceport.train import rasterize_cpu
from spaceport.train.rasterize_cpu import render

from .reference_rasterizer import reference_render

WIDTH, HEIGHT = 37, 29  # not a multiple of the tile size: partial tiles on the right and bottom
INPUT_NAMES = ("means", "quats", "log_scales", "opacity_logits", "colors")


def _camera(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A rotated, translated world-to-camera matrix (OpenCV axes) and intrinsics for WIDTH x HEIGHT."""
    generator = torch.Generator().manual_seed(seed)
    axis_angle = 0.3 * torch.randn(3, generator=generator)
    angle = axis_angle.norm()
    k = axis_angle / angle
    skew = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    rotation = torch.eye(3) + math.sin(angle) * skew + (1 - math.cos(angle)) * skew @ skew  # Rodrigues
    viewmat = torch.eye(4)
    viewmat[:3, :3] = rotation
    viewmat[:3, 3] = torch.tensor([0.1, -0.2, 0.3])
    K = torch.tensor([[30.0, 0.0, WIDTH / 2], [0.0, 31.0, HEIGHT / 2], [0.0, 0.0, 1.0]])
    return viewmat, K


def _scene(seed: int, count: int, opacity_shift: float = 0.0, behind: int = 0) -> dict[str, torch.Tensor]:
    """Gaussians about 3 units in front of the camera of ``_camera(seed)``; ``behind`` of them behind it."""
    generator = torch.Generator().manual_seed(seed)
    viewmat, _ = _camera(seed)
    cam = torch.randn(count, 3, generator=generator) * torch.tensor([0.9, 0.7, 0.5]) + torch.tensor([0, 0, 3.0])
    cam[:behind, 2] = -torch.rand(behind, generator=generator) - 0.005  # z < 0.01: culled
    means = (cam - viewmat[:3, 3]) @ viewmat[:3, :3]  # camera -> world (inverse of a rigid transform)
    return {
        "means": means,
        "quats": torch.randn(count, 4, generator=generator),
        "log_scales": torch.randn(count, 3, generator=generator) * 0.4 - 2.3,
        "opacity_logits": torch.randn(count, generator=generator) * 1.5 + opacity_shift,
        "colors": torch.rand(count, 3, generator=generator),
    }


def _render_both(scene: dict[str, torch.Tensor], seed: int):
    """Render with both rasterisers, backpropagate the same random loss, return results and gradients."""
    viewmat, K = _camera(seed)
    background = torch.tensor([0.2, 0.5, 0.7])
    generator = torch.Generator().manual_seed(seed + 1)
    image_weights = torch.randn(HEIGHT, WIDTH, 3, generator=generator, dtype=torch.float64)
    alpha_weights = torch.randn(HEIGHT, WIDTH, generator=generator, dtype=torch.float64)
    outputs = {}
    for name, fn in (("ours", render), ("reference", reference_render)):
        inputs = {key: value.clone().requires_grad_(True) for key, value in scene.items()}
        result = fn(**inputs, viewmat=viewmat, K=K, width=WIDTH, height=HEIGHT, background=background)
        image, alpha, means2d = (result.image, result.alpha, result.means2d) if name == "ours" else result
        if name == "reference":
            means2d.retain_grad()
        loss = (image.double() * image_weights).sum() + (alpha.double() * alpha_weights).sum()
        loss.backward()
        grads = {key: inputs[key].grad for key in INPUT_NAMES}
        outputs[name] = (image, alpha, means2d, grads, result)
    return outputs["ours"], outputs["reference"]


def _assert_gradients_close(ours: torch.Tensor, reference: torch.Tensor, name: str) -> None:
    ours, reference = ours.double(), reference.double()
    scale = reference.abs().max().clamp_min(1e-8)
    relative_error = (ours - reference).norm() / reference.norm().clamp_min(1e-12)
    assert relative_error < 2e-3, f"{name}: relative error {relative_error:.2e}"
    assert torch.allclose(ours, reference, rtol=1e-2, atol=2e-3 * scale), f"{name}: elementwise mismatch"


@pytest.mark.parametrize(
    ("seed", "count", "opacity_shift", "behind"),
    [
        (0, 40, 0.0, 0),  # mixed opacities, overlapping, crossing tile borders
        (1, 60, 0.0, 5),  # some behind the camera or inside the near plane
        (2, 50, 6.0, 0),  # saturating opacity: alpha clamps at 0.99, pixels stop early
    ],
)
def test_matches_reference_values_and_gradients(seed, count, opacity_shift, behind):
    # GIVEN a random scene and the same loss on both rasterisers
    scene = _scene(seed, count, opacity_shift, behind)

    # WHEN both render it and backpropagate
    (image, alpha, means2d, grads, _), (ref_image, ref_alpha, ref_means2d, ref_grads, _) = _render_both(scene, seed)

    # THEN images, opacity and every input's gradient agree
    assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == torch.float32
    assert alpha.shape == (HEIGHT, WIDTH)
    torch.testing.assert_close(image.double(), ref_image, atol=1e-5, rtol=0)
    torch.testing.assert_close(alpha.double(), ref_alpha, atol=1e-5, rtol=0)
    assert ref_alpha.max() > 0.5, "the scene should cover part of the image"
    for name in INPUT_NAMES:
        _assert_gradients_close(grads[name], ref_grads[name], name)
    _assert_gradients_close(means2d.grad, ref_means2d.grad, "means2d")


def test_saturated_pixels_stop_early():
    # GIVEN a stack of nearly opaque, large Gaussians in front of the camera
    scene = _scene(3, 40, opacity_shift=8.0)
    scene["log_scales"] = scene["log_scales"] + 2.0

    # WHEN rendered and backpropagated
    (image, alpha, _, grads, _), (ref_image, ref_alpha, _, ref_grads, _) = _render_both(scene, 3)

    # THEN many pixels stop at transmittance ~1e-4, and values and gradients still match the reference
    assert (ref_alpha > 0.9999 - 1e-6).sum() >= 10
    assert alpha.max() <= 1.0
    torch.testing.assert_close(image.double(), ref_image, atol=1e-5, rtol=0)
    torch.testing.assert_close(alpha.double(), ref_alpha, atol=1e-5, rtol=0)
    for name in INPUT_NAMES:
        _assert_gradients_close(grads[name], ref_grads[name], name)


def test_means2d_gradient_and_radii():
    # GIVEN a scene with five Gaussians behind the camera
    scene = _scene(4, 30, behind=5)
    viewmat, K = _camera(4)
    inputs = {key: value.clone().requires_grad_(True) for key, value in scene.items()}

    # WHEN rendered and backpropagated
    result = render(**inputs, viewmat=viewmat, K=K, width=WIDTH, height=HEIGHT, background=torch.zeros(3))
    result.image.sum().backward()

    # THEN the screen-space gradient is filled, and culled Gaussians have radius 0 and no gradient
    assert result.means2d.shape == (30, 2) and not result.means2d.is_leaf
    assert result.means2d.grad is not None and result.means2d.grad.shape == (30, 2)
    assert result.radii.dtype == torch.int32 and result.radii.shape == (30,)
    assert (result.radii[:5] == 0).all() and (result.radii[5:] > 0).any()
    assert (result.means2d.grad[:5] == 0).all() and result.means2d.grad[5:].abs().sum() > 0
    assert torch.isfinite(inputs["means"].grad).all() and (inputs["means"].grad[:5] == 0).all()


@pytest.mark.parametrize("count", [0, 7])
def test_empty_or_fully_culled_scene_is_background(count):
    # GIVEN no Gaussians, or only Gaussians behind the camera
    scene = _scene(5, count, behind=count)
    viewmat, K = _camera(5)
    background = torch.tensor([0.25, 0.5, 0.75])
    inputs = {key: value.clone().requires_grad_(True) for key, value in scene.items()}

    # WHEN rendered
    result = render(**inputs, viewmat=viewmat, K=K, width=WIDTH, height=HEIGHT, background=background)

    # THEN the image is the background, nothing is visible, and backward still works
    torch.testing.assert_close(result.image, background.expand(HEIGHT, WIDTH, 3))
    assert (result.alpha == 0).all() and (result.radii == 0).all()
    result.image.sum().backward()
    assert inputs["colors"].grad is not None and (inputs["colors"].grad == 0).all()


def test_image_does_not_depend_on_tile_size(monkeypatch):
    # GIVEN one scene rendered with 16-pixel tiles
    scene = _scene(6, 40)
    viewmat, K = _camera(6)
    kwargs = {"viewmat": viewmat, "K": K, "width": WIDTH, "height": HEIGHT, "background": torch.ones(3)}
    sixteen = render(**scene, **kwargs).image

    # WHEN rendered again with 8-pixel tiles
    monkeypatch.setattr(rasterize_cpu, "TILE_SIZE", 8)
    eight = render(**scene, **kwargs).image

    # THEN the images are identical (the three-sigma cut is per pixel, not per tile)
    assert torch.equal(sixteen, eight)


def test_absgrad_sums_each_pixels_pull_on_a_mean_without_letting_opposite_pulls_cancel():
    # GIVEN a few Gaussians on a small image and a loss weighting each pixel differently, some negatively
    scene = _scene(6, 4)
    viewmat, K = _camera(6)
    width, height = 12, 9
    K = K.clone()
    K[0, 2], K[1, 2], K[0, 0], K[1, 1] = width / 2, height / 2, 8.0, 8.0
    weights = torch.randn((height, width, 3), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    inputs = {key: value.clone().requires_grad_(True) for key, value in scene.items()}

    # WHEN rendered and backpropagated, and the reference's per-pixel gradients are summed in absolute value
    result = render(**inputs, viewmat=viewmat, K=K, width=width, height=height, background=torch.zeros(3),
                    absgrad=True)  # fmt: skip
    (result.image.double() * weights).sum().backward()
    reference_inputs = {key: value.clone().requires_grad_(True) for key, value in scene.items()}
    image, _, means2d = reference_render(**reference_inputs, viewmat=viewmat, K=K, width=width, height=height,
                                         background=torch.zeros(3))  # fmt: skip
    expected = torch.zeros_like(means2d)
    for row in range(height):
        for column in range(width):
            pixel = (image[row, column] * weights[row, column]).sum()
            expected += torch.autograd.grad(pixel, means2d, retain_graph=True)[0].abs()

    # THEN the rasteriser's absgrad matches, and bounds the plain gradient from above
    assert torch.allclose(result.means2d.absgrad.double(), expected, rtol=1e-3, atol=1e-5)
    assert (result.means2d.absgrad >= result.means2d.grad.abs() - 1e-6).all()
    assert float((result.means2d.absgrad - result.means2d.grad.abs()).max()) > 1e-4


def test_a_long_needle_seen_along_a_diagonal_keeps_a_positive_footprint_and_finite_gradients():
    # GIVEN the Gaussian that went NaN in a drone run: 61 units long, 4 mm thin, very opaque, seen from 2 units away
    # along a direction where float32 lost its 2D covariance's determinant to cancellation (it came out negative)
    rotation = torch.tensor([[-0.770761, -0.635861, -0.040111], [0.634167, -0.759602, -0.14435],
                             [0.061318, -0.136696, 0.988713]])  # fmt: skip
    viewmat = torch.eye(4)
    viewmat[:3, :3] = rotation
    in_camera = torch.tensor([0.1905, 0.0984, 2.0817])
    inputs = {"means": (rotation.T @ in_camera)[None], "quats": torch.tensor([[1.09004, 0.03126, -0.018329, 0.140986]]),
              "log_scales": torch.tensor([[-5.43957, 4.11453, 0.49928]]), "opacity_logits": torch.tensor([11.42]),
              "colors": torch.tensor([[0.6, 0.5, 0.4]])}  # fmt: skip
    inputs = {key: value.requires_grad_(True) for key, value in inputs.items()}
    K = torch.tensor([[400.0, 0.0, 240.0], [0.0, 400.0, 180.0], [0.0, 0.0, 1.0]])

    # WHEN projected, rendered and backpropagated
    shape = (inputs["means"], inputs["quats"], inputs["log_scales"], inputs["opacity_logits"])
    projection = rasterize_cpu._project(*shape, viewmat, K, 480, 360)
    result = render(**inputs, viewmat=viewmat, K=K, width=480, height=360, background=torch.zeros(3))
    (result.image.sum() + result.alpha.sum()).backward()

    # THEN its footprint has positive axes (the conic's diagonal), the render is finite, and so is every gradient
    a, _, c = projection.conics[0].detach().tolist()
    assert a > 0 and c > 0
    assert torch.isfinite(result.image).all() and torch.isfinite(result.alpha).all()
    assert all(torch.isfinite(value.grad).all() for value in inputs.values())
