"""The gsplat backend on a CUDA GPU: same picture as the CPU rasteriser, and training works end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.cuda

if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)
gsplat = pytest.importorskip("gsplat")

from spaceport.train.backend import render_gsplat  # noqa: E402
from spaceport.train.losses import psnr  # noqa: E402
from spaceport.train.rasterize_cpu import render  # noqa: E402
from spaceport.train.stage import TrainPaths, train_stage  # noqa: E402

from .synthetic import SyntheticSpec, ground_truth, intrinsics, orbit_viewmats  # noqa: E402


def test_gsplat_renders_what_the_cpu_rasteriser_renders() -> None:
    # GIVEN the synthetic Gaussians and one of its cameras, on both devices
    spec = SyntheticSpec()
    truth = ground_truth(spec)
    viewmat = torch.tensor(orbit_viewmats(spec)[3], dtype=torch.float32)
    K = torch.tensor(intrinsics(spec), dtype=torch.float32)
    background = torch.tensor([0.2, 0.3, 0.4])
    args = [truth["means"], truth["quats"], truth["log_scales"], truth["opacity_logits"], truth["colors"]]

    # WHEN rendered by each backend (gsplat with gradients on, to check means2d)
    cpu = render(*args, viewmat, K, spec.width, spec.height, background)
    cuda_args = [value.cuda().requires_grad_(True) for value in args]
    gpu = render_gsplat(*cuda_args, viewmat.cuda(), K.cuda(), spec.width, spec.height, background.cuda())
    gpu.image.sum().backward()

    # THEN the images agree closely, the same Gaussians are visible, and means2d got a pixel gradient
    assert psnr(gpu.image.detach().cpu(), cpu.image.detach()) > 35.0
    assert gpu.image.shape == (spec.height, spec.width, 3) and gpu.alpha.shape == (spec.height, spec.width)
    visible_cpu, visible_gpu = cpu.radii > 0, gpu.radii.cpu() > 0
    assert (visible_cpu == visible_gpu).float().mean() > 0.95
    assert gpu.means2d.grad is not None and gpu.means2d.grad.reshape(-1, 2).shape == (spec.gaussians, 2)


def test_training_on_cuda_beats_the_start(tmp_path: Path, synthetic_sfm: Path) -> None:
    # GIVEN the synthetic scene and the fast preset on CUDA, shortened
    paths = TrainPaths(synthetic_sfm, tmp_path / "model", tmp_path / "ckpt", tmp_path / "failure", tmp_path / "hp")
    # (the synthetic scene is see-through over black, unlike a photo: it trains over its own black background)
    settings = {"preset": "fast", "device": "cuda", "iterations": "600", "checkpoint_every": "300",
                "background_mode": "fixed"}  # fmt: skip

    # WHEN trained
    manifest = train_stage(paths, settings)

    # THEN it ran on the GPU and clearly improved on the held-out views
    assert manifest["device"] == "cuda"
    assert manifest["psnr_test"] > manifest["psnr_initial"] + 5.0, manifest


def test_the_sky_and_the_near_camera_rule_mean_the_same_on_both_backends() -> None:
    # GIVEN the synthetic Gaussians, a trained-looking sky, and a near field around the first camera
    from spaceport.train.background import SkyModel
    from spaceport.train.data import CameraView
    from spaceport.train.near_field import NearField, unwanted
    from spaceport.train.trainer import render_view

    spec = SyntheticSpec()
    truth = ground_truth(spec)
    params = {"means": truth["means"], "quats": truth["quats"], "log_scales": truth["log_scales"],
              "opacity_logits": truth["opacity_logits"] - 2.0, "sh0": ((truth["colors"] - 0.5) / 0.28209479)[:, None],
              "shN": torch.zeros((spec.gaussians, 3, 3))}  # fmt: skip
    viewmat, K = torch.tensor(orbit_viewmats(spec)[3], dtype=torch.float32), torch.tensor(intrinsics(spec)).float()
    skies = {device: SkyModel(2, 0.01, device) for device in ("cpu", "cuda")}
    for sky in skies.values():
        with torch.no_grad():
            sky.coefficients[0] = torch.tensor([0.6, 0.8, 1.2])
            sky.coefficients[2] = torch.tensor([0.3, 0.2, -0.1])

    # WHEN one view is rendered over the sky by each backend, and the near rule asked on each device
    results = {}
    for device, renderer in (("cpu", render), ("cuda", render_gsplat)):
        view = CameraView("v", torch.zeros((spec.height, spec.width, 3), device=device), K.to(device),
                          viewmat.to(device), spec.width, spec.height)  # fmt: skip
        on_device = {name: value.to(device) for name, value in params.items()}
        image = render_view(on_device, view, 0, renderer, skies[device].behind(view)).image
        field = NearField(torch.tensor([[3.0, 0.0, 0.5]], device=device), torch.tensor([2.0], device=device),
                          viewmat[None].to(device), K[None].to(device),
                          torch.tensor([[spec.width, spec.height]], device=device, dtype=torch.float32), 0)  # fmt: skip
        results[device] = (image.detach().cpu(), unwanted(on_device, field).cpu())

    # THEN the composited images agree as the plain renders do, and the rule removes the same Gaussians
    assert psnr(results["cuda"][0], results["cpu"][0]) > 35.0
    assert torch.equal(results["cuda"][1], results["cpu"][1]) and 0 < int(results["cpu"][1].sum()) < spec.gaussians


def test_training_on_cuda_with_the_default_sky_exports_its_shell(tmp_path: Path, synthetic_sfm: Path) -> None:
    # GIVEN the synthetic scene and the fast preset on CUDA with the learned sky (the preset's default)
    paths = TrainPaths(synthetic_sfm, tmp_path / "model", tmp_path / "ckpt", tmp_path / "failure", tmp_path / "hp")

    # WHEN trained
    manifest = train_stage(paths, {"preset": "fast", "device": "cuda", "iterations": "600", "checkpoint_every": "0"})

    # THEN it improved on the held-out views and the PLY carries the shell after the trained Gaussians
    shell = manifest["sky_shell"]
    assert (
        manifest["background_mode"] == "sky"
        and shell["first"] + shell["beyond_shell_dropped"] == manifest["num_gaussians"]
        and 0.0 < shell["seen_share"] < 1.0
    )
    assert manifest["psnr_test"] > manifest["psnr_initial"] + 5.0, manifest
