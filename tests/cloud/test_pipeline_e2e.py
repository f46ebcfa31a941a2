"""The real statemachine/pipeline.asl.json run by moto's interpreter with our handlers in-process."""

from __future__ import annotations

import time

import boto3
import pytest

from . import harness
from .conftest import photo_zip
from .harness import BUCKET, REGION


def upload_zip(world, job_id: str) -> dict:
    boto3.client("s3", region_name=REGION).put_object(
        Bucket=BUCKET, Key=f"uploads/{job_id}/photos.zip", Body=photo_zip()
    )
    return world.deliver_upload(f"uploads/{job_id}/photos.zip")


def test_happy_path_records_every_stage(world):
    # GIVEN images in every repository and an uploaded zip of photos
    world.push_images()
    # WHEN the upload event arrives and the execution runs to its end
    started = upload_zip(world, "job-happy")
    result = world.run(started["execution_arn"])
    # THEN the execution succeeds and the record holds every stage's figures and the outputs
    assert result["status"] == "SUCCEEDED"
    job = world.job("job-happy")
    assert job["status"] == "SUCCEEDED"
    assert all(job["stages"][s]["status"] == "SUCCEEDED" for s in ("validate", "sfm", "train", "compress"))
    assert job["stages"]["validate"]["figures"]["images"] == 4
    assert job["stages"]["sfm"]["figures"]["points"] == 1200
    assert job["stages"]["train"]["figures"]["psnr"] == pytest.approx(24.31)
    assert job["outputs"]["scene"] == f"s3://{BUCKET}/jobs/job-happy/compress/scene.sog"
    assert "wait_token" not in job
    # AND the compress stage read the model the train stage produced
    compress = [r for op, r in world.sagemaker.requests if r.get("ProcessingJobName", "").count("-compress-")][0]
    assert compress["ProcessingInputs"][0]["S3Input"]["S3Uri"] == job["outputs"]["model"]


def test_stage_failure_reason_lands_in_the_record(world):
    # GIVEN a training container that writes a failure reason
    world.push_images()
    world.sagemaker.script["train"].append(("fail", "train: loss diverged (nan) at iteration 1200"))
    # WHEN the job runs
    started = upload_zip(world, "job-fails")
    result = world.run(started["execution_arn"])
    # THEN the job is FAILED with the stage and the container's own reason
    assert result["status"] == "FAILED"
    job = world.job("job-fails")
    assert job["status"] == "FAILED"
    assert job["failed_stage"] == "train"
    assert "loss diverged (nan)" in job["failure_reason"]
    assert job["stages"]["compress"]["status"] == "PENDING"


def test_throttling_is_retried_with_backoff_then_succeeds(world):
    # GIVEN SageMaker throttles the sfm request twice and lacks capacity for training once
    world.push_images()
    world.sagemaker.script["sfm"].extend([("throttle",), ("throttle",)])
    world.sagemaker.script["train"].append(("capacity",))
    # WHEN the job runs
    started = upload_zip(world, "job-throttled")
    result = world.run(started["execution_arn"])
    # THEN it succeeds, each attempt had a fresh name, and the retries backed off
    assert result["status"] == "SUCCEEDED"
    job = world.job("job-throttled")
    assert job["stages"]["sfm"]["attempts"] == 3
    assert job["stages"]["train"]["attempts"] == 2
    assert len(world.sleeps) >= 3 and world.sleeps[1] > world.sleeps[0] * 0 and max(world.sleeps) <= 900


def test_the_same_upload_event_twice_starts_one_job(world):
    # GIVEN an uploaded zip
    world.push_images()
    # WHEN its event arrives twice
    first = upload_zip(world, "job-twice")
    second = world.deliver_upload("uploads/job-twice/photos.zip")
    # THEN one execution exists
    assert first["started"] and not second["started"]
    executions = world.sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"]
    assert len(executions) == 1
    assert world.run(first["execution_arn"])["status"] == "SUCCEEDED"


def test_fifty_upload_events_with_duplicates_yield_one_job_each(world):
    # GIVEN 40 distinct uploads whose events arrive with 10 duplicates
    keys = [f"uploads/job-many-{i:02d}/photos.zip" for i in range(40)]
    s3 = boto3.client("s3", region_name=REGION)
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"PK")
    # WHEN all 50 events are delivered
    results = [world.deliver_upload(key) for key in keys + keys[:10]]
    # THEN exactly 40 jobs started, one execution each, every job recorded
    assert sum(r["started"] for r in results) == 40
    executions = world.sfn.list_executions(stateMachineArn=world.state_machine_arn)["executions"]
    assert len({e["name"] for e in executions}) == 40
    assert all(world.job(f"job-many-{i:02d}")["execution_arn"] for i in range(40))


def test_cancel_stops_the_execution_and_the_sagemaker_job(world, monkeypatch):
    # GIVEN a job whose sfm stage never reports back, and a record of the executions our code stops
    world.push_images()
    world.sagemaker.script["sfm"].append(("silent",))
    stop_requests = spy_on_stop_execution(monkeypatch)
    started = upload_zip(world, "job-cancel")
    deadline = time.monotonic() + 60
    while not world.job("job-cancel").get("sagemaker_job"):
        assert time.monotonic() < deadline, "the sfm stage never started its SageMaker job"
        time.sleep(0.05)

    # WHEN the user cancels it through the API
    event = harness.load_event("api_cancel_job.json")
    event["rawPath"] = "/jobs/job-cancel/cancel"
    event["requestContext"]["http"]["path"] = "/jobs/job-cancel/cancel"
    event["pathParameters"] = {"id": "job-cancel"}
    response = world.handlers["api"].lambda_handler(event, harness.FakeContext())

    # THEN the job is CANCELLED, its execution was asked to stop, and its SageMaker job was stopped
    # (by the cancel, or by the stage's starter when the cancel came while the job was being created)
    assert response["statusCode"] == 200
    assert world.job("job-cancel")["status"] == "CANCELLED"
    assert stop_requests == [started["execution_arn"]]
    name = world.job("job-cancel")["sagemaker_job"]
    while name not in world.sagemaker.stopped:
        assert time.monotonic() < deadline + 15, f"{name} was never stopped"
        world.deliver_sagemaker_events()
        time.sleep(0.05)
    # moto's interpreter stops an execution only between states (AWS aborts at once): whatever it does
    # next, the record stays CANCELLED
    time.sleep(1)
    world.deliver_sagemaker_events()
    assert world.job("job-cancel")["status"] == "CANCELLED"


def spy_on_stop_execution(monkeypatch) -> list[str]:
    """Record every StopExecution our code sends (moto's stop is cooperative, so its effect can lag)."""
    from spaceport.cloud import aws

    requests: list[str] = []
    wrapped_client = aws.client

    def client(service: str):
        real = wrapped_client(service)
        if service != "stepfunctions":
            return real

        class StopRecorder:
            def __getattr__(self, name):
                return getattr(real, name)

            def stop_execution(self, **kwargs):
                requests.append(kwargs["executionArn"])
                return real.stop_execution(**kwargs)

        return StopRecorder()

    monkeypatch.setattr(aws, "client", client)
    return requests


def test_missing_image_tag_fails_with_that_reason(world):
    # GIVEN no train image was ever pushed
    world.push_images(stages=("sfm", "compress"))
    # WHEN the job runs
    started = upload_zip(world, "job-noimage")
    result = world.run(started["execution_arn"])
    # THEN it fails at train, saying the image is missing, and no training job was created
    assert result["status"] == "FAILED"
    job = world.job("job-noimage")
    assert job["failed_stage"] == "train"
    assert "image spaceport-train:0.1.0 not found" in job["failure_reason"]
    assert not [op for op, _ in world.sagemaker.requests if op == "create_training_job"]


def test_a_lost_completion_event_times_out_to_failed(world, monkeypatch):
    # GIVEN a short time limit and an sfm job whose completion event never arrives
    from . import harness

    values = harness.substitutions(world.template)
    values.update({"SfmMaxRuntimeSeconds": "1", "StageWaitMarginSeconds": "1"})
    arn = world.sfn.create_state_machine(
        name="short", definition=harness.fill_definition(values), roleArn="arn:aws:iam::123456789012:role/sfn"
    )["stateMachineArn"]
    monkeypatch.setenv("STATE_MACHINE_ARN", arn)
    from spaceport.cloud import settings

    settings.clear_cache()
    world.push_images()
    world.sagemaker.script["sfm"].append(("silent",))
    # WHEN the job runs
    started = upload_zip(world, "job-timeout")
    result = world.run(started["execution_arn"], timeout_s=30)
    # THEN the wait's timeout ends the job FAILED with that reason, and the SageMaker job is stopped
    assert result["status"] == "FAILED"
    job = world.job("job-timeout")
    assert job["status"] == "FAILED" and job["failed_stage"] == "sfm"
    assert "time limit" in job["failure_reason"]
    assert job["sagemaker_job"] in world.sagemaker.stopped
