"""The training loop's per-step choices."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from spaceport.train.config import preset_config
from spaceport.train.densify import DensityStats
from spaceport.train.model import init_params
from spaceport.train.progress import ProgressLog
from spaceport.train.strategy import select_strategy
from spaceport.train.trainer import TrainContext, TrainState, create_optimizer, training_background


def _state_and_context(random_background: bool) -> tuple[TrainState, TrainContext]:
    config = dataclasses.replace(preset_config("default", "cpu"), random_background=random_background)
    params = init_params(np.zeros((2, 3), np.float32), np.full((2, 3), 0.5, np.float32), 0, 0.5, "cpu")
    state = TrainState(params, create_optimizer(params, config, 1.0), DensityStats.zeros(2, "cpu"),
                       torch.Generator().manual_seed(0))  # fmt: skip
    context = TrainContext(config, [], None, torch.tensor(config.background), 1.0, ProgressLog(0),
                           select_strategy(config, 1.0))  # fmt: skip
    return state, context


def test_photos_train_over_a_new_random_background_each_step_and_score_over_the_fixed_one() -> None:
    # GIVEN the default preset, which trains over random backgrounds
    state, context = _state_and_context(random_background=True)

    # WHEN three steps draw their backgrounds
    drawn = [training_background(state, context) for _ in range(3)]

    # THEN each is a new colour in [0, 1], drawn from the run's own generator (so a resumed run draws the same),
    # while evaluation keeps the configured background
    assert all(colour.shape == (3,) and 0 <= float(colour.min()) and float(colour.max()) <= 1 for colour in drawn)
    assert not torch.equal(drawn[0], drawn[1]) and not torch.equal(drawn[1], drawn[2])
    replay, _ = _state_and_context(random_background=True)
    assert torch.equal(training_background(replay, context), drawn[0])
    assert context.background.tolist() == [0.0, 0.0, 0.0]


def test_a_fixed_background_is_used_as_configured() -> None:
    # GIVEN random backgrounds turned off
    state, context = _state_and_context(random_background=False)

    # THEN every step trains over the configured background
    assert torch.equal(training_background(state, context), context.background)
