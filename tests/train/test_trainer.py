"""The training loop's per-step choices: what each step is composited over, and what it is compared with."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from spaceport.train.config import preset_config
from spaceport.train.data import CameraView
from spaceport.train.densify import DensityStats
from spaceport.train.model import init_params
from spaceport.train.progress import ProgressLog
from spaceport.train.strategy import select_strategy
from spaceport.train.trainer import (
    TrainContext,
    TrainState,
    create_optimizer,
    evaluation_background,
    means_learning_rate,
    new_sky,
    training_background,
)

VIEW = CameraView("view", torch.zeros((6, 8, 3)), torch.tensor([[8.0, 0, 4], [0, 8, 3], [0, 0, 1]]), torch.eye(4),
                  8, 6)  # fmt: skip


def _state_and_context(background_mode: str) -> tuple[TrainState, TrainContext]:
    config = dataclasses.replace(preset_config("default", "cpu"), background_mode=background_mode)
    params = init_params(np.zeros((2, 3), np.float32), np.full((2, 3), 0.5, np.float32), 0, 0.5, "cpu")
    state = TrainState(params, create_optimizer(params, config, 1.0), DensityStats.zeros(2, "cpu"),
                       torch.Generator().manual_seed(0), sky=new_sky(config))  # fmt: skip
    context = TrainContext(config, [], None, torch.tensor(config.background), 1.0, ProgressLog(0),
                           select_strategy(config, 1.0))  # fmt: skip
    return state, context


def test_the_default_trains_and_scores_over_the_learned_sky() -> None:
    # GIVEN the default preset
    state, context = _state_and_context(preset_config("default", "cpu").background_mode)

    # WHEN a step's background and the evaluation background are drawn
    behind = training_background(state, context, VIEW)

    # THEN both are the sky model's image for the view (one colour per pixel, trainable), mid-grey before training
    assert context.config.background_mode == "sky"
    assert behind.shape == (6, 8, 3) and behind.requires_grad
    assert torch.allclose(behind, torch.full((6, 8, 3), 0.5))
    assert evaluation_background(state, context) is state.sky


def test_random_backgrounds_are_new_each_step_and_replayable() -> None:
    # GIVEN random backgrounds
    state, context = _state_and_context("random")

    # WHEN three steps draw their backgrounds
    drawn = [training_background(state, context, VIEW) for _ in range(3)]

    # THEN each is a new colour in [0, 1], drawn from the run's own generator (so a resumed run draws the same),
    # while evaluation keeps the configured background
    assert all(colour.shape == (3,) and 0 <= float(colour.min()) and float(colour.max()) <= 1 for colour in drawn)
    assert not torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[1], drawn[2])
    replay, _ = _state_and_context("random")
    assert torch.equal(training_background(replay, context, VIEW), drawn[0])
    assert torch.equal(evaluation_background(state, context).behind(VIEW), torch.zeros(3))


def test_a_fixed_background_is_used_as_configured() -> None:
    # GIVEN a fixed background
    state, context = _state_and_context("fixed")

    # THEN every step trains over the configured background, and no sky is made
    assert state.sky is None
    assert torch.equal(training_background(state, context, VIEW), context.background)


@pytest.mark.parametrize(
    ("device", "step", "expected"),
    [("cuda", 7000, 1.6e-4 * (1.6e-6 / 1.6e-4) ** (7 / 30)), ("cuda", 30_000, 1.6e-6), ("cpu", 3000, 4e-6)],
)
def test_the_position_learning_rate_decays_over_its_own_schedule(device: str, step: int, expected: float) -> None:
    # GIVEN the default preset on each device
    config = preset_config("default", device)

    # THEN the GPU's 7k-step run follows 3DGS's 30k-step decay (a third of the way down at its end), while the CPU
    # preset decays over its own run
    assert means_learning_rate(config, 1.0, step) == pytest.approx(expected, rel=1e-6)
