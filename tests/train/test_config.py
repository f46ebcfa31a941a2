"""Presets and hyperparameter overrides."""

from __future__ import annotations

import pytest

from spaceport.contract import StageError
from spaceport.train.config import PRESETS, apply_overrides, build_config, fitted_to_capture, preset_config


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_presets_grow_in_effort(device: str) -> None:
    # GIVEN the three presets for one device
    configs = [preset_config(name, device) for name in PRESETS]

    # THEN each spends more iterations than the one before, and densification ends before training does
    assert [c.iterations for c in configs] == sorted({c.iterations for c in configs})
    for config in configs:
        assert config.densify_from < config.densify_until <= config.iterations
        assert config.device == device


def test_cpu_presets_cap_resolution_and_gpu_presets_follow_3dgs() -> None:
    # GIVEN the default preset on both devices
    cpu, cuda = preset_config("default", "cpu"), preset_config("default", "cuda")

    # THEN the CPU trains small and short, the GPU at (capped) full resolution for 7k iterations
    assert 0 < cpu.resolution <= 640 and cpu.iterations < cuda.iterations
    assert cuda.iterations == 7000 and cuda.resolution == 1600
    assert preset_config("quality", "cuda").iterations == 30_000


def test_hyperparameter_strings_override_single_fields() -> None:
    # GIVEN SageMaker-style string hyperparameters, some unknown to us
    overrides = {"iterations": "42", "ssim_lambda": "0.3", "background": "[1, 1, 1]", "sagemaker_region": "x"}

    # WHEN applied to a preset
    config = apply_overrides(preset_config("fast", "cpu"), overrides)

    # THEN known fields are parsed to their types, unknown ones are kept aside, the rest stays
    assert config.iterations == 42 and config.ssim_lambda == pytest.approx(0.3)
    assert config.background == (1.0, 1.0, 1.0)
    assert config.extra == {"sagemaker_region": "x"}
    assert config.resolution == preset_config("fast", "cpu").resolution


@pytest.mark.parametrize(
    ("hyperparameters", "message"),
    [
        ({"preset": "turbo", "device": "cpu"}, "unknown preset"),
        ({"device": "tpu"}, "unknown device"),
        ({"device": "cpu", "iterations": "many"}, "iterations"),
        ({"device": "cpu", "sh_degree": "5"}, "sh_degree"),
        ({"device": "cpu", "strategy": "genetic"}, "strategy 'genetic'.*adc, mcmc"),
        ({"device": "cpu", "background_mode": "white"}, "background_mode 'white'.*sky, random, fixed"),
        ({"device": "cpu", "sky_sh_degree": "4"}, "sky_sh_degree"),
        ({"device": "cpu", "near_camera_fraction": "-0.1"}, "near_camera_fraction"),
    ],
)
def test_bad_hyperparameters_are_the_users_error(hyperparameters: dict[str, str], message: str) -> None:
    # WHEN building a config from bad values THEN a StageError names the problem
    with pytest.raises(StageError, match=message):
        build_config(hyperparameters)


def test_a_shorter_run_compresses_the_preset_schedule_unless_a_step_is_given() -> None:
    # GIVEN the CPU default preset (3000 steps: densify until 2200, reset every 1000, a new SH band every 500)
    preset = preset_config("default", "cpu")

    # WHEN asked for half the steps, once alone and once with densify_until given explicitly
    halved = apply_overrides(preset, {"iterations": "1500"})
    explicit = apply_overrides(preset, {"iterations": "1500", "densify_until": "1400"})

    # THEN the schedule keeps its shape (densification still stops before the end, resets stay where they can be
    # recovered from), and a value given explicitly is kept as given
    assert halved.iterations == 1500
    assert (halved.densify_from, halved.densify_until) == (50, 1100)
    assert (halved.opacity_reset_every, halved.sh_degree_interval) == (500, 250)
    assert explicit.densify_until == 1400 and explicit.opacity_reset_every == 500


def test_every_cpu_preset_trains_with_the_short_run_learning_rates() -> None:
    # GIVEN the CPU presets (a few thousand steps, where 3DGS's 30k-step rates move colours and positions too slowly)
    fast, default, quality = (preset_config(name, "cpu") for name in PRESETS)

    # THEN all three move positions at the short-run rate, quality included (it did not, before)
    assert fast.lr_means == default.lr_means == quality.lr_means == 4e-4
    assert quality.densify_grad_threshold == default.densify_grad_threshold


def test_an_iterations_override_stretches_the_schedule_but_keeps_run_length_decay() -> None:
    # GIVEN the CPU default (position decay over the run) and the GPU default (over 3DGS's 30k steps)
    cpu = apply_overrides(preset_config("default", "cpu"), {"iterations": "1500"})
    cuda = apply_overrides(preset_config("default", "cuda"), {"iterations": "3500"})

    # THEN the CPU run still decays over its own (new) length, and the GPU decay stretches with the run
    assert cpu.lr_means_decay_steps == 0 and cpu.densify_until == 1100
    assert cuda.lr_means_decay_steps == 15_000


@pytest.mark.parametrize(("photos", "degree"), [(9, 1), (25, 2), (28, 2), (40, 3)])
def test_the_sh_degree_follows_the_photo_count_when_asked(photos: int, degree: int) -> None:
    # GIVEN the default preset with the photo-count rule on, and off
    config = apply_overrides(preset_config("default", "cpu"), {"sh_degree_by_photos": "true"})
    off = preset_config("default", "cpu")

    # THEN few photos get few SH bands, and without the rule the preset's degree stands
    assert fitted_to_capture(config, photos).sh_degree == degree
    assert fitted_to_capture(off, photos).sh_degree == off.sh_degree
