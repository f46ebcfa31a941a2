"""The real statemachine/pipeline.asl.json run by moto's interpreter with our handlers in-process."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from . import harness
from .conftest import photo_zip
from .harness import BUCKET, REGION

# What PyTorch raises on a full GPU, as the train container reports it (FailureReason = "AlgorithmError: " + its
# failure file): it contains the word "capacity" and is no capacity problem of SageMaker's.
CUDA_OOM_REASON = (
    "AlgorithmError: train: internal error: OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. "
    "GPU 0 has a total capacity of 22.06 GiB of which 1.12 GiB is free. Of the allocated memory 19.80 GiB is "
    "allocated by PyTorch"
)
# SageMaker's own FailureReason when it cannot get instances (the text AWS Batch keys on: "begins with CapacityError").
CAPACITY_REASON = (
    "CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML instance type."
)


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


def test_training_figures_are_what_sagemaker_reports_for_our_metric_definitions(world):
    # GIVEN a training job whose log SageMaker parses with the request's own MetricDefinitions
    world.push_images()
    # WHEN the job runs
    started = upload_zip(world, "job-metrics")
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    # THEN the record holds each metric's last value under a readable name, counts as whole numbers
    figures = world.job("job-metrics")["stages"]["train"]["figures"]
    assert figures == {
        "iteration": 7000,
        "loss": pytest.approx(0.0412),
        "psnr": pytest.approx(24.31),
        "gaussians": 18234,
        "test_psnr": pytest.approx(23.87),
        "test_ssim": pytest.approx(0.8712),
    }
    assert isinstance(figures["iteration"], int) and isinstance(figures["gaussians"], int)


def test_throttling_is_retried_with_backoff_then_succeeds(world):
    # GIVEN SageMaker throttles the sfm request twice and lacks capacity for training once
    world.push_images()
    world.sagemaker.script["sfm"].extend([("throttle",), ("throttle",)])
    world.sagemaker.script["train"].append(("capacity",))
    # WHEN the job runs
    started = upload_zip(world, "job-throttled")
    result = world.run(started["execution_arn"])
    # THEN it succeeds, each attempt had a fresh name
    assert result["status"] == "SUCCEEDED"
    job = world.job("job-throttled")
    assert job["stages"]["sfm"]["attempts"] == 3
    assert job["stages"]["train"]["attempts"] == 2
    # AND the waits (FULL jitter's ceilings) follow the Retry: 60 s, doubled for the second throttle of sfm, and the
    # train stage's own retrier starts again at 60 s
    assert world.sleeps == [60, 120, 60]


def test_backoff_doubles_up_to_its_cap_then_the_attempts_run_out(world):
    # GIVEN SageMaker throttles every sfm request
    world.push_images()
    world.sagemaker.script["sfm"].extend([("throttle",)] * 6)
    # WHEN the job runs
    started = upload_zip(world, "job-always-throttled")
    result = world.run(started["execution_arn"])
    # THEN five retries waited 60, 120, 240, 480 and 900 s (MaxDelaySeconds caps 960), then the job failed, saying why
    assert world.sleeps == [60, 120, 240, 480, 900]
    assert result["status"] == "FAILED"
    job = world.job("job-always-throttled")
    assert job["stages"]["sfm"]["attempts"] == 6
    assert job["failed_stage"] == "sfm" and "SageMakerThrottledError" in job["failure_reason"]


def test_a_capacity_failure_reported_by_the_job_is_retried_with_a_fresh_job(world):
    # GIVEN SageMaker accepts the training job, then fails it for lack of capacity (its event, not the Create call)
    world.push_images()
    world.sagemaker.script["train"].append(("fail", CAPACITY_REASON))
    # WHEN the job runs
    started = upload_zip(world, "job-capacity-event")
    result = world.run(started["execution_arn"])
    # THEN the failure came back through SendTaskFailure as a capacity error, was retried after 60 s, and succeeded
    assert result["status"] == "SUCCEEDED", world.job("job-capacity-event").get("failure_reason")
    trainings = [r["TrainingJobName"] for op, r in world.sagemaker.requests if op == "create_training_job"]
    assert len(trainings) == 2 and trainings[0] != trainings[1]
    assert world.sleeps == [60]
    assert world.job("job-capacity-event")["stages"]["train"]["attempts"] == 2


def test_a_cuda_out_of_memory_failure_is_not_retried_and_says_what_to_change(world):
    # GIVEN the training container runs out of GPU memory (PyTorch's message mentions a "total capacity")
    world.push_images()
    world.sagemaker.script["train"].append(("fail", CUDA_OOM_REASON))
    # WHEN the job runs
    started = upload_zip(world, "job-oom")
    result = world.run(started["execution_arn"])
    # THEN one training job ran, not six: the job failed at train with a reason that says what to change
    assert result["status"] == "FAILED"
    assert len([op for op, _ in world.sagemaker.requests if op == "create_training_job"]) == 1
    assert world.sleeps == []
    job = world.job("job-oom")
    assert job["failed_stage"] == "train"
    reason = job["failure_reason"]
    assert reason.startswith("train: ") and "out of memory" in reason
    assert "max_gaussians" in reason and "TrainInstanceType" in reason


def fail_once(monkeypatch, service: str, operation: str, code: str) -> list[dict[str, Any]]:
    """Make the next ``operation`` call of ``service`` fail with ``code``; returns the calls seen, as kwargs."""
    calls: list[dict[str, Any]] = []

    def answer(call, **kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise harness.aws_error(code, operation)
        return call(**kwargs)

    harness.intercept(monkeypatch, service, operation, answer)
    return calls


def wait_for(condition, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_throttled_send_task_success_is_completed_by_the_redelivered_event(world, monkeypatch):
    # GIVEN an sfm job started (its slot granted), and Step Functions throttles the next SendTaskSuccess
    world.push_images()
    started = upload_zip(world, "job-resend")
    wait_for(lambda: world.sagemaker.pending, "the sfm job")
    sends = fail_once(monkeypatch, "stepfunctions", "send_task_success", "ThrottlingException")
    stage, name, _ = world.sagemaker.pending.popleft()
    event = world.state_change_event(stage, name)
    # WHEN the sfm job's completion event fails on the throttle and EventBridge delivers it again
    with pytest.raises(ClientError, match="ThrottlingException"):
        world.handlers["complete_stage"].lambda_handler(event, harness.FakeContext())
    world.handlers["complete_stage"].lambda_handler(event, harness.FakeContext())
    # THEN the second delivery resumed the execution with the same token, and the job ran to its end
    assert len(sends) >= 2 and sends[0]["taskToken"] == sends[1]["taskToken"]
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    assert world.job("job-resend")["stages"]["sfm"]["status"] == "SUCCEEDED"


def test_a_late_duplicate_event_of_the_previous_stage_leaves_the_next_stages_token(world, monkeypatch):
    # GIVEN the sfm stage waits, and its record is read then (as a duplicate event handled late would read it)
    from spaceport.cloud.jobs import JobsTable

    world.push_images()
    world.sagemaker.script["sfm"].append(("silent",))
    world.sagemaker.script["train"].append(("silent",))
    started = upload_zip(world, "job-late-dup")
    wait_for(lambda: world.sagemaker.outcomes, "the sfm stage to wait")
    stale_record = JobsTable(harness.TABLE).get("job-late-dup")
    sfm_name = stale_record["sagemaker_job"]
    sfm_event = world.state_change_event("sfm", sfm_name)
    world.handlers["complete_stage"].lambda_handler(sfm_event, harness.FakeContext())
    wait_for(lambda: len(world.sagemaker.outcomes) == 2, "the train stage to wait")
    train_record = world.job("job-late-dup")

    # WHEN the duplicate sfm event is handled with that stale read
    with monkeypatch.context() as patch:
        patch.setattr(JobsTable, "find_by_sagemaker_job", lambda self, name: stale_record)
        world.handlers["complete_stage"].lambda_handler(sfm_event, harness.FakeContext())

    # THEN the train stage's token is still there, and the train job's own event resumes the execution
    assert world.job("job-late-dup").get("wait_token") == train_record["wait_token"]
    train_event = world.state_change_event("train", train_record["sagemaker_job"])
    world.handlers["complete_stage"].lambda_handler(train_event, harness.FakeContext())
    assert world.run(started["execution_arn"], timeout_s=30)["status"] == "SUCCEEDED"


def test_a_sagemaker_job_created_before_its_starter_failed_is_stopped_with_the_job(world):
    # GIVEN every sfm starter invocation creates its SageMaker job, then the invoke fails (a Lambda service error)
    world.push_images()
    world.sagemaker.script["sfm"].extend([("silent",)] * 5)
    world.errors_after_handler["start_stage"].extend(["ServiceException"] * 5)
    # WHEN the job runs and the retries run out
    started = upload_zip(world, "job-orphans")
    result = world.run(started["execution_arn"])
    # THEN the job failed at sfm, and every SageMaker job those attempts created was stopped
    assert result["status"] == "FAILED"
    created = [
        r["ProcessingJobName"] for op, r in world.sagemaker.requests if "-sfm-" in r.get("ProcessingJobName", "")
    ]
    assert len(created) == 5
    assert set(created) <= set(world.sagemaker.stopped)
    assert world.job("job-orphans")["stages"]["sfm"]["sagemaker_jobs"] == created


def test_a_retried_starter_stops_the_job_its_failed_attempt_created(world):
    # GIVEN the first train starter creates its job, then its invoke fails; the retry creates a second job
    world.push_images()
    world.sagemaker.script["train"].append(("silent",))
    world.errors_after_handler["start_stage"].append("ServiceException")
    world.errors_after_handler["start_stage"].appendleft(None)  # the sfm starter goes through
    # WHEN the job runs
    started = upload_zip(world, "job-twice-created")
    result = world.run(started["execution_arn"])
    # THEN the job succeeded on the second training job, and the first (which nothing waits for) was stopped
    assert result["status"] == "SUCCEEDED"
    trainings = [r["TrainingJobName"] for op, r in world.sagemaker.requests if op == "create_training_job"]
    assert len(trainings) == 2
    assert trainings[0] in world.sagemaker.stopped and trainings[1] not in world.sagemaker.stopped


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
    requests: list[str] = []

    def answer(call, **kwargs):
        requests.append(kwargs["executionArn"])
        return call(**kwargs)

    harness.intercept(monkeypatch, "stepfunctions", "stop_execution", answer)
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
    world.use_state_machine(monkeypatch, "short", {"SfmMaxRuntimeSeconds": "1", "StageWaitMarginSeconds": "1"})
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
    # AND the sfm slot it held went back on the Catch's path ("Release the job's slots")
    from .test_slots import slots_in_use

    assert ("release_slot", {"job_id": "job-timeout", "execution": started["execution_arn"]}) in world.invocations
    assert ("wait_for_slot", "sfm") in [(name, payload.get("stage")) for name, payload in world.invocations]
    assert slots_in_use() == {}
