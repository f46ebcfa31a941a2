"""The Validate task: fetch the job's upload into /tmp, run the shared validator, publish the usable photos.

The validator (``spaceport.validation``) is the same code the local run uses, so a job is accepted or
rejected for the same reasons everywhere. Its limits come from template parameters (environment).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from spaceport.cloud import aws
from spaceport.cloud.jobs import JobsTable
from spaceport.cloud.models import Stage
from spaceport.cloud.settings import ValidatorSettings

logger = Logger(child=True)

JOB_FILE = "job.json"


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


def _download(s3: Any, bucket: str, key: str, target: Path) -> None:
    """Stream one object to a file on this thread: a Lambda gains nothing from download_file's thread pool."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    with target.open("wb") as handle:
        for chunk in body.iter_chunks(1 << 20):
            handle.write(chunk)


def _download_archive(settings: ValidatorSettings, key: str, workdir: Path) -> Path:
    """Download the archive (after a size check); the validator extracts it safely itself."""
    s3 = aws.client("s3")
    size = s3.head_object(Bucket=settings.data_bucket, Key=key)["ContentLength"]
    if size > settings.max_archive_bytes:
        raise InputRejectedError(f"archive is {size} bytes, over the limit of {settings.max_archive_bytes}")
    archive = workdir / "upload.zip"
    _download(s3, settings.data_bucket, key, archive)
    return archive


def _download_folder(settings: ValidatorSettings, prefix: str, workdir: Path) -> Path:
    """Download every object under the job's prefix except job.json, refusing early when over the limits."""
    s3 = aws.client("s3")
    photos = workdir / "photos"
    photos.mkdir()
    count = total = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.data_bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :]
            if relative == JOB_FILE or not relative or relative.endswith("/"):
                continue
            count, total = count + 1, total + item["Size"]
            if count > settings.max_images:
                raise InputRejectedError(f"more than {settings.max_images} files uploaded")
            if total > settings.max_expanded_bytes:
                raise InputRejectedError(f"upload is over the limit of {settings.max_expanded_bytes} bytes")
            target = (photos / relative).resolve()
            if not target.is_relative_to(photos.resolve()):
                raise InputRejectedError(f"unsafe object name: {relative}")
            target.parent.mkdir(parents=True, exist_ok=True)
            _download(s3, settings.data_bucket, item["Key"], target)
    return photos


def validate_job(settings: ValidatorSettings, job_id: str) -> dict[str, Any]:
    """Validate a job's upload and publish its usable photos under ``jobs/<id>/images/``.

    Raises:
        InputRejectedError: the upload cannot be used; the message lists every problem found.
    """
    from spaceport.validation import validated_input

    table = JobsTable(settings.jobs_table)
    job = table.get(job_id)
    table.begin_stage(job_id, Stage.VALIDATE)
    upload = job.get("upload", {})
    workdir = Path(tempfile.mkdtemp(prefix=f"validate-{job_id}-"))
    s3 = aws.client("s3")
    try:
        if upload.get("kind") == "zip":
            source = _download_archive(settings, upload["key"], workdir)
        else:
            source = _download_folder(settings, upload["prefix"], workdir)
        with validated_input(source, _limits(settings)) as validated:
            report = validated.report
            if not report.accepted:
                problems = "; ".join(f"{p.path}: {p.message} ({p.code})" for p in report.problems)
                raise InputRejectedError(problems or "upload rejected")
            for image in validated.images:
                s3.upload_file(str(image.path), settings.data_bucket, f"jobs/{job_id}/images/{image.relative}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures = {"images": report.images, "warnings": [w.message for w in report.warnings][:50]}
    images_uri = f"s3://{settings.data_bucket}/jobs/{job_id}/images/"
    table.end_stage(job_id, Stage.VALIDATE, "SUCCEEDED", figures, {"images": images_uri})
    logger.info("upload accepted", extra={"job_id": job_id, "images": report.images})
    return figures
