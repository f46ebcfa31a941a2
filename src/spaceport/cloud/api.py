"""The jobs API (HTTP API, IAM auth): create a job with presigned upload URLs (and sign a multipart upload's
remaining parts again), read, list, cancel (a pending multipart upload is aborted), retry."""

from __future__ import annotations

import base64
import json
import math
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spaceport.cloud import aws, cost, live, notify, webhook
from spaceport.cloud.jobs import JobConflictError, JobNotFoundError, JobsTable
from spaceport.cloud.models import (
    JOB_ID_PATTERN,
    SAGEMAKER_STAGES,
    STAGE_ORDER,
    TERMINAL_STATUSES,
    CreateJobRequest,
    JobStatus,
    RetryRequest,
    Stage,
)
from spaceport.cloud.pipeline import stop_sagemaker_jobs
from spaceport.cloud.settings import ApiSettings, ExecutionSettings, api_settings
from spaceport.cloud.sizing import train_config
from spaceport.cloud.slots import forget_job, queue_view, store
from spaceport.cloud.trigger import start_execution

logger = Logger(child=True)
app = APIGatewayHttpResolver()

# Archives above this go up in parts: one PUT is limited to 5 GB and a failed part is cheap to resend.
MULTIPART_THRESHOLD = 100 * 1024 * 1024
PART_BYTES = 64 * 1024 * 1024
MAX_PARTS = 1_000
PAGE_LIMIT = 100
# The list index's LastEvaluatedKey: the table key and the index key.
LIST_KEY_FIELDS = {"job_id", "list_pk", "created_at"}
# What a job view shows of each stage: ``live`` (a running stage's progress) and ``log`` (its CloudWatch stream).
# The compress stage's exports beside scene.sog, by their download link's name (``tiles`` lists the tileset's files).
EXPORT_LINKS = {"glb": "scene.glb", "spz": "scene.spz"}
TILES_PREFIX = "tiles/"
VIEWED_STAGE_FIELDS = ("status", "started_at", "ended_at", "figures", "attempts", "live", "log")
# What each stage's output needs from the stages before it, for POST /jobs/{id}/retry.
RETRY_NEEDS = {Stage.VALIDATE: None, Stage.SFM: "images", Stage.TRAIN: "sfm", Stage.COMPRESS: "model"}


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def _table(settings: ExecutionSettings) -> JobsTable:
    return JobsTable(settings.jobs_table)


def _job_or_404(settings: ExecutionSettings, job_id: str) -> dict[str, Any]:
    if not JOB_ID_PATTERN.match(job_id):
        raise NotFoundError(f"no job {job_id}")
    try:
        return _table(settings).get(job_id)
    except JobNotFoundError as error:
        raise NotFoundError(f"no job {job_id}") from error


def _presign(settings: ExecutionSettings, method: str, **params: Any) -> str:
    params["Bucket"] = settings.data_bucket
    return aws.client("s3").generate_presigned_url(method, Params=params, ExpiresIn=settings.url_expiry_s)


def _upload_urls(settings: ExecutionSettings, job_id: str, request: CreateJobRequest) -> dict[str, Any]:
    """Presigned PUTs, every key under ``uploads/<job_id>/`` by construction."""
    prefix = f"uploads/{job_id}/"
    if request.upload == "images":
        return {
            "kind": "images",
            "files": {name: _presign(settings, "put_object", Key=prefix + name) for name in request.file_names},
            "job_file": {"key": prefix + "job.json", "url": _presign(settings, "put_object", Key=prefix + "job.json")},
            "note": "upload every photo first, job.json last: its arrival starts the job",
        }
    key = prefix + "photos.zip"
    size = request.archive_bytes or 0
    if size <= MULTIPART_THRESHOLD:
        return {"kind": "zip", "key": key, "url": _presign(settings, "put_object", Key=key)}
    parts = math.ceil(size / PART_BYTES)
    if parts > MAX_PARTS:
        raise BadRequestError(f"archive of {size} bytes is too large")
    upload_id = aws.client("s3").create_multipart_upload(Bucket=settings.data_bucket, Key=key)["UploadId"]
    multipart = {"upload_id": upload_id, "parts": parts, "part_bytes": PART_BYTES}
    return _multipart_urls(settings, key, multipart, range(1, parts + 1))


def _multipart_urls(
    settings: ExecutionSettings, key: str, multipart: dict[str, Any], part_numbers: Iterable[int]
) -> dict[str, Any]:
    """Presigned URLs for some parts of a multipart upload (PUT each), and for completing it (POST, by a browser
    too: the bucket's CORS allows it and exposes each part's ETag)."""
    upload_id = multipart["upload_id"]
    return {
        "kind": "zip-multipart",
        "key": key,
        "upload_id": upload_id,
        "part_bytes": multipart["part_bytes"],
        "parts": [
            {
                "part_number": number,
                "url": _presign(settings, "upload_part", Key=key, UploadId=upload_id, PartNumber=number),
            }
            for number in part_numbers
        ],
        "complete_url": _presign(settings, "complete_multipart_upload", Key=key, UploadId=upload_id),
    }


@app.post("/jobs")
def create_job() -> Response:
    settings = api_settings()
    try:
        request = CreateJobRequest.model_validate(app.current_event.json_body or {})
    except (ValidationError, ValueError) as error:
        raise BadRequestError(str(error)) from error
    photos = request.declared_photos()
    if photos is not None and not settings.min_images <= photos <= settings.max_images:
        raise BadRequestError(
            f"{photos} photos: the upload must hold {settings.min_images} to {settings.max_images} photos "
            "(MinImages, MaxImages)"
        )
    job_id = str(uuid.uuid4())
    options = {"preset": settings.default_preset, **request.options().model_dump(exclude_none=True)}
    try:
        options = webhook.with_webhook(options, settings.default_webhook_url, settings.webhook_https_only)
    except webhook.WebhookUrlError as error:
        raise BadRequestError(str(error)) from error
    upload = {"kind": "zip", "key": f"uploads/{job_id}/photos.zip"}
    if request.upload == "images":
        upload = {"kind": "images", "prefix": f"uploads/{job_id}/"}
    # URLs first: an archive too large to upload is refused before any record exists.
    urls = _upload_urls(settings, job_id, request)
    multipart = None
    if urls["kind"] == "zip-multipart":
        multipart = {"upload_id": urls["upload_id"], "parts": len(urls["parts"]), "part_bytes": urls["part_bytes"]}
    _table(settings).create_awaiting_upload(job_id, options, upload, multipart)
    body = {"job_id": job_id, "status": JobStatus.AWAITING_UPLOAD, "expires_in": settings.url_expiry_s}
    return _json(201, body | {"upload": urls, "estimate": estimate(settings, options, photos)})


def estimate(settings: ApiSettings, options: dict[str, Any], photos: int | None) -> dict[str, Any]:
    """What the job should cost on SageMaker, from the declared photo count and the preset the job will train."""
    if photos is None:
        return {"missing": "declare photo_count (or name the photo files) for a cost estimate"}
    config = train_config(options, settings.default_preset)
    instances = {Stage.SFM: settings.sfm_instance_type, Stage.TRAIN: settings.train_instance_type,
                 Stage.COMPRESS: settings.compress_instance_type}  # fmt: skip
    runtimes = {Stage.SFM: settings.sfm_max_runtime_s, Stage.TRAIN: settings.train_max_runtime_s,
                Stage.COMPRESS: settings.compress_max_runtime_s}  # fmt: skip
    return cost.estimate(settings.prices, instances, runtimes, photos, config.iterations, config.max_gaussians)


def _download_links(settings: ExecutionSettings, job: dict[str, Any]) -> dict[str, Any]:
    """Presigned GETs of the job's own deliverables, and of the manifests that give each file's SHA-256: the scene
    and its exports (compress's manifest: ``glb``, ``spz`` and, on the globe, ``tiles``, one link per file of the
    tileset by its path in it), georef.json and the SfM model the viewer starts from (sfm's manifest)."""
    links: dict[str, Any] = {}
    bucket_prefix = f"s3://{settings.data_bucket}/"
    own_prefix = f"{bucket_prefix}jobs/{job['job_id']}/"
    outputs = dict(job.get("outputs", {}))
    if outputs.get("sfm"):
        outputs["sfm_manifest"] = outputs["sfm"].rstrip("/") + "/manifest.json"
    for name in ("scene", "compress_manifest", "georef", "sfm_manifest"):
        uri = outputs.get(name)
        if uri and uri.startswith(own_prefix):
            links[name] = _presign(settings, "get_object", Key=uri.removeprefix(bucket_prefix))
    presign = lambda key: _presign(settings, "get_object", Key=key)  # noqa: E731
    if "sfm_manifest" in links:
        model = _manifest_keys(settings, outputs["sfm_manifest"].removeprefix(bucket_prefix))
        if any(name.startswith("sparse/0/") for name in model):
            links["sfm_model"] = {name: presign(key) for name, key in model.items() if name.startswith("sparse/0/")}
    if "compress_manifest" in links:
        exports = _manifest_keys(settings, outputs["compress_manifest"].removeprefix(bucket_prefix))
        links |= {link: presign(exports[name]) for link, name in EXPORT_LINKS.items() if name in exports}
        tiles = {name.removeprefix(TILES_PREFIX): presign(key) for name, key in exports.items()
                 if name.startswith(TILES_PREFIX)}  # fmt: skip
        if tiles:
            links["tiles"] = tiles
    return links


def _manifest_keys(settings: ExecutionSettings, manifest_key: str) -> dict[str, str]:
    """{path in the stage's output: S3 key} of the files a stage's manifest lists; none when it cannot be read (the
    scene still downloads without them)."""
    try:
        body = aws.client("s3").get_object(Bucket=settings.data_bucket, Key=manifest_key, Range="bytes=0-16777215")
        files = json.loads(body["Body"].read()).get("files", {})
    except (ClientError, ValueError, AttributeError) as error:
        logger.info("manifest not read", extra={"key": manifest_key, "error": str(error)})
        return {}
    prefix = manifest_key.rsplit("/", 1)[0] + "/"
    return {name: prefix + name for name in files if ".." not in name}


def job_view(settings: ApiSettings, job: dict[str, Any], with_links: bool) -> dict[str, Any]:
    """The API's view of a job record: no tokens, no internal keys; what its SageMaker jobs billed so far."""
    stages = job.get("stages", {})
    done = sum(1 for stage in STAGE_ORDER if stages.get(stage.value, {}).get("status") == "SUCCEEDED")
    view = {
        "job_id": job["job_id"],
        "status": job["status"],
        "stage": job.get("current_stage"),
        "progress": live.progress_fraction(job, done, len(STAGE_ORDER)),
        "stages": {
            name: {k: v for k, v in record.items() if k in VIEWED_STAGE_FIELDS} for name, record in stages.items()
        },
        "options": job.get("options", {}),
        "failed_stage": job.get("failed_stage"),
        "failure_reason": job.get("failure_reason"),
        "cost": cost.summary(job.get("billing", {}), settings.prices),
        "created_at": job.get("created_at"),
        "updated_at": job.get("updated_at"),
    }
    hooks = webhook.deliveries_view(job)
    if hooks:
        view["webhook"] = hooks
    queue = queue_view(settings, job)
    if queue:
        view["queue"] = queue
        place = f"position {queue['position']} of {queue['waiting']}" if queue["position"] else "granted, starting"
        view["waiting"] = f"for a {queue['stage']} slot ({queue['slots']} at once): {place}"
    refused = stages.get(job.get("current_stage") or "", {}).get("quota_refused_since")
    if job["status"] == JobStatus.RUNNING and refused:
        since = datetime.fromtimestamp(refused, UTC).isoformat(timespec="seconds")
        view["waiting"] = f"for SageMaker's quota (ResourceLimitExceeded), retrying since {since}"
    if with_links and job["status"] == JobStatus.SUCCEEDED:
        view["downloads"] = _download_links(settings, job)
        view["expires_in"] = settings.url_expiry_s
    return view


@app.get("/jobs/<job_id>")
def get_job(job_id: str) -> Response:
    settings = api_settings()
    return _json(200, job_view(settings, _live(settings, _job_or_404(settings, job_id)), with_links=True))


def _live(settings: ApiSettings, job: dict[str, Any]) -> dict[str, Any]:
    """The job with its running stage's progress read from CloudWatch (at most every few seconds per job)."""
    return live.refresh(
        settings.jobs_table, job, settings.default_preset, settings.live_refresh_s, settings.train_device
    )


def _is_list_key(key: Any) -> bool:
    """Whether ``key`` has the shape of a LastEvaluatedKey from the list index."""
    return isinstance(key, dict) and set(key) == LIST_KEY_FIELDS and all(isinstance(v, str) for v in key.values())


@app.get("/jobs")
def list_jobs() -> Response:
    settings = api_settings()
    params = app.current_event.query_string_parameters or {}
    try:
        limit = max(1, min(PAGE_LIMIT, int(params.get("limit", 25))))
        start_key = json.loads(base64.urlsafe_b64decode(params["next"])) if params.get("next") else None
        # A tampered token would otherwise reach DynamoDB and fail there as a 500.
        if start_key is not None and not _is_list_key(start_key):
            raise ValueError("not a list key")
    except ValueError as error:
        raise BadRequestError("invalid limit or next") from error
    items, last_key = _table(settings).list_page(limit, start_key)
    body: dict[str, Any] = {"jobs": [job_view(settings, _live(settings, item), with_links=False) for item in items]}
    if last_key:
        body["next"] = base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode()
    return _json(200, body)


class PartsRequest(BaseModel):
    """POST /jobs/{id}/upload/parts body: the parts to sign again; by default every part S3 does not hold yet."""

    model_config = ConfigDict(extra="forbid")

    part_numbers: list[int] | None = Field(default=None, max_length=MAX_PARTS)


def sign_remaining_parts(settings: ExecutionSettings, job: dict[str, Any], numbers: list[int] | None) -> dict:
    """Fresh URLs for an upload still awaited: part URLs expire ``UploadUrlExpirySeconds`` after they are signed, and
    a large archive on a slow link takes longer than that. A single-PUT archive gets a fresh PUT URL."""
    multipart = job.get("multipart")
    if job["status"] == JobStatus.AWAITING_UPLOAD and not multipart and job.get("upload", {}).get("kind") == "zip":
        # A single-PUT archive whose URL expired before it went up: sign it again.
        key = job["upload"]["key"]
        return {"kind": "zip", "key": key, "url": _presign(settings, "put_object", Key=key)}
    if job["status"] != JobStatus.AWAITING_UPLOAD or not multipart:
        raise JobConflictError(f"job {job['job_id']} is {job['status']}, not awaiting an upload of parts")
    key, total = job["upload"]["key"], int(multipart["parts"])
    uploaded = {}
    if numbers is None:
        uploaded = _uploaded_parts(settings, key, multipart["upload_id"], job["job_id"])
        numbers = [number for number in range(1, total + 1) if number not in uploaded]
    outside = sorted({number for number in numbers if not 1 <= number <= total})
    if outside:
        raise BadRequestError(f"part numbers {outside} are outside this upload's parts 1 to {total}")
    urls = _multipart_urls(settings, key, multipart, sorted(set(numbers)))
    urls["uploaded_parts"] = [{"part_number": number, "etag": etag} for number, etag in sorted(uploaded.items())]
    return urls


def _uploaded_parts(settings: ExecutionSettings, key: str, upload_id: str, job_id: str) -> dict[int, str]:
    """The parts S3 already holds, with the ETags the completion needs."""
    parts: dict[int, str] = {}
    try:
        pages = aws.client("s3").get_paginator("list_parts")
        for page in pages.paginate(Bucket=settings.data_bucket, Key=key, UploadId=upload_id):
            parts.update({part["PartNumber"]: part["ETag"] for part in page.get("Parts", [])})
    except ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchUpload":
            # Completed, aborted, or expired by the bucket's lifecycle rule: a new job is the way on.
            raise JobConflictError(f"job {job_id}'s upload is no longer open; create a new job") from error
        raise
    return parts


@app.post("/jobs/<job_id>/upload/parts")
def sign_upload_parts(job_id: str) -> Response:
    settings = api_settings()
    job = _job_or_404(settings, job_id)
    try:
        request = PartsRequest.model_validate(app.current_event.json_body or {})
    except (ValidationError, ValueError) as error:
        raise BadRequestError(str(error)) from error
    try:
        urls = sign_remaining_parts(settings, job, request.part_numbers)
    except JobConflictError as error:
        return _json(409, {"message": str(error)})
    return _json(200, {"job_id": job_id, "upload": urls, "expires_in": settings.url_expiry_s})


def cancel(settings: ExecutionSettings, job: dict[str, Any]) -> dict[str, Any]:
    """Record CANCELLED first (so no later task revives the job), then abort a pending multipart upload, stop the
    execution and every SageMaker job recorded for the job, and give back the slots its execution holds and its
    place in a queue (nothing it does not hold), granting them to the next in line."""
    record, changed = _table(settings).finish(job["job_id"], JobStatus.CANCELLED, reason="cancelled by request")
    if not changed:
        raise JobConflictError(f"job {job['job_id']} already ended {record['status']}")
    if job["status"] == JobStatus.AWAITING_UPLOAD and job.get("multipart"):
        _abort_upload(settings, job)
    if job.get("execution_arn"):
        try:
            aws.client("stepfunctions").stop_execution(
                executionArn=job["execution_arn"], error="Cancelled", cause="cancelled by request"
            )
        except ClientError as error:
            logger.info("execution not stopped", extra={"error": str(error)})
    if job.get("current_stage") in SAGEMAKER_STAGES:
        stop_sagemaker_jobs(job)
    forget_job(settings, job)
    notify.status_change(settings, record)
    return record


def _abort_upload(settings: ExecutionSettings, job: dict[str, Any]) -> None:
    """Best effort: the parts sent so far are billed until the upload is aborted (or the lifecycle rule does it)."""
    try:
        aws.client("s3").abort_multipart_upload(
            Bucket=settings.data_bucket, Key=job["upload"]["key"], UploadId=job["multipart"]["upload_id"]
        )
    except ClientError as error:
        logger.info("multipart upload not aborted", extra={"error": str(error)})


@app.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str) -> Response:
    settings = api_settings()
    job = _job_or_404(settings, job_id)
    try:
        record = cancel(settings, job)
    except JobConflictError as error:
        return _json(409, {"message": str(error)})
    return _json(200, job_view(settings, record, with_links=False))


def retry(settings: ExecutionSettings, job: dict[str, Any], from_stage: Stage | None) -> dict[str, Any]:
    """Rerun from ``from_stage`` (default: the stage that failed), reusing the outputs recorded before it."""
    if JobStatus(job["status"]) not in TERMINAL_STATUSES - {JobStatus.SUCCEEDED}:
        raise JobConflictError(f"job {job['job_id']} is {job['status']}; only FAILED or CANCELLED jobs retry")
    stage = from_stage or Stage(job.get("failed_stage") or job.get("current_stage") or Stage.VALIDATE)
    needed = RETRY_NEEDS[stage]
    if needed and needed not in job.get("outputs", {}):
        raise JobConflictError(f"cannot retry from {stage}: no {needed} output from an earlier stage")
    table = _table(settings)
    # A retry queues behind the uploads already waiting: it takes a new ticket.
    table.requeue(job["job_id"], stage, store(settings).next_ticket())
    number = int(job.get("executions", 1)) + 1
    arn = start_execution(settings, job["job_id"], f"{job['job_id']}-retry-{number}", stage)
    table.set_execution(job["job_id"], arn, number)
    record = table.get(job["job_id"])
    notify.status_change(settings, record)
    return record


@app.post("/jobs/<job_id>/retry")
def retry_job(job_id: str) -> Response:
    settings = api_settings()
    job = _job_or_404(settings, job_id)
    try:
        request = RetryRequest.model_validate(app.current_event.json_body or {})
    except (ValidationError, ValueError) as error:
        raise BadRequestError(str(error)) from error
    try:
        record = retry(settings, job, request.from_stage)
    except JobConflictError as error:
        return _json(409, {"message": str(error)})
    return _json(202, job_view(settings, record, with_links=False))
