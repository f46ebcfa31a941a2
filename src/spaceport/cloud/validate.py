"""The Validate task: validate the job's upload where it lies in S3 and publish the usable photos for SfM.

The validator (``spaceport.validation``) is the same code the CLI and the sfm stage run, so a job is accepted or
rejected for the same reasons everywhere. Its limits come from template parameters (environment).

Nothing is copied to the Lambda's /tmp: an archive is read through ranged GETs (its central directory, then one
member after another) and a folder upload one object at a time, each photo held in memory while it is judged.
A usable photo is published as soon as it is judged (a PUT of the bytes at hand, or a server-side copy of an
uploaded photo), so the upload is read once; if the upload is rejected after all, what was published is deleted.

Accepted photos are then sized against the training GPU (``spaceport.cloud.sizing``): a job the ``TrainInstanceType``
cannot hold is rejected here, naming what to change, rather than failing on the GPU after SfM. The Processing stages'
instances and volumes are chosen for the job's size (``spaceport.cloud.stage_resources``) and kept in its record.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from spaceport.cloud import aws, live, notify
from spaceport.cloud.jobs import JobsTable
from spaceport.cloud.models import JobStatus, Stage
from spaceport.cloud.s3io import S3ObjectReader, read_object
from spaceport.cloud.settings import ValidatorSettings
from spaceport.cloud.sizing import Photo, refusal_reason, train_config
from spaceport.cloud.stage_resources import StageTooLargeError, plan, stage_limits
from spaceport.contract import StageError

logger = Logger(child=True)

JOB_FILE = "job.json"
DELETE_BATCH = 1_000  # DeleteObjects takes at most 1,000 keys


class InputRejectedError(Exception):
    """The upload is not usable; the message lists every problem found. Never retried."""


def _limits(settings: ValidatorSettings) -> Any:
    from spaceport.validation import Limits  # imported here: only this task needs the validator (and Pillow)

    return Limits(
        max_images=settings.max_images,
        min_images=settings.min_images,
        max_archive_bytes=settings.max_archive_bytes,
        max_expanded_bytes=settings.max_expanded_bytes,
        max_image_pixels=settings.max_image_pixels,
    )


class _Publisher:
    """Puts each usable photo under ``jobs/<id>/images/`` as the validator hands it over; can take them back."""

    def __init__(self, bucket: str, job_id: str) -> None:
        self._bucket, self._prefix = bucket, f"jobs/{job_id}/images/"
        self.keys: list[str] = []
        self.photos: list[Photo] = []

    def put(self, image: Any, data: BinaryIO) -> None:
        key = self._published(image)
        aws.client("s3").put_object(Bucket=self._bucket, Key=key, Body=data)

    def copy(self, image: Any, source_key: str, etag: str) -> None:
        key = self._published(image)
        source = {"Bucket": self._bucket, "Key": source_key}
        aws.client("s3").copy_object(Bucket=self._bucket, Key=key, CopySource=source, CopySourceIfMatch=etag)

    def withdraw(self) -> None:
        """Delete what was published: a rejected upload must leave no photos for a later stage to find.

        Best effort, and never in the way of the error that made the upload fail: that one is the job's reason.
        """
        s3 = aws.client("s3")
        try:
            for start in range(0, len(self.keys), DELETE_BATCH):
                batch = [{"Key": key} for key in self.keys[start : start + DELETE_BATCH]]
                s3.delete_objects(Bucket=self._bucket, Delete={"Objects": batch, "Quiet": True})
        except (ClientError, BotoCoreError):
            logger.exception("published photos not withdrawn", extra={"photos": len(self.keys)})
        self.keys.clear()
        self.photos.clear()

    def _published(self, image: Any) -> str:
        """The key of ``image`` (a validator ``ImageInfo``), noted with its size for the GPU check."""
        key = self._prefix + image.relative
        self.keys.append(key)
        self.photos.append(Photo(image.width, image.height, image.size_bytes))
        return key


def _validate_archive(settings: ValidatorSettings, key: str, publisher: _Publisher) -> Any:
    """The archive, read in place through ranged GETs of the version that is there now."""
    from spaceport.validation import validate_archive

    s3 = aws.client("s3")
    head = s3.head_object(Bucket=settings.data_bucket, Key=key)
    reader = S3ObjectReader(s3, settings.data_bucket, key, head["ContentLength"], head["ETag"])
    report = validate_archive(
        reader,
        head["ContentLength"],
        _limits(settings),
        name=key,
        on_image=publisher.put,
    )
    logger.info("archive read", extra={"key": key, "requests": reader.requests, "bytes_read": reader.bytes_fetched})
    return report


def _validate_folder(settings: ValidatorSettings, prefix: str, publisher: _Publisher) -> Any:
    """Every object under the job's prefix except job.json, each read into memory once, usable ones copied."""
    from spaceport.validation import new_buffer, validate_files

    s3 = aws.client("s3")
    objects: dict[str, tuple[str, int, str]] = {}
    total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.data_bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :]
            if relative == JOB_FILE or not relative or relative.endswith("/"):
                continue
            if any(part in ("", ".", "..") for part in relative.split("/")):
                raise InputRejectedError(f"unsafe object name: {relative}")
            total += item["Size"]
            # A folder upload is read whole, like an archive's expansion: the same limit bounds this task's time.
            if total > settings.max_expanded_bytes:
                raise InputRejectedError(f"upload is over the limit of {settings.max_expanded_bytes} bytes")
            objects[relative] = (item["Key"], item["Size"], item["ETag"])

    def read(relative: str) -> BinaryIO:
        key, _, etag = objects[relative]
        return read_object(s3, settings.data_bucket, key, etag, sink=new_buffer())

    def publish(image: Any, data: BinaryIO) -> None:
        key, _, etag = objects[image.relative]
        publisher.copy(image, key, etag)

    files = [(relative, size) for relative, (_, size, _) in objects.items()]
    return validate_files(files, read, _limits(settings), name=prefix, on_image=publish)


def _size_stages(settings: ValidatorSettings, options: dict[str, Any], photos: list[Photo]) -> dict[str, Any]:
    """Refuse a job whose training run the configured GPU cannot hold (the train stage would, after SfM), that no
    allowed instance of a Processing stage holds, or whose SfM would outrun its time limit; else each Processing
    stage's needs, instance and volume."""
    try:
        reason = refusal_reason(options, settings.default_preset, photos, settings.train_instance_type)
        if reason is not None:
            raise InputRejectedError(reason)
        max_gaussians = train_config(options, settings.default_preset).max_gaussians
        sfm, compress = stage_limits(settings, Stage.SFM), stage_limits(settings, Stage.COMPRESS)
        return plan(sfm, compress, settings.sfm_max_runtime_s, photos, max_gaussians)
    except (StageError, StageTooLargeError) as error:  # StageError: options the train stage would refuse too
        raise InputRejectedError(str(error)) from error


def validate_job(settings: ValidatorSettings, job_id: str) -> dict[str, Any]:
    """Validate a job's upload and publish its usable photos under ``jobs/<id>/images/``.

    Raises:
        InputRejectedError: the upload cannot be used; the message lists every problem found, or says what to
            change for a job too large for the training GPU.
        S3ReadError: S3 failed a read (the state machine retries the task).
    """
    table = JobsTable(settings.jobs_table)
    job = table.get(job_id)
    table.begin_stage(job_id, Stage.VALIDATE)
    live.record_lambda_log(settings.jobs_table, job_id, Stage.VALIDATE)
    if job.get("status") != JobStatus.RUNNING:  # QUEUED to RUNNING is a change its subscribers (webhooks) hear of
        notify.status_change(settings, table.get(job_id))
    upload = job.get("upload", {})
    publisher = _Publisher(settings.data_bucket, job_id)
    try:
        if upload.get("kind") == "zip":
            report = _validate_archive(settings, upload["key"], publisher)
        else:
            report = _validate_folder(settings, upload["prefix"], publisher)
        if not report.accepted:
            problems = "; ".join(f"{p.path}: {p.message} ({p.code})" for p in report.problems)
            raise InputRejectedError(problems or "upload rejected")
        resources = _size_stages(settings, job.get("options") or {}, publisher.photos)
    except BaseException:
        publisher.withdraw()
        raise
    table.set_resources(job_id, resources)
    figures = {"images": report.images, "warnings": [w.message for w in report.warnings][:50]}
    images_uri = f"s3://{settings.data_bucket}/jobs/{job_id}/images/"
    table.end_stage(job_id, Stage.VALIDATE, "SUCCEEDED", figures, {"images": images_uri})
    logger.info("upload accepted", extra={"job_id": job_id, "images": report.images})
    return figures
