"""Start a job from an upload (S3 Object Created through EventBridge), exactly once.

Upload contract, under the data bucket:
- ``uploads/<job-id>/<name>.zip``: one archive of photos starts the job when it arrives.
- ``uploads/<job-id>/<photos...>`` then ``uploads/<job-id>/job.json`` (options, e.g. ``{"preset": "quality"}``),
  written last: job.json's arrival starts the job over every photo under the prefix.
``<job-id>`` is 3 to 40 characters of ``a-z``, ``0-9`` and ``-`` (POST /jobs hands one out). Any other key is
ignored. A duplicate event, or a second archive for a started job, starts nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from pydantic import ValidationError

from spaceport.cloud import aws, notify, webhook
from spaceport.cloud.jobs import JobNotFoundError, JobsTable
from spaceport.cloud.models import JOB_ID_PATTERN, ExecutionInput, JobOptions, JobStatus, Stage
from spaceport.cloud.settings import ExecutionSettings
from spaceport.cloud.slot_table import SlotTable

logger = Logger(child=True)

UPLOAD_KEY = re.compile(r"^uploads/(?P<job_id>[^/]+)/(?P<rest>.+)$")
JOB_FILE_LIMIT = 64 * 1024


class InvalidJobFileError(Exception):
    """job.json is not valid options."""


def parse_upload_key(key: str) -> tuple[str, dict[str, str]] | None:
    """The job id and upload description for a key that starts a job, else None."""
    match = UPLOAD_KEY.match(key)
    if not match or not JOB_ID_PATTERN.match(match["job_id"]):
        return None
    job_id, rest = match["job_id"], match["rest"]
    if rest == "job.json":
        return job_id, {"kind": "images", "prefix": f"uploads/{job_id}/"}
    if "/" not in rest and rest.lower().endswith(".zip"):
        return job_id, {"kind": "zip", "key": key}
    return None


def _read_job_file(settings: ExecutionSettings, key: str) -> dict[str, Any]:
    body = aws.client("s3").get_object(Bucket=settings.data_bucket, Key=key, Range=f"bytes=0-{JOB_FILE_LIMIT}")
    try:
        return JobOptions.model_validate(json.loads(body["Body"].read())).model_dump(exclude_none=True)
    except (ValueError, ValidationError) as error:
        raise InvalidJobFileError(f"{key}: {error}") from error


def start_execution(settings: ExecutionSettings, job_id: str, name: str, start_at: Stage) -> str:
    """Start (or find) the execution called ``name``; identical name and input make a repeat harmless."""
    payload = ExecutionInput(job_id=job_id, start_at=start_at).model_dump_json()
    sfn = aws.client("stepfunctions")
    try:
        return sfn.start_execution(stateMachineArn=settings.state_machine_arn, name=name, input=payload)["executionArn"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
            raise
        return f"{settings.state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


def handle_object_created(settings: ExecutionSettings, bucket: str, key: str) -> dict[str, Any]:
    """Claim the job in the table (one winner among duplicate events), then start its execution."""
    parsed = parse_upload_key(key) if bucket == settings.data_bucket else None
    if parsed is None:
        return {"started": False, "reason": f"not a job-starting key: {key}"}
    job_id, upload = parsed
    table = JobsTable(settings.jobs_table)
    try:
        existing = table.get(job_id)
    except JobNotFoundError:
        existing = {}
    options = {"preset": settings.default_preset, **existing.get("options", {})}
    problem = None
    if upload["kind"] == "images":
        try:
            options.update(_read_job_file(settings, key))
        except InvalidJobFileError as error:
            problem = str(error)
    try:
        options = webhook.with_webhook(options, settings.default_webhook_url, settings.webhook_https_only)
    except webhook.WebhookUrlError as error:
        problem, options = f"{key}: {error}", {k: v for k, v in options.items() if k != "webhook_url"}
    # The ticket is the job's place in upload order: every stage's queue serves the lowest first.
    ticket = SlotTable(settings.slots_table, settings.jobs_table).next_ticket()
    claimed = table.claim_for_start(job_id, options, upload, ticket)
    if not claimed:
        current = table.get(job_id)
        # A claim that crashed before its execution started is finished here; anything else is a duplicate.
        if current["status"] != JobStatus.QUEUED or current.get("execution_arn") or current.get("upload") != upload:
            return {"started": False, "job_id": job_id, "reason": "duplicate"}
    if problem:
        record, _ = table.finish(job_id, JobStatus.FAILED, failed_stage=Stage.VALIDATE.value, reason=problem)
        notify.status_change(settings, record)
        return {"started": False, "job_id": job_id, "reason": problem}
    arn = start_execution(settings, job_id, job_id, Stage.VALIDATE)
    table.set_execution(job_id, arn, 1)
    if claimed:
        notify.status_change(settings, table.get(job_id))
    logger.info("job started", extra={"job_id": job_id, "execution": arn})
    return {"started": True, "job_id": job_id, "execution_arn": arn}
