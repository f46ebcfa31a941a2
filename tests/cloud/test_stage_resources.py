"""Each Processing stage's instance and volume are chosen for the job's size in the validate step; a job no size of
the configured family holds is refused there, naming what to change."""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest

from spaceport.cloud import settings, stage_resources
from spaceport.cloud.sizing import Photo
from spaceport.cloud.stage_resources import StageTooLargeError, plan

from .conftest import photo_zip
from .harness import BUCKET, REGION
from .test_validate_lambda import published

TWELVE_MP = Photo(4000, 3000, 6_000_000)
DEFAULTS = {"sfm_instance_type": "ml.c5.4xlarge", "sfm_volume_gb": 50,
            "compress_instance_type": "ml.m5.2xlarge", "compress_volume_gb": 30}  # fmt: skip


def test_a_typical_drone_capture_runs_on_the_configured_instances():
    # GIVEN 300 photos of 12 MP and the default preset's 3 M Gaussians, on the template's default instances
    # WHEN the stages are sized
    resources = plan(**DEFAULTS, photos=[TWELVE_MP] * 300, max_gaussians=3_000_000)
    # THEN each stage keeps its configured instance and volume
    assert resources["sfm"]["instance_type"] == "ml.c5.4xlarge" and resources["sfm"]["volume_gb"] == 50
    assert resources["compress"]["instance_type"] == "ml.m5.2xlarge" and resources["compress"]["volume_gb"] == 30


def test_a_thousand_photos_get_a_larger_sfm_instance_than_a_small_configured_one():
    # GIVEN SfmInstanceType ml.c5.xlarge (8 GiB) and 1,000 photos of 12 MP (SfM's mapping holds ~10 GB of them)
    # WHEN the stages are sized
    resources = plan(**(DEFAULTS | {"sfm_instance_type": "ml.c5.xlarge"}), photos=[TWELVE_MP] * 1000,
                     max_gaussians=3_000_000)  # fmt: skip
    # THEN sfm runs on the smallest c5 whose memory holds the model twice over
    sfm = resources["sfm"]
    assert sfm["instance_type"] == "ml.c5.4xlarge"
    assert 2 * sfm["memory_needed_gib"] <= 32 and 2 * sfm["memory_needed_gib"] > 16


def test_the_sfm_volume_grows_with_the_photos():
    # GIVEN a 10 GB volume configured and 1,000 photos of 12 MB
    photos = [Photo(5472, 3648, 12_000_000)] * 1000
    # WHEN the stages are sized
    resources = plan(**(DEFAULTS | {"sfm_volume_gb": 10}), photos=photos, max_gaussians=3_000_000)
    # THEN the volume holds the photos, their copies and database with a margin
    assert resources["sfm"]["volume_gb"] >= 1.5 * (12 + 8) and resources["sfm"]["volume_gb"] <= 40


def test_ten_million_gaussians_get_a_compress_instance_with_twice_their_memory():
    # GIVEN CompressInstanceType ml.m5.large (8 GiB) and a job that allows 10 M Gaussians (~5.9 GiB to compress)
    # WHEN the stages are sized
    resources = plan(**(DEFAULTS | {"compress_instance_type": "ml.m5.large"}), photos=[TWELVE_MP] * 10,
                     max_gaussians=10_000_000)  # fmt: skip
    # THEN compression runs on ml.m5.xlarge (16 GiB), the smallest with room to spare
    assert resources["compress"]["instance_type"] == "ml.m5.xlarge"


def test_a_job_no_size_of_the_family_holds_is_refused_naming_what_to_change():
    # GIVEN 20,000 photos of 12 MP (a MaxImages raised far beyond the default) on c5 instances
    # WHEN the stages are sized THEN the refusal names the largest c5, fewer photos, SfmInstanceType and ml.r5
    with pytest.raises(StageTooLargeError) as refused:
        plan(**DEFAULTS, photos=[TWELVE_MP] * 20_000, max_gaussians=3_000_000)
    message = str(refused.value)
    assert "sfm stage" in message and "ml.c5.18xlarge" in message
    assert "fewer photos than 20000" in message and "SfmInstanceType" in message and "ml.r5" in message


def test_an_unknown_instance_family_is_kept_and_never_blocks_a_job():
    # GIVEN an instance family the table does not know
    # WHEN the stages are sized for a large job
    resources = plan(**(DEFAULTS | {"sfm_instance_type": "ml.c7i.4xlarge"}), photos=[TWELVE_MP] * 1000,
                     max_gaussians=3_000_000)  # fmt: skip
    # THEN that instance is kept (the stage's own limits still apply there)
    assert resources["sfm"]["instance_type"] == "ml.c7i.4xlarge"


def upload_folder(job_id: str, job_file: bytes | None = None) -> str:
    s3 = boto3.client("s3", region_name=REGION)
    with zipfile.ZipFile(io.BytesIO(photo_zip(4))) as archive:
        for name in archive.namelist():
            s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/{name}", Body=archive.read(name))
    s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/job.json", Body=job_file or b"{}")
    return f"uploads/{job_id}/job.json"


def test_the_stages_run_on_the_instances_chosen_for_the_job(world, monkeypatch):
    # GIVEN CompressInstanceType ml.m5.large and a job that allows 8 M Gaussians (4.7 GiB to compress)
    monkeypatch.setenv("COMPRESS_INSTANCE_TYPE", "ml.m5.large")
    settings.clear_cache()
    world.push_images()
    # WHEN the job runs
    started = world.deliver_upload(upload_folder("job-eight-million", b'{"max_gaussians": 8000000}'))
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    # THEN the record keeps the choice, the compress job ran on ml.m5.xlarge and the cost counts that instance
    job = world.job("job-eight-million")
    assert job["resources"]["compress"]["instance_type"] == "ml.m5.xlarge"
    compress = next(r for op, r in world.sagemaker.requests if "-compress-a" in r.get("ProcessingJobName", ""))
    assert compress["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.xlarge"
    billed = [entry for entry in job["billing"].values() if entry["stage"] == "compress"]
    assert [entry["instance_type"] for entry in billed] == ["ml.m5.xlarge"]


def test_a_job_no_sfm_instance_holds_fails_at_validate_and_publishes_nothing(world, monkeypatch):
    # GIVEN photos whose SfM mapping (by the model, made huge here) no c5 instance holds
    monkeypatch.setattr(stage_resources, "SFM_MAPPING_BYTES_PER_PHOTO", 10**14)
    world.push_images()
    # WHEN the job runs
    started = world.deliver_upload(upload_folder("job-sfm-too-large"))
    result = world.run(started["execution_arn"])
    # THEN it failed at validate, naming SfmInstanceType, before any SageMaker job, with nothing left published
    assert result["status"] == "FAILED"
    job = world.job("job-sfm-too-large")
    assert job["failed_stage"] == "validate" and "SfmInstanceType" in job["failure_reason"]
    assert world.sagemaker.requests == []
    assert published("job-sfm-too-large") == {}
