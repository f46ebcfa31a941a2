"""A 200 MiB archive in the deployed part size (64 MiB), sent four parts at a time."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from spaceport.cloud.local_stack.template import BUCKET

from .conftest import MIB, client_for, pending_uploads
from .test_upload_faults import assert_monotonic_to_total

DEPLOYED_PART = 64 * MIB


def random_file(path: Path, size: int) -> str:
    """``size`` random bytes at ``path``; their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // MIB):
            block = os.urandom(MIB)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def test_a_200_mib_archive_arrives_byte_identical_with_progress_rising_to_100_percent(stack, tmp_path):
    # GIVEN a 200 MiB archive and the API's deployed part size
    stack.use_part_bytes(DEPLOYED_PART)
    archive = tmp_path / "photos.zip"
    size = 200 * MIB
    sent_digest = random_file(archive, size)
    client, progress = client_for(stack), []
    created = client.api.create_job({"upload": "zip", "archive_bytes": size, "photo_count": 300})
    assert created["upload"]["kind"] == "zip-multipart" and len(created["upload"]["parts"]) == 4
    # WHEN it is uploaded
    task = client.task(created["job_id"])
    task.upload(archive, created["upload"], lambda done, total: progress.append((done, total)))
    # THEN S3 holds the same 200 MiB (SHA-256 over every byte), the upload is complete, and the progress reported
    # rose without going back to exactly 100 %
    body = stack.client("s3").get_object(Bucket=BUCKET, Key=created["upload"]["key"])["Body"]
    received = hashlib.sha256()
    for block in body.iter_chunks(MIB):
        received.update(block)
    assert received.hexdigest() == sent_digest
    assert pending_uploads(stack) == []
    assert_monotonic_to_total(progress, size)
    assert progress[-1][0] / progress[-1][1] == 1.0 and len(progress) > 100
