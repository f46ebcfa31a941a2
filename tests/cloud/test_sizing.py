"""A job too large for the training GPU is refused in the validate step, naming what to change."""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest

from spaceport.cloud import settings
from spaceport.cloud.sizing import GPUS, SFM_MAX_IMAGE_SIZE, SUGGESTED, Photo, refusal_reason, run_size, train_config

from .conftest import photo_zip
from .harness import BUCKET, REGION
from .test_validate_lambda import published

TWELVE_MP = Photo(4000, 3000)


def test_the_table_knows_the_gpus_of_the_training_instances():
    # GIVEN the GPU table
    # THEN each family has its GPU's memory, one GPU per job, and every suggestion is in the table, smallest first
    assert GPUS["ml.g4dn.xlarge"].memory_gib == 16 and GPUS["ml.p3.2xlarge"].memory_gib == 16
    assert GPUS["ml.g5.xlarge"].memory_gib == GPUS["ml.g6.2xlarge"].memory_gib == 24
    assert GPUS["ml.g6e.xlarge"].memory_gib == 48
    assert GPUS["ml.p4d.24xlarge"].memory_gib == 40 and GPUS["ml.p4d.24xlarge"].per_instance == 8
    assert GPUS["ml.p5.48xlarge"].memory_gib == 80
    assert [GPUS[name].memory_gib for name in SUGGESTED] == sorted(GPUS[name].memory_gib for name in SUGGESTED)
    # AND what the check counts is below the marketed figure (PyTorch sees 22 GiB of an A10G's 24 GB)
    assert 21 * 2**30 < GPUS["ml.g5.xlarge"].usable_bytes < 23 * 2**30


def test_the_run_is_sized_as_the_train_stage_will_run_it():
    # GIVEN the default preset with an sh_degree option, and 12 MP photos
    from spaceport.sfm.stage import SfmConfig
    from spaceport.train.data import scaled_size

    config = train_config({"preset": None, "sh_degree": 1}, "default")
    size = run_size(config, [TWELVE_MP] * 3)
    # THEN it is the GPU preset (1600 px, 3 M Gaussians) with the option applied, and each photo is scaled as SfM's
    # intake and the training data scale it
    assert (config.device, config.resolution, config.max_gaussians, config.sh_degree) == ("cuda", 1600, 3_000_000, 1)
    assert SFM_MAX_IMAGE_SIZE == SfmConfig().max_image_size
    width, height = scaled_size(*scaled_size(4000, 3000, SFM_MAX_IMAGE_SIZE), config.resolution)
    assert (size.longest_side, size.step_pixels, size.stored_pixels) == (1600, width * height, 3 * width * height)
    assert (size.gaussians, size.sh_degree) == (3_000_000, 1)


def test_a_thousand_twelve_megapixel_photos_do_not_fit_an_a10g():
    # GIVEN 1,000 photos of 12 MP at the default preset, trained on the template's default ml.g5.xlarge
    # WHEN the job is sized
    reason = refusal_reason({"preset": "default"}, "default", [TWELVE_MP] * 1000, "ml.g5.xlarge")
    # THEN it is refused, naming the parameter, fewer or smaller photos, and an instance that holds the run
    assert reason is not None
    assert "ml.g5.xlarge (TrainInstanceType)" in reason and "not fitted on CUDA" in reason
    assert "send at most" in reason and "px on the longest side" in reason
    assert "TrainInstanceType parameter set to ml.g6e.xlarge" in reason
    # AND the suggested number of photos fits
    fitting = int(reason.split("send at most ")[1].split()[0])
    assert refusal_reason({}, "default", [TWELVE_MP] * fitting, "ml.g5.xlarge") is None
    assert refusal_reason({}, "default", [TWELVE_MP] * (fitting + 20), "ml.g5.xlarge") is not None


def test_forty_photos_fit():
    # GIVEN 40 photos of 12 MP at the default preset (the job's preset unset) on ml.g5.xlarge
    # WHEN the job is sized
    # THEN it is accepted
    assert refusal_reason({}, "default", [TWELVE_MP] * 40, "ml.g5.xlarge") is None
    assert refusal_reason({"preset": "quality"}, "fast", [TWELVE_MP] * 40, "ml.g4dn.xlarge") is None


def test_ten_million_gaussians_do_not_fit_a_t4_and_the_reason_names_max_gaussians():
    # GIVEN a job that asks for 10 M Gaussians, on ml.g4dn.xlarge
    # WHEN it is sized
    reason = refusal_reason({"max_gaussians": 10_000_000}, "default", [TWELVE_MP] * 40, "ml.g4dn.xlarge")
    # THEN the reason names the job option and a cap that fits
    assert reason is not None and "10,000,000 Gaussians" in reason
    assert "set the job option max_gaussians to at most" in reason
    cap = int(reason.split("max_gaussians to at most ")[1].split(";")[0].replace(",", ""))
    assert 1_000_000 < cap < 10_000_000
    assert refusal_reason({"max_gaussians": cap}, "default", [TWELVE_MP] * 40, "ml.g4dn.xlarge") is None


def test_an_unknown_instance_type_never_blocks_a_job():
    # GIVEN an instance type the table does not know
    # WHEN a job far too large for any GPU is sized for it
    # THEN it is accepted (the train stage's own check still runs on the GPU)
    assert refusal_reason({"max_gaussians": 10_000_000}, "default", [TWELVE_MP] * 5000, "ml.g7.xlarge") is None


def test_a_job_too_large_for_the_training_gpu_fails_at_validate_and_publishes_nothing(world, monkeypatch):
    # GIVEN a deployment that trains on ml.g4dn.xlarge, and a folder upload whose job.json asks for 10 M Gaussians
    monkeypatch.setenv("TRAIN_INSTANCE_TYPE", "ml.g4dn.xlarge")
    settings.clear_cache()
    world.push_images()
    job_id = "job-too-large"
    s3 = boto3.client("s3", region_name=REGION)
    with zipfile.ZipFile(io.BytesIO(photo_zip(4))) as archive:
        for name in archive.namelist():
            s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/{name}", Body=archive.read(name))
    s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/job.json", Body=b'{"max_gaussians": 10000000}')
    # WHEN the pipeline runs
    started = world.deliver_upload(f"uploads/{job_id}/job.json")
    result = world.run(started["execution_arn"])
    # THEN the job failed at validate with the reason that names what to change, no SageMaker job was created, and
    # no photo is left published
    assert result["status"] == "FAILED"
    job = world.job(job_id)
    assert job["status"] == "FAILED" and job["failed_stage"] == "validate"
    assert "InputRejectedError" in job["failure_reason"]
    assert "ml.g4dn.xlarge (TrainInstanceType)" in job["failure_reason"]
    assert "max_gaussians to at most" in job["failure_reason"]
    assert world.sagemaker.requests == []
    assert published(job_id) == {}


@pytest.mark.parametrize("options", [{}, {"preset": "fast", "iterations": 500, "sh_degree": 2, "max_gaussians": 5000}])
def test_the_sized_options_are_the_training_jobs_hyperparameters(options):
    # GIVEN a job's options and the stage settings
    from spaceport.cloud.sagemaker_requests import hyperparameters
    from spaceport.cloud.sizing import train_hyperparameters

    stage = settings.stage_settings()
    # THEN the sizing reads them as the training job will get them (less the device)
    expected = {key: value for key, value in hyperparameters(stage, options).items() if key != "device"}
    assert train_hyperparameters(options, stage.default_preset) == expected
