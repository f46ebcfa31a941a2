"""complete_stage on events it must not act on, and how it reads a failed job's reason."""

from __future__ import annotations

import pytest

from spaceport.cloud import pipeline
from spaceport.cloud.models import Stage

from . import harness


def test_an_event_about_another_teams_job_is_ignored_without_describing_it(world):
    # GIVEN a state change event for a training job that is not ours (same account, another team)
    event = harness.load_event("sagemaker_training_state_change.json")
    event["detail"]["TrainingJobName"] = "forecast-nightly-2026-01-01"
    # WHEN it reaches the function (a rule broadened by hand, or an old rule)
    result = world.handlers["complete_stage"].lambda_handler(event, harness.FakeContext())
    # THEN it returns at once: no Describe call (our role may not describe their jobs), nothing resumed
    assert "ignored" in result
    assert world.sagemaker.described == []


@pytest.mark.parametrize(
    ("description", "error"),
    [
        # SageMaker's own words when it cannot get instances (its FailureReason starts with the error's name)
        ({"FailureReason": "CapacityError: Unable to provision requested ML compute capacity. Please retry "
                           "using a different ML instance type."}, "SageMakerCapacityUnavailableError"),
        ({"FailureReason": "InsufficientCapacityError: We currently do not have sufficient capacity to launch "
                           "the requested instance type."}, "SageMakerCapacityUnavailableError"),
        # A container's failure, reported by SageMaker as an AlgorithmError, is ours whatever words it holds
        ({"FailureReason": "AlgorithmError: train: internal error: OutOfMemoryError: CUDA out of memory. Tried to "
                           "allocate 2.00 GiB. GPU 0 has a total capacity of 22.06 GiB"}, "StageOutOfMemoryError"),
        ({"FailureReason": "AlgorithmError: train: the job exceeded its capacity estimate"}, "StageFailed"),
        ({"ExitMessage": "sfm: only 3 of 40 photos registered; capacity of the scene too low"}, "StageFailed"),
    ],
    ids=["capacity-error", "insufficient-capacity", "cuda-oom", "algorithm-error-saying-capacity", "exit-message"],
)  # fmt: skip
def test_only_sagemakers_own_capacity_markers_are_retried(description, error):
    # GIVEN a failed job's description WHEN its failure is read THEN only SageMaker's markers mean "no capacity"
    name, cause = pipeline.stage_failure(Stage.TRAIN, "Failed", description)
    assert name == error
    assert cause.startswith("train: ")


def test_an_out_of_memory_failure_says_what_to_change():
    # GIVEN a training job that ran out of GPU memory
    description = {"FailureReason": "AlgorithmError: train: internal error: OutOfMemoryError: CUDA out of memory."}
    # WHEN its failure is read
    name, cause = pipeline.stage_failure(Stage.TRAIN, "Failed", description)
    # THEN the reason keeps PyTorch's words and names the knobs: fewer Gaussians, smaller photos, a larger GPU
    assert name == "StageOutOfMemoryError"
    assert "CUDA out of memory" in cause
    assert "max_gaussians" in cause and "TrainInstanceType" in cause
