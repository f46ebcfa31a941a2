"""The state machine's tasks: start a SageMaker stage, complete it from its state change event, and record
the job's outcome. Validation lives in ``validate.py``."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from spaceport.cloud import aws, billing, live, notify, slots
from spaceport.cloud.aws import STALE_TOKEN_CODES
from spaceport.cloud.images import resolve_image
from spaceport.cloud.jobs import JobsTable
from spaceport.cloud.models import (
    SAGEMAKER_STAGES,
    JobStatus,
    RecordOutcomeInput,
    Stage,
    StageResult,
    StartStageInput,
)
from spaceport.cloud.names import is_our_job, sagemaker_job_name
from spaceport.cloud.sagemaker_requests import (
    compress_request,
    final_metrics,
    job_prefix,
    sfm_request,
    train_request,
)
from spaceport.cloud.settings import CommonSettings, CompletionSettings, StageSettings
from spaceport.cloud.stage_resources import at_start, stage_limits

logger = Logger(child=True)

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
# The account's quota for the instance type is in use (another stack's jobs, or a quota lowered below the stage's
# MaxConcurrent*Jobs): retried for up to QuotaWaitSeconds, hours rather than minutes.
QUOTA_CODES = frozenset({"ResourceLimitExceeded"})
CAPACITY_CODES = frozenset({"CapacityError", "InsufficientCapacityError"})
# SageMaker's own FailureReason when it could not get instances starts with the error's name ("CapacityError:
# Unable to provision requested ML compute capacity...", the marker AWS Batch documents for SageMaker training
# jobs). Only those are worth another attempt: a container's failure arrives as "AlgorithmError: <its reason>",
# whatever words (PyTorch's "total capacity of 22 GiB") that reason holds.
CAPACITY_FAILURE = re.compile(r"^(CapacityError|InsufficientCapacityError|InsufficientInstanceCapacity)\b")
# How an out-of-memory failure reads in a stage's reason: PyTorch's CUDA message and exception, Python's own.
OUT_OF_MEMORY_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "MemoryError")
OUT_OF_MEMORY_ADVICE = {
    Stage.SFM: "use fewer or smaller photos, or a larger instance (SfmInstanceType)",
    Stage.TRAIN: "use fewer Gaussians (the job option max_gaussians, or the fast preset), smaller photos, "
    "or a larger GPU instance (TrainInstanceType)",
    Stage.COMPRESS: "use a larger instance (CompressInstanceType)",
}


class SageMakerThrottledError(Exception):
    """SageMaker throttled the Create*Job call; the state machine retries with backoff."""


class SageMakerCapacityUnavailableError(Exception):
    """No capacity for the instance type; the state machine retries with backoff."""


class SageMakerQuotaExceededError(Exception):
    """ResourceLimitExceeded: the quota is in use; the state machine retries (every 15 minutes at most) while the
    stage has waited less than QuotaWaitSeconds."""


class SageMakerQuotaWaitExpiredError(Exception):
    """ResourceLimitExceeded for longer than QuotaWaitSeconds: the job fails, naming the quota to raise."""


class MissingStageOutputError(Exception):
    """A stage's input (an earlier stage's output) is not recorded: a retry from too late a stage."""


def clock() -> float:
    """Now, in epoch seconds (the tests run it on the state machine's simulated backoff time)."""
    return time.time()


def quota_name(settings: StageSettings, stage: Stage, instance_type: str) -> str:
    """The Service Quotas name (Amazon SageMaker) that limits how many of the stage's jobs on ``instance_type`` may
    run at once."""
    if stage is Stage.TRAIN:
        usage = "spot training job usage" if settings.spot_training else "training job usage"
        return f"{instance_type} for {usage}"
    return f"{instance_type} for processing job usage"


def _instance_type(request: dict[str, Any]) -> str:
    if "ResourceConfig" in request:
        return str(request["ResourceConfig"]["InstanceType"])
    return str(request["ProcessingResources"]["ClusterConfig"]["InstanceType"])


def _quota_refusal(settings: StageSettings, task: StartStageInput, error: ClientError, instance_type: str) -> Exception:
    """The error a ResourceLimitExceeded becomes: retried while the stage has waited less than QuotaWaitSeconds
    since SageMaker first refused it, then fatal with a reason that names the quota."""
    at = clock()
    since = JobsTable(settings.jobs_table).note_quota_refusal(task.job_id, task.stage, at)
    waited, quota = at - since, quota_name(settings, task.stage, instance_type)
    message = error.response["Error"].get("Message", "")
    if waited < settings.quota_wait_s:
        return SageMakerQuotaExceededError(
            f'{task.stage}: ResourceLimitExceeded ({message}); waiting for the quota "{quota}" '
            f"({waited:.0f} of {settings.quota_wait_s} s, QuotaWaitSeconds)"
        )
    return SageMakerQuotaWaitExpiredError(
        f"{task.stage}: SageMaker refused the job for {waited / 3600:.1f} h with ResourceLimitExceeded "
        f'(QuotaWaitSeconds is {settings.quota_wait_s} s): raise the quota "{quota}" in Service Quotas '
        f"(Amazon SageMaker), or end the other jobs that use it, or lower MaxConcurrent{task.stage.value.title()}Jobs "
        f"to what the quota allows. SageMaker said: {message}"
    )


def _bucket_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _build_request(settings: StageSettings, stage: Stage, name: str, job: dict[str, Any]) -> tuple[str, dict]:
    job_id = job["job_id"]
    # Sized again from the needs recorded at validate, for the instances deployed now (a retry after a redeploy).
    resources = None
    if stage is not Stage.TRAIN:
        resources = at_start(stage, (job.get("resources") or {}).get(stage.value), stage_limits(settings, stage))
    if stage is Stage.SFM:
        image = resolve_image(settings.sfm_repository, settings.sfm_image_tag)
        request = sfm_request(settings, name, job_id, image, job.get("options", {}), resources)
        return "create_processing_job", request
    if stage is Stage.TRAIN:
        if "sfm" not in job.get("outputs", {}):
            raise MissingStageOutputError(f"job {job_id} has no sfm output to train on")
        image = resolve_image(settings.train_repository, settings.train_image_tag)
        return "create_training_job", train_request(settings, name, job_id, image, job.get("options", {}))
    model_uri = job.get("outputs", {}).get("model")
    if not model_uri:
        raise MissingStageOutputError(f"job {job_id} has no trained model to compress")
    image = resolve_image(settings.compress_repository, settings.compress_image_tag)
    georef_uri = job.get("outputs", {}).get("georef")
    return "create_processing_job", compress_request(settings, name, job_id, image, model_uri, resources, georef_uri)


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
    # An earlier attempt whose starter failed after its Create call (a Lambda service error, a timeout) left a job
    # that nothing waits for; a failed or stopped one has ended, and stopping it again is harmless.
    stop_sagemaker_jobs(job, only=task.stage)
    name = sagemaker_job_name(task.job_id, task.stage, attempt)
    operation, request = _build_request(settings, task.stage, name, job)
    record = job.get("stages", {}).get(task.stage.value, {})
    table.attach_sagemaker_job(task.job_id, task.stage, name, task.token)
    try:
        getattr(aws.client("sagemaker"), operation)(**request)
    except ClientError as error:
        # An answer, so no job was created: keep the list of attempts to jobs that may exist.
        table.forget_refused_attempt(task.job_id, task.stage, name, len(record.get("sagemaker_jobs") or []))
        code = error.response["Error"]["Code"]
        if code in THROTTLING_CODES:
            raise SageMakerThrottledError(f"{task.stage}: {error}") from error
        if code in QUOTA_CODES:
            instance_type = _instance_type(request)  # what SageMaker refused, which may not be what was planned
            refusal = _quota_refusal(settings, task, error, instance_type)  # records when it began
            if task.execution:  # the stage's other jobs on that type wait until this one, first in line, has it
                slots.note_quota_wait(settings, task.stage, task.execution, waiting=True, instance_type=instance_type)
            raise refusal from error
        if code in CAPACITY_CODES:
            raise SageMakerCapacityUnavailableError(f"{task.stage}: {error}") from error
        raise
    logger.info(
        "started SageMaker job", extra={"job_id": task.job_id, "stage": task.stage.value, "sagemaker_job": name}
    )
    # The job exists now: nothing below may fail the stage (its failure path would stop the job just created).
    if "quota_refused_since" in record:
        _end_quota_wait(settings, table, task)
    if _cancelled(table, task.job_id):
        # Cancelled while this job was being created: the cancel could not stop a job that did not exist yet.
        _stop(name, task.stage)
    return {"sagemaker_job": name, "attempt": attempt}


def _end_quota_wait(settings: StageSettings, table: JobsTable, task: StartStageInput) -> None:
    """SageMaker accepted the stage's job: lift the pause of the stage's grants and forget the refusal. Best effort,
    each on its own: a pause not lifted here is lifted by the sweeper once the refusal is forgotten, and at the
    latest when the holder gives its slot back."""
    if task.execution:
        slots.note_quota_wait(settings, task.stage, task.execution, waiting=False)  # never raises
    try:
        table.clear_quota_refusal(task.job_id, task.stage)
    except (ClientError, BotoCoreError):
        logger.exception("quota refusal not cleared; the job runs on", extra={"job_id": task.job_id})


def _cancelled(table: JobsTable, job_id: str) -> bool:
    """Whether the job was cancelled meanwhile; False when its record cannot be read now (logged: a cancel that
    raced the job's creation then leaves that job running to its end)."""
    try:
        return table.get(job_id).get("status") == JobStatus.CANCELLED
    except (ClientError, BotoCoreError):
        logger.exception("job not checked for a cancel after its SageMaker job was created", extra={"job_id": job_id})
        return False


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
        return {"sfm": prefix, "georef": prefix + "georef.json"}
    if stage is Stage.TRAIN:
        return {"model": description["ModelArtifacts"]["S3ModelArtifacts"]}
    return {"scene": prefix + "scene.sog", "sog": prefix + "sog/", "compress_manifest": prefix + "manifest.json"}


def stage_failure(stage: Stage, status: str, description: dict[str, Any]) -> tuple[str, str]:
    """The error name and cause that a failed or stopped SageMaker job resumes its task with.

    ``SageMakerCapacityUnavailableError`` (retried by the state machine) only for SageMaker's own capacity
    markers; ``StageOutOfMemoryError`` with what to change; ``StageStopped``; else ``StageFailed``. The cause names
    the stage and keeps the container's own reason (ExitMessage, or FailureReason).
    """
    failure_reason = description.get("FailureReason") or ""
    reason = description.get("ExitMessage") or failure_reason
    if status == "Stopped":
        name = description.get("TrainingJobName") or description.get("ProcessingJobName") or "the SageMaker job"
        secondary = description.get("SecondaryStatus", status)
        return "StageStopped", f"{stage}: {reason or f'SageMaker job {name} stopped ({secondary})'}"
    if CAPACITY_FAILURE.match(failure_reason):
        return "SageMakerCapacityUnavailableError", f"{stage}: {failure_reason}"
    own = reason.removeprefix("AlgorithmError: ").removeprefix(f"{stage}: ")
    if any(marker in reason for marker in OUT_OF_MEMORY_MARKERS):
        return "StageOutOfMemoryError", f"{stage}: out of memory ({own}); {OUT_OF_MEMORY_ADVICE[stage]}"
    return "StageFailed", f"{stage}: {own or 'no reason given'}"


def complete_stage(settings: CompletionSettings, detail: dict[str, Any]) -> dict[str, Any]:
    """Resume the waiting execution from an ended SageMaker job: success with the stage's figures and outputs, or
    failure with the container's own reason (ExitMessage / FailureReason); then record what the job billed.

    The token is released only once Step Functions has the outcome: when the send fails (throttled, this Lambda
    timing out), EventBridge delivers the event again and the retry finds the token where it was. Billing comes
    after the outcome, so that no billing error (a throttled write) holds up the pipeline: it fails this
    invocation, and the redelivered event, which finds the token released, bills the job.
    """
    name = detail.get("TrainingJobName") or detail.get("ProcessingJobName") or ""
    if not is_our_job(name):
        # Another team's job: our role may not describe it, and no execution of ours waits for it.
        return {"ignored": f"{name or 'an unnamed job'} is not a Spaceport job"}
    description = billing.describe(name, "TrainingJobName" in detail)
    status = description.get("TrainingJobStatus") or description.get("ProcessingJobStatus")
    if status not in ("Completed", "Failed", "Stopped"):
        return {"ignored": f"{name} is {status}"}
    table = JobsTable(settings.jobs_table)
    outcome = _hand_over_outcome(settings, table, name, status, description)
    billing.record(settings.prices, table, name, description)
    return outcome


def _hand_over_outcome(
    settings: CompletionSettings, table: JobsTable, name: str, status: str, description: dict[str, Any]
) -> dict[str, Any]:
    """Record the ended job's stage and send its outcome to the execution that waits for it, if one does."""
    job = table.find_by_sagemaker_job(name)
    if job is None or job.get("sagemaker_job") != name or not job.get("wait_token"):
        # A stale attempt or a duplicate event: there is nothing waiting for it.
        return {"ignored": f"no execution waits for {name}"}
    stage, token, job_id = Stage(job["current_stage"]), job["wait_token"], job["job_id"]
    live.record_log_stream(settings.jobs_table, job, stage)  # best effort: where its output is, whatever happened
    if status == "Completed":
        try:
            figures = (
                final_metrics(description) if stage is Stage.TRAIN else _processing_figures(settings, job_id, stage)
            )
        except MissingStageOutputError as error:
            return _resume(table, job_id, name, token, failure=("StageFailed", str(error)))
        outputs = _stage_outputs(settings, job_id, stage, description)
        if not table.record_stage_result(job_id, stage, name, figures, outputs):
            return {"ignored": f"the job no longer waits for {name}"}
        result = StageResult(stage=stage, sagemaker_job=name, output=next(iter(outputs.values())), figures=figures)
        return _resume(table, job_id, name, token, success=result.model_dump(mode="json"))
    failure = stage_failure(stage, status, description)
    if not table.note_stage_failure(job_id, stage, name, failure[1]):
        return {"ignored": f"the job no longer waits for {name}"}
    return _resume(table, job_id, name, token, failure=failure)


def _resume(
    table: JobsTable,
    job_id: str,
    name: str,
    token: str,
    success: dict | None = None,
    failure: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Send the outcome, then (only then) release the token: a send that raises leaves it for the retry."""
    outcome = _send(token, success, failure)
    table.release_token(job_id, name, token)
    return outcome


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


def failure_reason(stage: str | None, error: dict[str, Any] | None, queued: bool = False) -> str:
    """One readable line from a Catch's Error / Cause: a Lambda's errorMessage, SageMaker's reason or the
    timeout (of a stage, or with ``queued`` of the wait for its slot), always naming the stage."""
    if not error:
        return f"{stage or 'pipeline'}: unknown error"
    name, cause = error.get("Error", "States.Unknown"), error.get("Cause") or ""
    if name == "States.Timeout" and queued:
        return f"{stage}: waited longer than MaxQueueWaitSeconds for a {stage} slot (too many jobs queued)"
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


def stop_sagemaker_jobs(job: dict[str, Any], only: Stage | None = None) -> list[str]:
    """Best effort: stop every SageMaker job recorded for ``job`` (every attempt of every stage, or of ``only``), so
    that none keeps billing; returns the names asked to stop. Stopping a job that already ended is harmless."""
    names = []
    for stage in SAGEMAKER_STAGES if only is None else (only,):
        record = job.get("stages", {}).get(stage.value, {})
        attempts = list(record.get("sagemaker_jobs") or [])
        if record.get("sagemaker_job") and record["sagemaker_job"] not in attempts:
            attempts.append(record["sagemaker_job"])  # a record written before attempts were listed
        for name in attempts:
            _stop(name, stage)
            names.append(name)
    return names


def _stop(name: str, stage: Stage) -> None:
    sagemaker = aws.client("sagemaker")
    try:
        if stage is Stage.TRAIN:
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
        # A job still QUEUED with a queue entry failed while it waited for that stage's slot (its wait timed out).
        queued = job.get("queue") if job.get("status") == JobStatus.QUEUED else None
        stage = task.stage.value if task.stage else (queued or {}).get("stage") or job.get("current_stage")
        stage = stage or Stage.VALIDATE.value
        error = task.error.model_dump() if task.error else None
        if error and not error.get("Cause"):
            # The stage's own reason, as complete_stage recorded it from SageMaker's description.
            error["Cause"] = job.get("stages", {}).get(stage, {}).get("reason")
        reason = failure_reason(stage, error, queued=bool(queued))
        # Whatever the error: a timed-out stage's job may still run, and so may a job whose starter failed after
        # creating it. Every attempt's job is recorded before it is created, so none is forgotten.
        stop_sagemaker_jobs(job)
        record, changed = table.finish(task.job_id, JobStatus.FAILED, failed_stage=stage, reason=reason)
    if changed:
        notify.status_change(settings, record)
    return {"job_id": task.job_id, "status": record["status"], "failure_reason": record.get("failure_reason")}
