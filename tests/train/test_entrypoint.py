"""The container's entry point: SageMaker's ``train`` argument becomes ``spaceport train``."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ENTRYPOINT = Path(__file__).parents[2] / "containers" / "train" / "entrypoint.py"


def _load():
    spec = importlib.util.spec_from_file_location("train_entrypoint", ENTRYPOINT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sagemaker_train_argument_maps_to_the_train_command() -> None:
    # GIVEN the entry point WHEN given what SageMaker and a developer pass THEN it runs `spaceport train`
    entrypoint = _load()
    assert entrypoint.command_line(["train"]) == ["train"]
    assert entrypoint.command_line([]) == ["train"]
    assert entrypoint.command_line(["train", "--preset", "fast"]) == ["train", "--preset", "fast"]
    assert entrypoint.command_line(["--version"]) == ["--version"]
