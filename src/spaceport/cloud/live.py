"""A running job's live progress, read from what SageMaker publishes to CloudWatch while its stage runs.

- **Training**: SageMaker applies the training job's metric definitions (``spaceport.train.progress``) to the
  container's log and sends the values to CloudWatch metrics as they appear (namespace ``/aws/sagemaker/TrainingJobs``,
  dimension ``Host`` = ``<job>/algo-1``); ``DescribeTrainingJob``'s ``FinalMetricDataList`` holds them only once the
  job has completed. ``GetMetricData`` over the stage's run in 60-second periods, newest first, gives the step (the
  newest period's maximum of ``train:iteration``), and the newest period's average PSNR and Gaussian count.
- **SfM**: a Processing job has no metric definitions. Its container's output goes to CloudWatch Logs
  (``/aws/sagemaker/ProcessingJobs``, stream ``<job>/algo-1-<epoch>``), where the stage writes progress lines
  (``spaceport.sfm.progress``); ``FilterLogEvents`` on that stream for the marker, from the newest line seen before,
  gives the phase and the photos registered so far.
- **Log streams**: every SageMaker stage's stream is found by the job's name (``DescribeLogStreams``, once per
  attempt) and recorded with the stage; the validate Lambda records its own group and stream.

The jobs API refreshes a RUNNING job's stage when it is read (``GET /jobs/{id}``, ``GET /jobs``), at most once
every ``LIVE_PROGRESS_REFRESH_SECONDS`` per job, and writes what it found into the record (``stages.<stage>.live``
and ``.log``) only while the record still waits for that SageMaker job: a job nobody looks at costs no CloudWatch
call. CloudWatch's log reads are for people rather than polling loops (FilterLogEvents: 5 requests a second per
account and region), which this keeps to one a job every few seconds. Anything CloudWatch refuses (throttling, a
missing permission) leaves the record as it was: progress is never worth failing a read.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from spaceport.cloud import aws
from spaceport.cloud.jobs import now, to_dynamo
from spaceport.cloud.models import JobStatus, Stage
from spaceport.sfm.progress import MARKER, parse_progress

logger = Logger(child=True)

TRAINING_LOGS = "/aws/sagemaker/TrainingJobs"
PROCESSING_LOGS = "/aws/sagemaker/ProcessingJobs"
TRAINING_METRICS = "/aws/sagemaker/TrainingJobs"
# The metric definitions' names, read as (query id, metric, statistic of the newest 60-second period).
TRAINING_QUERIES = (
    ("step", "train:iteration", "Maximum"),
    ("psnr", "train:psnr", "Average"),
    ("gaussians", "train:gaussians", "Average"),
)
METRIC_PERIOD_S = 60
LOG_PAGES = 5
# Where each SfM phase begins, as a share of the stage (mapping then grows with the photos registered).
SFM_PHASE_SHARE = {"extraction": 0.0, "matching": 0.25, "mapping": 0.5, "georeferencing": 0.9, "undistortion": 0.95}
MAPPING_SHARE = 0.4


def log_group(stage: Stage) -> str:
    return TRAINING_LOGS if stage is Stage.TRAIN else PROCESSING_LOGS


def find_log_stream(stage: Stage, sagemaker_job: str) -> dict[str, str] | None:
    """The CloudWatch log stream SageMaker writes ``sagemaker_job``'s container output to, once it exists."""
    group = log_group(stage)
    try:
        found = aws.client("logs").describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{sagemaker_job}/")
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None  # SageMaker creates the group with the account's first job of the kind
        raise
    streams = sorted(stream["logStreamName"] for stream in found.get("logStreams", []))
    return {"group": group, "stream": streams[0]} if streams else None


def training_progress(sagemaker_job: str, since: datetime, total_steps: int | None) -> dict[str, Any] | None:
    """The training job's newest step, PSNR and Gaussian count from its CloudWatch metrics; None before the first."""
    host = [{"Name": "Host", "Value": f"{sagemaker_job}/algo-1"}]
    queries = [
        {"Id": query_id, "MetricStat": {"Metric": {"Namespace": TRAINING_METRICS, "MetricName": metric,
                                                   "Dimensions": host},
                                        "Period": METRIC_PERIOD_S, "Stat": statistic}}
        for query_id, metric, statistic in TRAINING_QUERIES
    ]  # fmt: skip
    end = datetime.now(UTC) + timedelta(seconds=METRIC_PERIOD_S)
    answer = aws.client("cloudwatch").get_metric_data(
        MetricDataQueries=queries, StartTime=since - timedelta(seconds=METRIC_PERIOD_S), EndTime=end,
        ScanBy="TimestampDescending",
    )  # fmt: skip
    newest = {result["Id"]: result["Values"][0] for result in answer["MetricDataResults"] if result.get("Values")}
    if "step" not in newest:
        return None
    live: dict[str, Any] = {"step": int(newest["step"]), "total_steps": total_steps}
    if "psnr" in newest:
        live["psnr"] = round(float(newest["psnr"]), 2)
    if "gaussians" in newest:
        live["gaussians"] = int(round(newest["gaussians"]))
    return live


def sfm_progress(log: dict[str, str], since_ms: int) -> dict[str, Any] | None:
    """The newest progress line of the sfm job's log stream at or after ``since_ms``; None when there is none."""
    request: dict[str, Any] = {"logGroupName": log["group"], "logStreamNames": [log["stream"]],
                               "filterPattern": f'"{MARKER}"', "startTime": since_ms}  # fmt: skip
    newest: tuple[int, dict[str, Any]] | None = None
    for _ in range(LOG_PAGES):
        page = aws.client("logs").filter_log_events(**request)
        for event in page.get("events", []):
            parsed = parse_progress(event["message"])
            if parsed is not None and (newest is None or event["timestamp"] >= newest[0]):
                newest = (event["timestamp"], dict(parsed))
        if not page.get("nextToken"):
            break
        request["nextToken"] = page["nextToken"]
    if newest is None:
        return None
    return newest[1] | {"log_time": newest[0]}


def _total_steps(job: dict[str, Any], default_preset: str, device: str) -> int | None:
    from spaceport.cloud.sizing import train_config

    try:
        return int(train_config(job.get("options") or {}, default_preset, device).iterations)
    except (ValueError, KeyError):
        return None


def _started(record: dict[str, Any]) -> datetime:
    started = record.get("started_at")
    return datetime.fromisoformat(started) if started else datetime.now(UTC) - timedelta(hours=1)


def read_stage(
    job: dict[str, Any], stage: Stage, default_preset: str, device: str = "cuda"
) -> tuple[dict | None, dict | None]:
    """What CloudWatch says now of the job's running SageMaker stage: (live progress, log stream), each None
    when there is nothing (yet); compress reports no progress, only its stream. A training job's step count is its
    preset's on ``device``, the one the stack's training jobs run on, unless the job names its own."""
    record = job.get("stages", {}).get(stage.value, {})
    name = job["sagemaker_job"]
    log = record.get("log") if (record.get("log") or {}).get("stream", "").startswith(f"{name}/") else None
    log = log or find_log_stream(stage, name)
    if stage is Stage.TRAIN:
        return training_progress(name, _started(record), _total_steps(job, default_preset, device)), log
    if stage is not Stage.SFM or log is None:
        return None, log
    previous = record.get("live") or {}
    since = int(previous.get("log_time") or _started(record).timestamp() * 1000)
    return sfm_progress(log, since), log


def _running_stage(job: dict[str, Any]) -> Stage | None:
    """The SageMaker stage a RUNNING job waits for, if any."""
    if job.get("status") != JobStatus.RUNNING or not job.get("sagemaker_job"):
        return None
    return Stage(job["current_stage"]) if job.get("current_stage") in ("sfm", "train", "compress") else None


def refresh(
    table_name: str, job: dict[str, Any], default_preset: str, every_s: float, device: str = "cuda"
) -> dict[str, Any]:
    """``job`` with its running SageMaker stage's live progress and log stream brought up to date (and recorded),
    at most once every ``every_s`` seconds; as it was when nothing runs, it is too soon, or CloudWatch fails."""
    stage, at = _running_stage(job), time.time()
    if stage is None or at - float(job.get("live_checked_at") or 0) < every_s:
        return job
    try:
        live, log = read_stage(job, stage, default_preset, device)
    except (ClientError, BotoCoreError) as error:
        logger.warning("live progress not read", extra={"job_id": job["job_id"], "error": str(error)})
        return job
    live = live | {"updated_at": now()} if live is not None else None
    if not record_stage(table_name, job, stage, live, log, at):
        return job
    record = dict(job["stages"][stage.value])
    record.update({key: value for key, value in (("live", live), ("log", log)) if value is not None})
    return dict(job, live_checked_at=at, stages=dict(job["stages"], **{stage.value: record}))


def record_stage(
    table_name: str, job: dict[str, Any], stage: Stage, live: dict | None, log: dict | None, checked_at: float
) -> bool:
    """Write the stage's live progress and log stream while the record still waits for the same SageMaker job;
    False when it moved on (the stage ended, another attempt started)."""
    sets, values = ["live_checked_at = :at"], {":at": to_dynamo(checked_at), ":name": job["sagemaker_job"]}
    names = {"#stages": "stages", "#stage": stage.value}
    if live is not None:
        sets.append("#stages.#stage.live = :live")
        values[":live"] = to_dynamo(live)
    if log is not None:
        sets.append("#stages.#stage.#log = :log")
        values[":log"] = log
        names["#log"] = "log"
    update = {"ExpressionAttributeNames": names} if len(sets) > 1 else {}
    try:
        aws.table(table_name).update_item(
            Key={"job_id": job["job_id"]}, UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="sagemaker_job = :name", ExpressionAttributeValues=values, **update,
        )  # fmt: skip
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def record_log_stream(table_name: str, job: dict[str, Any], stage: Stage) -> None:
    """Best effort, when a SageMaker stage ends: name its log stream in the record, so that a stage nobody
    watched (a failure above all) still says where its output is."""
    if (
        (job.get("stages", {}).get(stage.value, {}).get("log") or {})
        .get("stream", "")
        .startswith(f"{job['sagemaker_job']}/")
    ):
        return
    try:
        log = find_log_stream(stage, job["sagemaker_job"])
        if log is not None:
            record_stage(table_name, job, stage, None, log, time.time())
    except (ClientError, BotoCoreError) as error:
        logger.warning("log stream not recorded", extra={"job_id": job["job_id"], "error": str(error)})


def record_lambda_log(table_name: str, job_id: str, stage: Stage) -> None:
    """Name the log group and stream this Lambda writes to (the runtime's variables) as the stage's log."""
    group, stream = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME"), os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
    if not group or not stream:
        return
    aws.table(table_name).update_item(
        Key={"job_id": job_id},
        UpdateExpression="SET #stages.#stage.#log = :log",
        ExpressionAttributeNames={"#stages": "stages", "#stage": stage.value, "#log": "log"},
        ExpressionAttributeValues={":log": {"group": group, "stream": stream}},
    )


def progress_fraction(job: dict[str, Any], stages_done: int, stage_count: int) -> float:
    """The job's progress from 0 to 1: a share per stage done, and of the running stage what its live progress
    says (the training step over the steps; SfM's phase and, while it maps, the photos registered)."""
    record = job.get("stages", {}).get(job.get("current_stage") or "", {})
    live, share = record.get("live") or {}, 0.0
    if job.get("status") == JobStatus.RUNNING and record.get("status") == "RUNNING":
        if live.get("total_steps"):
            share = live.get("step", 0) / live["total_steps"]
        elif live.get("phase") in SFM_PHASE_SHARE:
            share = SFM_PHASE_SHARE[live["phase"]]
            if live["phase"] == "mapping" and live.get("photos"):
                share += MAPPING_SHARE * live.get("registered", 0) / live["photos"]
    return round((stages_done + min(1.0, share)) / stage_count, 3)
