"""Presets and hyperparameter overrides."""

from __future__ import annotations

import pytest

from spaceport.contract import StageError
from spaceport.train.config import PRESETS, apply_overrides, build_config, preset_config


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
