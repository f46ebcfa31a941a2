"""The state machine's tasks: start a SageMaker stage, complete it from its state change event, and record
the job's outcome. Validation lives in ``validate.py``."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from spaceport.cloud import aws, notify
from spaceport.cloud.images import resolve_image
from spaceport.cloud.jobs import JobsTable
from spaceport.cloud.models import (
    JobStatus,
    RecordOutcomeInput,
    Stage,
    StageResult,
    StartStageInput,
)
from spaceport.cloud.names import sagemaker_job_name
from spaceport.cloud.sagemaker_requests import (
    compress_request,
    final_metrics,
    job_prefix,
    sfm_request,
    train_request,
)
from spaceport.cloud.settings import CommonSettings, StageSettings

logger = Logger(child=True)

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
CAPACITY_CODES = frozenset({"ResourceLimitExceeded", "CapacityError", "InsufficientCapacityError"})
# Failure reasons SageMaker gives when it could not get instances: worth another attempt after a pause.
CAPACITY_REASONS = ("CapacityError", "InsufficientInstanceCapacity", "Insufficient capacity", "capacity")
# send_task_* answers for a token whose execution already ended (cancelled, timed out): nothing to resume.
STALE_TOKEN_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ExecutionDoesNotExist"})


class SageMakerThrottledError(Exception):
    """SageMaker throttled the Create*Job call; the state machine retries with backoff."""


class SageMakerCapacityUnavailableError(Exception):
    """No capacity or quota for the instance type; the state machine retries with backoff."""


class MissingStageOutputError(Exception):
    """A stage's input (an earlier stage's output) is not recorded: a retry from too late a stage."""


def _bucket_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _build_request(settings: StageSettings, stage: Stage, name: str, job: dict[str, Any]) -> tuple[str, dict]:
    job_id = job["job_id"]
    if stage is Stage.SFM:
        image = resolve_image(settings.sfm_repository, settings.sfm_image_tag)
        return "create_processing_job", sfm_request(settings, name, job_id, image)
    if stage is Stage.TRAIN:
        if "sfm" not in job.get("outputs", {}):
            raise MissingStageOutputError(f"job {job_id} has no sfm output to train on")
        image = resolve_image(settings.train_repository, settings.train_image_tag)
        return "create_training_job", train_request(settings, name, job_id, image, job.get("options", {}))
    model_uri = job.get("outputs", {}).get("model")
    if not model_uri:
        raise MissingStageOutputError(f"job {job_id} has no trained model to compress")
    image = resolve_image(settings.compress_repository, settings.compress_image_tag)
    return "create_processing_job", compress_request(settings, name, job_id, image, model_uri)


def start_stage(settings: StageSettings, task: StartStageInput) -> dict[str, Any]:
    """Check the stage's image, then start its SageMaker job under a fresh name and park the task token.

    The token is stored before the job is created, so even an immediate completion event finds it.
    """
    if task.stage is Stage.VALIDATE:
        raise ValueError("validate is not a SageMaker stage")
    table = JobsTable(settings.jobs_table)
    job = table.get(task.job_id)
    attempt = table.begin_stage(task.job_id, task.stage)
    if job.get("status") != JobStatus.RUNNING:
        notify.status_change(settings, table.get(task.job_id))
    name = sagemaker_job_name(task.job_id, task.stage, attempt)
    operation, request = _build_request(settings, task.stage, name, job)
    table.attach_sagemaker_job(task.job_id, task.stage, name, task.token)
    try:
        getattr(aws.client("sagemaker"), operation)(**request)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in THROTTLING_CODES:
            raise SageMakerThrottledError(f"{task.stage}: {error}") from error
        if code in CAPACITY_CODES:
            raise SageMakerCapacityUnavailableError(f"{task.stage}: {error}") from error
        raise
    logger.info(
        "started SageMaker job", extra={"job_id": task.job_id, "stage": task.stage.value, "sagemaker_job": name}
    )
    if table.get(task.job_id).get("status") == JobStatus.CANCELLED:
        # Cancelled while this job was being created: the cancel could not stop a job that did not exist yet.
        _stop_sagemaker_job({"sagemaker_job": name, "current_stage": task.stage})
    return {"sagemaker_job": name, "attempt": attempt}


def _describe(detail: dict[str, Any]) -> tuple[str, Stage | None, dict[str, Any]]:
    """Name, kind and the authoritative description of the job an event is about (never the event's word)."""
    sagemaker = aws.client("sagemaker")
    if "TrainingJobName" in detail:
        name = detail["TrainingJobName"]
        return name, Stage.TRAIN, sagemaker.describe_training_job(TrainingJobName=name)
    name = detail["ProcessingJobName"]
    return name, None, sagemaker.describe_processing_job(ProcessingJobName=name)


def _processing_figures(settings: CommonSettings, job_id: str, stage: Stage) -> dict[str, Any]:
    """The stage's manifest.json figures; a missing manifest means the output is incomplete."""
    key = f"jobs/{job_id}/{stage.value}/manifest.json"
    try:
        body = aws.client("s3").get_object(Bucket=settings.data_bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise MissingStageOutputError(f"{stage}: finished without {key}") from error
    manifest = json.loads(body)
    return {key: value for key, value in manifest.items() if key != "files"}


def _stage_outputs(settings: CommonSettings, job_id: str, stage: Stage, description: dict) -> dict[str, str]:
    prefix = job_prefix(settings.data_bucket, job_id, stage.value)
    if stage is Stage.SFM:
        return {"sfm": prefix}
    if stage is Stage.TRAIN:
        return {"model": description["ModelArtifacts"]["S3ModelArtifacts"]}
    return {"scene": prefix + "scene.sog", "sog": prefix + "sog/", "compress_manifest": prefix + "manifest.json"}


def _failure_error(status: str, reason: str) -> str:
    if status == "Stopped":
        return "StageStopped"
    if any(marker.lower() in reason.lower() for marker in CAPACITY_REASONS):
        return "SageMakerCapacityUnavailableError"
    return "StageFailed"


def complete_stage(settings: CommonSettings, detail: dict[str, Any]) -> dict[str, Any]:
    """Resume the waiting execution from a SageMaker job state change: success with the stage's figures and
    outputs, or failure with the container's own reason (ExitMessage / FailureReason)."""
    name, _, description = _describe(detail)
    status = description.get("TrainingJobStatus") or description.get("ProcessingJobStatus")
    if status not in ("Completed", "Failed", "Stopped"):
        return {"ignored": f"{name} is {status}"}
    table = JobsTable(settings.jobs_table)
    job = table.find_by_sagemaker_job(name)
    if job is None or job.get("sagemaker_job") != name or not job.get("wait_token"):
        # Someone else's job, a stale attempt or a duplicate event: there is nothing waiting for it.
        return {"ignored": f"no execution waits for {name}"}
    stage = Stage(job["current_stage"])
    token = job["wait_token"]
    if status == "Completed":
        try:
            figures = (
                final_metrics(description)
                if stage is Stage.TRAIN
                else _processing_figures(settings, job["job_id"], stage)
            )
        except MissingStageOutputError as error:
            return _send(token, failure=("StageFailed", str(error)))
        outputs = _stage_outputs(settings, job["job_id"], stage, description)
        table.end_stage(job["job_id"], stage, "SUCCEEDED", figures, outputs)
        result = StageResult(stage=stage, sagemaker_job=name, output=next(iter(outputs.values())), figures=figures)
        return _send(token, success=result.model_dump(mode="json"))
    reason = description.get("ExitMessage") or description.get("FailureReason") or ""
    if status == "Stopped":
        reason = reason or f"SageMaker job {name} stopped ({description.get('SecondaryStatus', 'Stopped')})"
    cause = f"{stage}: {reason or 'no reason given'}"
    table.note_stage_failure(job["job_id"], stage, cause)
    return _send(token, failure=(_failure_error(status, reason), cause))


def _send(token: str, success: dict | None = None, failure: tuple[str, str] | None = None) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    try:
        if failure is None:
            sfn.send_task_success(taskToken=token, output=json.dumps(success))
        else:
            sfn.send_task_failure(taskToken=token, error=failure[0], cause=failure[1][:32_000])
    except ClientError as error:
        if error.response["Error"]["Code"] in STALE_TOKEN_CODES:
            return {"ignored": "the execution no longer waits (cancelled or timed out)"}
        raise
    return {"resumed": "success" if failure is None else failure[0]}


def failure_reason(stage: str | None, error: dict[str, Any] | None) -> str:
    """One readable line from a Catch's Error / Cause: a Lambda's errorMessage, SageMaker's reason or the
    timeout, always naming the stage."""
    if not error:
        return f"{stage or 'pipeline'}: unknown error"
    name, cause = error.get("Error", "States.Unknown"), error.get("Cause") or ""
    if name == "States.Timeout":
        return f"{stage}: no completion within the stage's time limit (job ran too long or its event was lost)"
    try:
        parsed = json.loads(cause)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "errorMessage" in parsed:
        cause = f"{parsed.get('errorType', name)}: {parsed['errorMessage']}"
    if stage and not cause.startswith(f"{stage}:"):
        cause = f"{stage}: {cause or name}"
    return cause or name


def _stop_sagemaker_job(job: dict[str, Any]) -> None:
    """Best effort: a timed-out or cancelled stage must not keep billing."""
    name, stage = job.get("sagemaker_job"), job.get("current_stage")
    if not name or stage not in (Stage.SFM, Stage.TRAIN, Stage.COMPRESS):
        return
    sagemaker = aws.client("sagemaker")
    try:
        if stage == Stage.TRAIN:
            sagemaker.stop_training_job(TrainingJobName=name)
        else:
            sagemaker.stop_processing_job(ProcessingJobName=name)
    except ClientError as error:
        # ValidationException: the job already ended, which is what we want.
        logger.info("SageMaker job not stopped", extra={"sagemaker_job": name, "error": str(error)})


def record_outcome(settings: CommonSettings, task: RecordOutcomeInput) -> dict[str, Any]:
    """Write the job's final status once and notify; a job already CANCELLED stays CANCELLED."""
    table = JobsTable(settings.jobs_table)
    job = table.get(task.job_id)
    if task.outcome is JobStatus.SUCCEEDED:
        record, changed = table.finish(task.job_id, JobStatus.SUCCEEDED)
    else:
        stage = task.stage.value if task.stage else job.get("current_stage") or Stage.VALIDATE.value
        error = task.error.model_dump() if task.error else None
        if error and not error.get("Cause"):
            # The stage's own reason, as complete_stage recorded it from SageMaker's description.
            error["Cause"] = job.get("stages", {}).get(stage, {}).get("reason")
        reason = failure_reason(stage, error)
        if task.error and task.error.Error == "States.Timeout":
            _stop_sagemaker_job(job)  # the job may still be running (and billing); a failed one has ended
        record, changed = table.finish(task.job_id, JobStatus.FAILED, failed_stage=stage, reason=reason)
    if changed:
        notify.status_change(settings, record)
    return {"job_id": task.job_id, "status": record["status"], "failure_reason": record.get("failure_reason")}
