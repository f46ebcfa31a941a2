"""Each Processing stage's instance, volume and time are checked against the job's size in the validate step; a job
the deployment cannot hold is refused there, naming what to change; the stage's start sizes it again from the
recorded needs, for the instances deployed then."""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest

from spaceport.cloud import settings, stage_resources
from spaceport.cloud.models import Stage
from spaceport.cloud.sizing import Photo
from spaceport.cloud.stage_resources import StageLimits, StageTooLargeError, at_start, plan

from .conftest import photo_zip
from .harness import BUCKET, REGION
from .test_api import call
from .test_validate_lambda import published

TWELVE_MP = Photo(4000, 3000, 6_000_000)
SFM = StageLimits("ml.c5.4xlarge", "ml.c5.4xlarge", 50, "SfmInstanceType")
COMPRESS = StageLimits("ml.m5.2xlarge", "ml.m5.2xlarge", 30, "CompressInstanceType")
TWO_HOURS = 7_200


def sized(photos: list[Photo], sfm: StageLimits = SFM, compress: StageLimits = COMPRESS, gaussians: int = 3_000_000,
          runtime: int = TWO_HOURS) -> dict:  # fmt: skip
    return plan(sfm, compress, runtime, photos, gaussians)


def test_a_typical_drone_capture_runs_on_the_configured_instances():
    # GIVEN 300 photos of 12 MP and the default preset's 3 M Gaussians, on the template's default instances
    # WHEN the stages are sized
    resources = sized([TWELVE_MP] * 300)
    # THEN each stage keeps its configured instance and volume, and the needs are recorded for the stage's start
    assert resources["sfm"]["instance_type"] == "ml.c5.4xlarge" and resources["sfm"]["volume_gb"] == 50
    assert resources["compress"]["instance_type"] == "ml.m5.2xlarge" and resources["compress"]["volume_gb"] == 30
    assert resources["sfm"]["needs"]["parallel"] == 300


def test_a_thousand_photos_get_a_larger_size_when_the_deployment_allows_one():
    # GIVEN SfmInstanceType ml.c5.xlarge (8 GiB) up to ml.c5.9xlarge, and 1,000 photos of 12 MP (~10 GB in mapping)
    allowed = StageLimits("ml.c5.xlarge", "ml.c5.9xlarge", 50, "SfmInstanceType")
    # WHEN the stages are sized
    sfm = sized([TWELVE_MP] * 1000, sfm=allowed)["sfm"]
    # THEN sfm runs on the smallest c5 whose memory holds the model twice over
    assert sfm["instance_type"] == "ml.c5.4xlarge"
    assert 16 < 2 * sfm["memory_needed_gib"] <= 32


def test_without_a_larger_size_allowed_a_job_too_large_is_refused_naming_both_parameters():
    # GIVEN SfmInstanceType ml.c5.xlarge with no larger size allowed (the default), and 1,000 photos of 12 MP
    only = StageLimits("ml.c5.xlarge", "ml.c5.xlarge", 50, "SfmInstanceType")
    # WHEN the stages are sized THEN the refusal says what to change, and where the quota matters
    with pytest.raises(StageTooLargeError) as refused:
        sized([TWELVE_MP] * 1000, sfm=only)
    message = str(refused.value)
    assert "sfm stage" in message and "ml.c5.xlarge (8 GiB)" in message and "fewer photos than 1000" in message
    assert "SfmLargestInstanceType" in message and "processing quota" in message and "ml.r5" in message


def test_the_sfm_volume_grows_with_the_photos():
    # GIVEN a 10 GB volume configured and 1,000 photos of 12 MB
    photos = [Photo(5472, 3648, 12_000_000)] * 1000
    # WHEN the stages are sized
    sfm = sized(photos, sfm=StageLimits("ml.c5.4xlarge", "ml.c5.4xlarge", 10, "SfmInstanceType"))["sfm"]
    # THEN the volume holds the photos, their copies and database with a margin
    assert 1.5 * (12 + 8) <= sfm["volume_gb"] <= 40


def test_ten_million_gaussians_get_a_compress_size_with_twice_their_memory_or_a_refusal_that_says_how_many_fit():
    # GIVEN CompressInstanceType ml.m5.large (8 GiB) and a job that allows 10 M Gaussians (~5.9 GiB to compress)
    # WHEN the deployment allows up to ml.m5.xlarge THEN compression runs there
    allowed = StageLimits("ml.m5.large", "ml.m5.xlarge", 30, "CompressInstanceType")
    assert sized([TWELVE_MP] * 10, compress=allowed, gaussians=10_000_000)["compress"]["instance_type"] == (
        "ml.m5.xlarge"
    )
    # AND when it allows ml.m5.large only, the refusal names the max_gaussians that fits half of 8 GiB
    only = StageLimits("ml.m5.large", "ml.m5.large", 30, "CompressInstanceType")
    with pytest.raises(StageTooLargeError, match=r"max_gaussians to at most 6,700,000"):
        sized([TWELVE_MP] * 10, compress=only, gaussians=10_000_000)


def test_a_capture_expected_to_outrun_the_sfm_time_limit_is_refused_naming_it():
    # GIVEN 1,000 photos of 12 MP (about 1.4 h of SfM by the time model) and SfmMaxRuntimeSeconds of 1 h
    # WHEN the stages are sized THEN the refusal names the limit and a photo count that fits it
    with pytest.raises(StageTooLargeError) as refused:
        sized([TWELVE_MP] * 1000, runtime=3600)
    message = str(refused.value)
    assert "SfmMaxRuntimeSeconds (3600 s)" in message and "send at most about" in message
    fitting = int(message.split("send at most about ")[1].split(" ")[0])
    assert 500 < fitting < 1000
    assert stage_resources.sfm_seconds([TWELVE_MP] * fitting, "ml.c5.4xlarge") <= 3600
    # AND within the default two hours it is accepted
    assert sized([TWELVE_MP] * 1000)["sfm"]["instance_type"] == "ml.c5.4xlarge"


def test_an_unknown_instance_family_is_kept_and_never_blocks_a_job():
    # GIVEN an instance family the table does not know
    other = StageLimits("ml.c7i.4xlarge", "ml.c7i.4xlarge", 50, "SfmInstanceType")
    # WHEN the stages are sized for a large job THEN that instance is kept
    assert sized([TWELVE_MP] * 1000, sfm=other)["sfm"]["instance_type"] == "ml.c7i.4xlarge"


def test_a_stage_starting_after_a_redeploy_is_sized_for_the_instances_deployed_then():
    # GIVEN a job sized when only ml.c5.4xlarge was allowed, then a redeploy to the r5 family
    recorded = sized([TWELVE_MP] * 1000)["sfm"]
    redeployed = StageLimits("ml.r5.xlarge", "ml.r5.4xlarge", 60, "SfmInstanceType")
    # WHEN its sfm stage starts (a retry)
    resources = at_start(Stage.SFM, recorded, redeployed)
    # THEN it runs on the smallest r5 that holds it, on the new, larger volume
    assert resources["instance_type"] == "ml.r5.xlarge" and resources["volume_gb"] == 60
    # AND a record without needs (made before sizing existed) keeps the configured instance
    assert at_start(Stage.SFM, {"instance_type": "ml.c5.4xlarge"}, redeployed) is None


def upload_folder(job_id: str, job_file: bytes | None = None) -> str:
    s3 = boto3.client("s3", region_name=REGION)
    with zipfile.ZipFile(io.BytesIO(photo_zip(4))) as archive:
        for name in archive.namelist():
            s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/{name}", Body=archive.read(name))
    s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/job.json", Body=job_file or b"{}")
    return f"uploads/{job_id}/job.json"


def test_the_stages_run_on_the_instances_chosen_for_the_job(world, monkeypatch):
    # GIVEN CompressInstanceType ml.m5.large up to ml.m5.xlarge, and a job that allows 8 M Gaussians (4.7 GiB)
    monkeypatch.setenv("COMPRESS_INSTANCE_TYPE", "ml.m5.large")
    monkeypatch.setenv("COMPRESS_LARGEST_INSTANCE_TYPE", "ml.m5.xlarge")
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


def test_a_retry_after_a_redeploy_that_no_longer_holds_the_stage_fails_it_with_the_reason(world, monkeypatch):
    # GIVEN a job that compressed on ml.m5.xlarge, then a redeploy that allows ml.m5.large only
    monkeypatch.setenv("COMPRESS_INSTANCE_TYPE", "ml.m5.large")
    monkeypatch.setenv("COMPRESS_LARGEST_INSTANCE_TYPE", "ml.m5.xlarge")
    settings.clear_cache()
    world.push_images()
    world.sagemaker.script["compress"].append(("fail", "compress: disk full"))
    started = world.deliver_upload(upload_folder("job-shrunk", b'{"max_gaussians": 8000000}'))
    assert world.run(started["execution_arn"])["status"] == "FAILED"
    monkeypatch.setenv("COMPRESS_LARGEST_INSTANCE_TYPE", "ml.m5.large")
    settings.clear_cache()
    # WHEN the job is retried from compress
    status, _ = call(world, "api_retry_job.json", path="/jobs/job-shrunk/retry", body={"from_stage": "compress"})
    assert status == 202
    result = world.run(world.job("job-shrunk")["execution_arn"])
    # THEN no compress job was created on an instance too small; the job failed saying what to change
    assert result["status"] == "FAILED"
    compress_jobs = [r for op, r in world.sagemaker.requests if "-compress-a" in r.get("ProcessingJobName", "")]
    assert len(compress_jobs) == 1
    reason = world.job("job-shrunk")["failure_reason"]
    assert reason.startswith("compress: ") and "CompressLargestInstanceType" in reason


def test_a_job_no_sfm_instance_holds_fails_at_validate_and_publishes_nothing(world, monkeypatch):
    # GIVEN photos whose SfM mapping (by the model, made huge here) no allowed instance holds
    monkeypatch.setattr(stage_resources, "SFM_MAPPING_BYTES_PER_PHOTO", 10**14)
    world.push_images()
    # WHEN the job runs
    started = world.deliver_upload(upload_folder("job-sfm-too-large"))
    result = world.run(started["execution_arn"])
    # THEN it failed at validate, naming SfmLargestInstanceType, before any SageMaker job, with nothing published
    assert result["status"] == "FAILED"
    job = world.job("job-sfm-too-large")
    assert job["failed_stage"] == "validate" and "SfmLargestInstanceType" in job["failure_reason"]
    assert world.sagemaker.requests == []
    assert published("job-sfm-too-large") == {}


def test_the_size_table_holds_exactly_the_sizes_sagemaker_processing_offers_in_each_family():
    # GIVEN the processing instance types botocore's SageMaker model lists (ProcessingClusterConfig.InstanceType)
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    offered = model.shape_for("ProcessingInstanceType").enum
    # WHEN the sizing table's families are compared with it
    for family, sizes in stage_resources.FAMILY_MEMORY_GIB.items():
        listed = {name.split(".")[2] for name in offered if name.split(".")[1] == family}
        # THEN each family has every size Processing offers, and none it does not
        assert set(sizes) == listed, family


R5_JOB_GIB = 110  # needs 220 GiB with headroom: more than ml.r5.4xlarge's 128, less than ml.r5.8xlarge's 256


def r5_needs(gib: float) -> stage_resources.StageNeeds:
    return stage_resources.StageNeeds(0, 0, 1, int(gib * stage_resources.GIB), 0)


def test_a_job_too_large_for_r5_4xlarge_gets_r5_8xlarge_not_the_dearer_12xlarge():
    # GIVEN an sfm stage allowed ml.r5.xlarge up to ml.r5.24xlarge, and a job that needs 110 GiB
    limits = StageLimits("ml.r5.xlarge", "ml.r5.24xlarge", 50, "SfmInstanceType")
    # WHEN it is sized THEN it gets the smallest r5 that holds it twice over: ml.r5.8xlarge (256 GiB)
    assert stage_resources.choose(Stage.SFM, r5_needs(R5_JOB_GIB), limits, "")["instance_type"] == "ml.r5.8xlarge"


def test_r5_16xlarge_as_the_largest_size_allows_every_size_up_to_it():
    # GIVEN an sfm stage allowed ml.r5.large up to ml.r5.16xlarge (512 GiB), and a job that needs 200 GiB
    limits = StageLimits("ml.r5.large", "ml.r5.16xlarge", 50, "SfmInstanceType")
    # WHEN it is sized THEN it gets ml.r5.16xlarge, not a refusal as if only ml.r5.large were allowed
    assert stage_resources.choose(Stage.SFM, r5_needs(200), limits, "")["instance_type"] == "ml.r5.16xlarge"
    # AND a smaller job still gets the smaller size that holds it
    assert stage_resources.choose(Stage.SFM, r5_needs(R5_JOB_GIB), limits, "")["instance_type"] == "ml.r5.8xlarge"
