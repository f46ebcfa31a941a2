"""The training memory model: its sizes come from the COLMAP model, its refusals name what to change, and its
torch-side figures cover what autograd really keeps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spaceport.cli import main
from spaceport.train import memory
from spaceport.train.config import preset_config
from spaceport.train.losses import training_loss
from spaceport.train.memory import GIB, RunSize, estimate_bytes, per_gaussian_bytes, refusal_reason, run_size
from spaceport.train.model import init_params, sh_colors

from .synthetic import SyntheticSpec


def _saved_bytes(compute, inputs: list[torch.Tensor]) -> int:  # noqa: ANN001
    """Bytes of the tensors autograd saves for the backward pass while ``compute`` runs, inputs left out."""
    inputs_storage = {tensor.untyped_storage().data_ptr() for tensor in inputs}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in inputs_storage:
            saved[storage.data_ptr()] = max(saved.get(storage.data_ptr(), 0), storage.nbytes())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        compute()
    return sum(saved.values())


def test_run_size_counts_the_views_and_the_points_without_loading_images(
    synthetic_sfm: Path, synthetic_spec: SyntheticSpec
) -> None:
    # GIVEN the synthetic capture (16 views of 64x48) and a configuration capped below its point count
    config = preset_config("fast", "cpu")
    config.max_gaussians, config.resolution = 10, 32

    # WHEN its size is read
    size = run_size(config, synthetic_sfm)

    # THEN every view counts at the training resolution, the full size is scored, and the SfM points set N
    assert (size.longest_side, size.step_pixels) == (32, 32 * 24)
    assert size.stored_pixels == synthetic_spec.views * 32 * 24
    assert size.eval_pixels == synthetic_spec.width * synthetic_spec.height
    assert size.gaussians == synthetic_spec.points and size.sh_degree == config.sh_degree


def test_a_run_that_fits_is_not_refused() -> None:
    # GIVEN the CUDA default preset's cap on a 300-photo capture at 1600 px, on an 80 GB GPU
    size = RunSize(3_000_000, 3, 1600, 1600 * 1067, 300 * 1600 * 1067, 5472 * 3648)

    # WHEN checked, THEN it fits, and the estimate is the sum of its terms with headroom
    assert refusal_reason(size, "cuda", 80 * GIB) is None
    estimate = estimate_bytes(size, "cuda")
    assert estimate.total_bytes == int(memory.HEADROOM * sum(estimate.parts.values()))
    assert 10 * GIB < estimate.total_bytes < 40 * GIB


def test_too_many_gaussians_names_max_gaussians_with_a_value_that_fits() -> None:
    # GIVEN 20M Gaussians on few small views, on a 24 GiB GPU
    size = RunSize(20_000_000, 3, 800, 800 * 533, 30 * 800 * 533, 800 * 533)

    # WHEN checked
    reason = refusal_reason(size, "cuda", 24 * GIB)

    # THEN the reason blames the Gaussians and proposes a cap that the model says fits
    assert reason is not None and "20,000,000 Gaussians" in reason and "max_gaussians to at most" in reason
    proposed = int(reason.split("max_gaussians to at most ")[1].split(",")[0].split()[0])
    smaller = RunSize(proposed, 3, 800, size.step_pixels, size.stored_pixels, size.eval_pixels)
    assert refusal_reason(smaller, "cuda", 24 * GIB) is None
    assert "GPU memory" in reason


def test_many_large_views_name_the_resolution_with_a_value_that_fits() -> None:
    # GIVEN 1,000 photos at 1600 px (as float32 on the device) and 1M Gaussians, on a 24 GiB GPU
    size = RunSize(1_000_000, 3, 1600, 1600 * 1067, 1000 * 1600 * 1067, 1600 * 1067)

    # WHEN checked
    reason = refusal_reason(size, "cuda", 24 * GIB)

    # THEN the stored views are blamed and a lower resolution that fits is proposed, beside a larger instance
    assert reason is not None and "views held on the device" in reason and "an instance with at least" in reason
    side = int(reason.split("resolution to at most ")[1].split()[0])
    scale = (side / 1600) ** 2
    smaller = RunSize(1_000_000, 3, side, int(size.step_pixels * scale), int(size.stored_pixels * scale),
                      size.eval_pixels)  # fmt: skip
    assert refusal_reason(smaller, "cuda", 24 * GIB) is None


def test_the_sh_colour_figure_covers_what_autograd_saves() -> None:
    # GIVEN SH-3 parameters for 2,000 Gaussians
    count = 2000
    points = np.random.default_rng(0).normal(size=(count, 3)).astype(np.float32)
    params = init_params(points, np.full((count, 3), 0.5, np.float32), 3, 0.1, "cpu")

    # WHEN the colour and the activations gsplat is given are computed under autograd
    def colours() -> None:
        sh_colors(params, 3, torch.tensor([0.0, 0.0, -5.0]))
        torch.exp(params["log_scales"]), torch.sigmoid(params["opacity_logits"])

    saved = _saved_bytes(colours, list(params.values()))

    # THEN the model's SH colour figure holds at least what is saved (the rest is its transient product)
    assert saved / count <= per_gaussian_bytes(3, "cuda")["SH colour graph"] - 2 * 3 * 15 * memory.FLOAT


def test_the_loss_figure_covers_what_autograd_saves() -> None:
    # GIVEN a rendered image that needs gradients and its photo
    image, photo = torch.rand(60, 80, 3, requires_grad=True), torch.rand(60, 80, 3)

    # WHEN the training loss is computed
    saved = _saved_bytes(lambda: training_loss(image, photo, 0.2), [image, photo])

    # THEN the model's loss figure is at least what is saved, doubled for the backward pass
    assert 2 * saved / (60 * 80) <= memory.per_pixel_bytes("cuda")["L1 + SSIM loss graph and its backward"] + 1


def test_the_stage_refuses_before_loading_images(
    tmp_path: Path, synthetic_sfm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a run capped at 50M Gaussians on a device of 8 GiB, and a loader that must not be reached
    monkeypatch.setattr(memory, "device_memory_bytes", lambda device: 8 * GIB)

    def no_loading(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("images were loaded before the memory check")

    monkeypatch.setattr("spaceport.train.data.load_scene", no_loading)
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    hyperparameters = {"preset": "fast", "device": "cpu", "max_gaussians": "50000000"}
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))

    # WHEN the container command runs on the synthetic capture
    code = main(["train", "--ml-root", str(tmp_path), "--sfm", str(synthetic_sfm)])

    # THEN it fails with a reason naming what to change, and no manifest claims completion
    assert code == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert "needs about" in reason and "50,000,000 Gaussians" in reason and "max_gaussians to at most" in reason
    assert not (tmp_path / "model" / "manifest.json").exists()
