"""Live progress in GET /jobs/{id}: the training step, PSNR and Gaussian count from the metrics SageMaker publishes,
SfM's phase and photos registered from its log stream, each stage's log stream, read at most every few seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest

from spaceport.cloud import live
from spaceport.cloud.jobs import JobsTable
from spaceport.cloud.models import Stage
from spaceport.sfm.progress import format_progress
from spaceport.train.progress import METRIC_DEFINITIONS
from spaceport.train.progress import format_progress as train_line

from . import harness
from .harness import REGION, aws_error, intercept
from .test_api import call, stage_outputs

JOB_ID = "job-live-0001"
TRAIN_JOB = f"sp-{JOB_ID}-train-a1-abcdef"
SFM_JOB = f"sp-{JOB_ID}-sfm-a1-abcdef"


def running(stage: Stage, sagemaker_job: str, options: dict | None = None) -> None:
    """A job whose earlier stages succeeded and whose ``stage`` waits for ``sagemaker_job``, recorded as the functions
    record it."""
    table = JobsTable(harness.TABLE)
    options = options or {"preset": "fast", "iterations": 600}
    table.claim_for_start(JOB_ID, options, {"kind": "zip", "key": "uploads/x.zip"})
    for done in (Stage.VALIDATE, Stage.SFM, Stage.TRAIN)[: (Stage.VALIDATE, Stage.SFM, Stage.TRAIN).index(stage)]:
        table.begin_stage(JOB_ID, done)
        table.end_stage(JOB_ID, done, "SUCCEEDED", {}, stage_outputs(JOB_ID, done.value))
    table.begin_stage(JOB_ID, stage)
    table.attach_sagemaker_job(JOB_ID, stage, sagemaker_job, "token")


def sagemaker_writes_log(group: str, sagemaker_job: str, lines: list[str]) -> str:
    """What SageMaker does with a container's output: a stream ``<job>/algo-1-<epoch>`` in the stage's group."""
    logs = boto3.client("logs", region_name=REGION)
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    stream = f"{sagemaker_job}/algo-1-1765000000"
    if not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(datetime.now(UTC).timestamp() * 1000)
    events = [{"timestamp": start + index, "message": line} for index, line in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    return stream


def sagemaker_publishes_metrics(sagemaker_job: str, line: str, at: datetime) -> None:
    """What SageMaker does with a training log line: each metric definition's match, to CloudWatch metrics."""
    import re

    data = [
        {"MetricName": definition["Name"], "Value": float(match.group(1)), "Timestamp": at,
         "Dimensions": [{"Name": "Host", "Value": f"{sagemaker_job}/algo-1"}]}
        for definition in METRIC_DEFINITIONS if (match := re.search(definition["Regex"], line))
    ]  # fmt: skip
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(Namespace=live.TRAINING_METRICS, MetricData=data)


def get(world) -> dict:
    status, body = call(world, "api_get_job.json", path=f"/jobs/{JOB_ID}")
    assert status == 200, body
    return body


def test_the_training_stage_reports_its_step_psnr_and_gaussians_from_sagemakers_metrics(world):
    # GIVEN a job training 600 steps, whose log SageMaker has turned into metrics up to step 300
    running(Stage.TRAIN, TRAIN_JOB)
    now = datetime.now(UTC)
    sagemaker_publishes_metrics(TRAIN_JOB, train_line(275, 0.05, 22.10, 9000), now - timedelta(seconds=70))
    sagemaker_publishes_metrics(TRAIN_JOB, train_line(300, 0.04, 23.41, 9800), now)
    stream = sagemaker_writes_log(live.TRAINING_LOGS, TRAIN_JOB, [train_line(300, 0.04, 23.41, 9800)])
    # WHEN the job is read
    view = get(world)
    # THEN its train stage says the newest step of the steps, PSNR and Gaussians, and names its log stream
    train = view["stages"]["train"]
    assert {key: train["live"][key] for key in ("step", "total_steps", "psnr", "gaussians")} == {
        "step": 300, "total_steps": 600, "psnr": 23.41, "gaussians": 9800}  # fmt: skip
    assert train["log"] == {"group": "/aws/sagemaker/TrainingJobs", "stream": stream}
    # AND the job's progress counts half of the train stage: two stages done of four, and 300 of 600 steps
    assert view["progress"] == pytest.approx((2 + 0.5) / 4, abs=1e-3)
    # AND it is in the record, for `GET /jobs` and for readers that come before the next refresh
    assert world.job(JOB_ID)["stages"]["train"]["live"]["step"] == 300


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_a_job_that_names_no_step_count_trains_its_presets_on_the_device_the_stack_trains_on(
    world, monkeypatch, device
):
    # GIVEN a stack whose training jobs run on ``device`` (a deployment: cuda, the default; the local stack's
    # stand-in: cpu), and a job of the fast preset that names no step count, at its step 25
    if device != "cuda":
        monkeypatch.setenv("TRAIN_DEVICE", device)
    running(Stage.TRAIN, TRAIN_JOB, {"preset": "fast"})
    sagemaker_publishes_metrics(TRAIN_JOB, train_line(25, 0.2, 14.5, 3000), datetime.now(UTC))
    # WHEN the job is read
    live_view = get(world)["stages"]["train"]["live"]
    # THEN its steps are those the train stage runs for that preset on that device
    from spaceport.train.config import preset_config

    assert live_view["step"] == 25
    assert live_view["total_steps"] == preset_config("fast", device).iterations


def test_the_sfm_stage_reports_its_phase_and_the_photos_registered_from_its_log_stream(world):
    # GIVEN an sfm job mapping, whose container wrote progress lines among its other output
    running(Stage.SFM, SFM_JOB)
    lines = ["INFO spaceport.sfm: intake: 32 images accepted", format_progress("extraction", 32),
             format_progress("matching", 32), format_progress("mapping", 32, 0), "I0101 incremental_mapper.cc:42",
             format_progress("mapping", 32, 21)]  # fmt: skip
    stream = sagemaker_writes_log(live.PROCESSING_LOGS, SFM_JOB, lines)
    # WHEN the job is read
    view = get(world)
    # THEN the sfm stage says its phase and the photos registered so far, and names its stream
    sfm = view["stages"]["sfm"]
    assert (sfm["live"]["phase"], sfm["live"]["registered"], sfm["live"]["photos"]) == ("mapping", 21, 32)
    assert sfm["log"] == {"group": "/aws/sagemaker/ProcessingJobs", "stream": stream}
    assert 0.25 < view["progress"] < 0.5


def test_cloudwatch_is_asked_at_most_once_per_interval_and_only_for_the_attempt_waited_for(world, monkeypatch):
    # GIVEN a training job with metrics, and a count of the metric reads
    running(Stage.TRAIN, TRAIN_JOB)
    sagemaker_publishes_metrics(TRAIN_JOB, train_line(100, 0.05, 20.0, 5000), datetime.now(UTC))
    reads: list[dict] = []
    counted = lambda real, **kwargs: reads.append(kwargs) or real(**kwargs)  # noqa: E731
    intercept(monkeypatch, "cloudwatch", "get_metric_data", counted)
    # WHEN it is read three times in a row
    steps = [get(world)["stages"]["train"]["live"]["step"] for _ in range(3)]
    # THEN CloudWatch was asked once, and every read shows what it said
    assert len(reads) == 1 and steps == [100, 100, 100]
    # WHEN a refresh read before a new attempt started writes after it
    stale = world.job(JOB_ID)
    JobsTable(harness.TABLE).attach_sagemaker_job(JOB_ID, Stage.TRAIN, f"sp-{JOB_ID}-train-a2-ghijkl", "token-2")
    written = live.record_stage(harness.TABLE, stale, Stage.TRAIN, {"step": 999}, None, 0.0)
    # THEN nothing is written: the record waits for the new attempt
    assert not written and world.job(JOB_ID)["stages"]["train"]["live"]["step"] == 100


def test_a_cloudwatch_refusal_leaves_the_view_as_it_was(world, monkeypatch):
    # GIVEN a training job, and CloudWatch refusing the API's reads (a role without cloudwatch:GetMetricData)
    running(Stage.TRAIN, TRAIN_JOB)

    def refuse(real, **kwargs):
        raise aws_error("AccessDenied", "GetMetricData")

    intercept(monkeypatch, "cloudwatch", "get_metric_data", refuse)
    # WHEN the job is read THEN it answers as before, without live progress
    view = get(world)
    assert view["status"] == "RUNNING" and "live" not in view["stages"]["train"]


def test_an_ended_stage_names_its_log_stream_even_when_nobody_watched_it(world):
    # GIVEN a compress job whose container wrote to its stream, never read while it ran
    running(Stage.SFM, SFM_JOB)
    stream = sagemaker_writes_log(live.PROCESSING_LOGS, SFM_JOB, ["sfm: only 3 of 40 images registered"])
    # WHEN its end is handled THEN the stage names the stream
    live.record_log_stream(harness.TABLE, world.job(JOB_ID), Stage.SFM)
    assert world.job(JOB_ID)["stages"]["sfm"]["log"]["stream"] == stream
