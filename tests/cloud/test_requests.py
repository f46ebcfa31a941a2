"""Every SageMaker request we build passes botocore's model; job names are valid and fresh."""

from __future__ import annotations

import pytest

from spaceport.cloud import sagemaker_requests as requests
from spaceport.cloud.models import Stage
from spaceport.cloud.names import SAGEMAKER_NAME, sagemaker_job_name
from spaceport.cloud.settings import stage_settings

from .harness import check_request

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/spaceport-sfm@sha256:" + "0" * 64


@pytest.mark.parametrize("spot", ["false", "true"])
def test_stage_requests_match_the_sagemaker_model(monkeypatch, spot):
    # GIVEN the stage settings, with and without managed spot training
    monkeypatch.setenv("SPOT_TRAINING", spot)
    settings = stage_settings()
    # WHEN each stage's request is built THEN botocore accepts it
    check_request("sagemaker", "CreateProcessingJob", requests.sfm_request(settings, "sp-a-sfm-a1-x", "a", IMAGE))
    train = requests.train_request(settings, "sp-a-train-a1-x", "a", IMAGE, {"preset": "quality", "iterations": 7000})
    check_request("sagemaker", "CreateTrainingJob", train)
    model = "s3://spaceport-data/jobs/a/train/sp-a-train-a1-x/output/model.tar.gz"
    compress = requests.compress_request(settings, "sp-a-compress-a1-x", "a", IMAGE, model)
    check_request("sagemaker", "CreateProcessingJob", compress)
    assert train["HyperParameters"] == {"preset": "quality", "device": "cuda", "iterations": "7000"}
    assert ("CheckpointConfig" in train) == (spot == "true")
    if spot == "true":
        assert train["StoppingCondition"]["MaxWaitTimeInSeconds"] >= train["StoppingCondition"]["MaxRuntimeInSeconds"]


def test_the_compress_stage_reads_the_sfm_stages_georef_json_for_the_exports():
    # GIVEN a job's trained model and the georef.json its sfm stage wrote
    model = "s3://spaceport-data/jobs/a/train/sp-a-train-a1-x/output/model.tar.gz"
    georef = "s3://spaceport-data/jobs/a/sfm/georef.json"
    # WHEN the compress stage's request is built
    request = requests.compress_request(stage_settings(), "sp-a-compress-a1-x", "a", IMAGE, model, None, georef)
    # THEN botocore accepts it, and both arrive as channels: the model, and georef.json for the tileset's place
    check_request("sagemaker", "CreateProcessingJob", request)
    channels = {item["InputName"]: item["S3Input"] for item in request["ProcessingInputs"]}
    assert channels["model"]["S3Uri"] == model and channels["georef"]["S3Uri"] == georef
    assert channels["georef"]["LocalPath"] == "/opt/ml/processing/input/georef"


@pytest.mark.parametrize(("options", "arguments"), [({}, None), ({"georef": True}, None),
                                                   ({"georef": False}, ["--no-georef"])])  # fmt: skip
def test_a_job_that_turns_georeferencing_off_runs_sfm_with_no_georef(options, arguments):
    # GIVEN a job's options, with georeferencing left on, asked for, or turned off
    settings = stage_settings()
    # WHEN its sfm request is built
    request = requests.sfm_request(settings, "sp-a-sfm-a1-x", "a", IMAGE, options)
    # THEN botocore accepts it, and only "georef": false passes --no-georef to the container
    check_request("sagemaker", "CreateProcessingJob", request)
    assert request["AppSpecification"].get("ContainerArguments") == arguments


def test_job_names_are_valid_and_fresh_for_long_ids():
    # GIVEN the longest job id WHEN names are made for retries THEN each is valid, at most 63 chars, unique
    names = {sagemaker_job_name("a" * 40, stage, attempt) for stage in Stage for attempt in (1, 2, 2, 99)}
    assert len(names) == 16
    assert all(len(n) <= 63 and SAGEMAKER_NAME.match(n) for n in names)


def test_cloud_presets_are_the_ones_the_train_stage_accepts():
    # GIVEN the presets a job may ask for, and the ones the train container understands
    from spaceport.cloud.models import Preset
    from spaceport.train.config import PRESETS

    # THEN they are the same names, so a job's preset never fails inside SageMaker
    assert {preset.value for preset in Preset} == set(PRESETS)
