"""The upload through presigned URLs against the local stack's S3, with the faults a long upload meets. In each
case every byte arrives as sent, the multipart upload is completed (none left open), and the client keeps no file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from spaceport.cloud.client.archive import prepare_archive
from spaceport.cloud.local_stack.template import BUCKET

from .conftest import SMALL_PART, client_for, noise_photos, pending_uploads, s3_object


def archive_bytes(photos: Path, tmp_path: Path) -> bytes:
    """The archive the client makes of ``photos`` (a folder is zipped the same way every time)."""
    return prepare_archive(photos, tmp_path).path.read_bytes()


def upload_scratch() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("spaceport-upload-")}


def assert_monotonic_to_total(progress: list[tuple[int, int]], total: int) -> None:
    sent = [done for done, _ in progress]
    assert sent == sorted(sent) and sent[-1] == total and {of for _, of in progress} == {total}


def test_a_part_dropped_once_is_sent_again_and_the_archive_arrives_whole(stack, tmp_path):
    # GIVEN photos that make an archive of 4 parts, and a connection that breaks halfway through part 2 the first time
    photos = noise_photos(tmp_path / "photos", 24)
    expected = archive_bytes(photos, tmp_path / "expected")
    assert len(expected) // SMALL_PART + 1 == 4
    stack.faults.drop_parts = {2}
    scratch, progress = upload_scratch(), []
    # WHEN they are submitted
    task = client_for(stack).create_task(photos, {"preset": "fast"}, lambda done, total: progress.append((done, total)))
    # THEN S3 holds the archive byte for byte, part 2 having gone up twice (dropped, then accepted) and the others once
    assert s3_object(stack, f"uploads/{task.job_id}/photos.zip") == expected
    tries = [(r.part_number, r.status) for r in stack.faults.part_requests]
    assert sorted(tries) == [(1, 200), (2, 0), (2, 200), (3, 200), (4, 200)]
    # AND the progress rose to every byte without going back, nothing is left open, and no scratch file remains
    assert_monotonic_to_total(progress, len(expected))
    assert pending_uploads(stack) == [] and upload_scratch() == scratch


def test_urls_refused_after_a_cut_off_are_signed_again(stack, tmp_path):
    # GIVEN an archive of 4 parts, and S3 refusing (403) every URL signed before the first part went up, as it does
    # when the credentials that signed them expire
    photos = noise_photos(tmp_path / "photos", 24)
    expected = archive_bytes(photos, tmp_path / "expected")
    stack.faults.expire_after_parts = 1
    # WHEN they are submitted, two parts at a time
    task = client_for(stack, parallel=2).create_task(photos, {"preset": "fast"})
    # THEN the refused parts went up again on fresh URLs, the completion too, and the archive arrived whole
    refused = {r.part_number for r in stack.faults.part_requests if r.status == 403}
    accepted = [r.part_number for r in stack.faults.part_requests if r.status == 200]
    assert refused and sorted(accepted) == [1, 2, 3, 4]
    assert s3_object(stack, f"uploads/{task.job_id}/photos.zip") == expected
    assert pending_uploads(stack) == []


def test_a_client_killed_halfway_resumes_with_exactly_the_missing_parts(stack, tmp_path):
    # GIVEN a submit of 8 parts over a slow link, killed (SIGKILL) once half the parts are in S3
    from spaceport.cli import main

    photos = noise_photos(tmp_path / "photos", 56)
    expected = archive_bytes(photos, tmp_path / "expected")
    parts = len(expected) // SMALL_PART + 1
    assert parts == 8
    stack.faults.part_seconds = 0.3
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "spaceport.cli", "cloud", "submit", str(photos), "--api-url", stack.api_url,
               "--parallel", "2"]  # fmt: skip
    client = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while len([r for r in stack.faults.part_requests if r.status == 200]) < parts // 2:
        assert client.poll() is None and time.monotonic() < deadline, client.stdout.read()
        time.sleep(0.02)
    client.send_signal(signal.SIGKILL)
    output = client.communicate()[0]
    stack.faults.settle()  # a part the killed client had sent in full may still land
    job_id = next(line.split()[1].rstrip(":") for line in output.splitlines() if line.startswith("job "))
    key = f"uploads/{job_id}/photos.zip"
    [upload_id] = [u["UploadId"] for u in stack.client("s3").list_multipart_uploads(Bucket=BUCKET)["Uploads"]]
    held = {p["PartNumber"] for p in stack.client("s3").list_parts(Bucket=BUCKET, Key=key, UploadId=upload_id)["Parts"]}
    before = len(stack.faults.part_requests)
    # WHEN the same photos are resumed (a new process: the state is S3's)
    stack.faults.part_seconds = 0.0
    assert main(["cloud", "resume", job_id, str(photos), "--api-url", stack.api_url]) == 0
    # THEN exactly the parts S3 did not hold went up, each once, and the archive is whole, the upload completed
    resent = [r.part_number for r in stack.faults.part_requests[before:]]
    assert sorted(resent) == sorted(set(range(1, parts + 1)) - held) and len(held) >= parts // 2
    assert s3_object(stack, key) == expected and pending_uploads(stack) == []


def test_resume_with_other_photos_is_refused_before_sending_anything(stack, tmp_path):
    # GIVEN a job whose first part went up from some photos, the rest never sent
    photos = noise_photos(tmp_path / "photos", 24)
    client = client_for(stack)
    created = client.create_job(photos, {}, tmp_path / "archive")
    first = created.job["upload"]["parts"][0]["url"]
    import requests

    requests.put(first, data=created.archive.path.read_bytes()[:SMALL_PART], timeout=30).raise_for_status()
    before = len(stack.faults.part_requests)
    # WHEN other photos of the same total size are resumed into it
    other = noise_photos(tmp_path / "other", 24, seed=1)
    from spaceport.cloud.client.errors import UploadError

    try:
        client.task(created.job["job_id"]).resume_upload(other)
    except UploadError as error:
        refusal = str(error)
    else:
        raise AssertionError("resume accepted photos whose part 1 differs from the one S3 holds")
    # THEN it says so and sends nothing
    assert "part 1" in refusal and len(stack.faults.part_requests) == before
