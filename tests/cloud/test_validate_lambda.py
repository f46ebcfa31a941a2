"""The validate Lambda against moto's S3: what it leaves in /tmp, and that it agrees with the other two doors."""

from __future__ import annotations

import json
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from benchmarks.common import FolderPeak

from spaceport.validation import validate_path

from ..validation.validation_corpus import mixed_capture, photo, photos, zip_folder
from . import harness
from .harness import BUCKET, REGION, load_template


def queue_job(job_id: str, upload: dict[str, str]) -> None:
    from spaceport.cloud.jobs import JobsTable

    JobsTable(harness.TABLE).claim_for_start(job_id, {"preset": "default"}, upload)


def upload_zip(job_id: str, archive: Path) -> dict[str, str]:
    key = f"uploads/{job_id}/photos.zip"
    boto3.client("s3", region_name=REGION).put_object(Bucket=BUCKET, Key=key, Body=archive.read_bytes())
    queue_job(job_id, {"kind": "zip", "key": key})
    return {"kind": "zip", "key": key}


def upload_folder(job_id: str, folder: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.put_object(
            Bucket=BUCKET, Key=f"uploads/{job_id}/{path.relative_to(folder).as_posix()}", Body=path.read_bytes()
        )
    s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/job.json", Body=b"{}")
    queue_job(job_id, {"kind": "images", "prefix": f"uploads/{job_id}/"})


def validate(world, job_id: str) -> dict[str, Any]:
    return world.handlers["validate"].lambda_handler({"job_id": job_id}, harness.FakeContext())


def published(job_id: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name=REGION)
    prefix = f"jobs/{job_id}/images/"
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    return {key.removeprefix(prefix): s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in keys}


@pytest.fixture
def lambda_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Lambda's /tmp: where ``tempfile`` puts anything our code writes (moto keeps objects in memory)."""
    monkeypatch.setenv("MOTO_S3_DEFAULT_KEY_BUFFER_SIZE", str(64 << 20))
    folder = tmp_path / "lambda-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("kind", ["zip", "images"])
def test_validation_keeps_neither_the_upload_nor_its_photos_in_tmp(world, tmp_path, lambda_tmp, kind):
    # GIVEN 24 noise photos (about 1.5 MB) uploaded as a zip, or one by one with job.json
    folder = tmp_path / "capture"
    photos(folder, 24)
    for index, path in enumerate(sorted(folder.iterdir())):
        path.write_bytes(path.read_bytes() + bytes(40_000 + index))  # bulk that does not change the pixels
    size = sum(path.stat().st_size for path in folder.iterdir())
    if kind == "zip":
        upload_zip("job-tmp", zip_folder(folder, tmp_path / "capture.zip"))
    else:
        upload_folder("job-tmp", folder)
    # WHEN the validate Lambda runs with its /tmp watched
    with FolderPeak(lambda_tmp, 0.001) as watcher:
        figures = validate(world, "job-tmp")
    # THEN every photo was accepted and published, and /tmp never held more than a small part of the upload
    assert figures["images"] == 24 and len(published("job-tmp")) == 24
    assert watcher.peak_bytes < size / 10, f"{watcher.peak_bytes} bytes in /tmp for a {size}-byte upload"


def three_doors(world, monkeypatch, tmp_path: Path, job_id: str, source: Path) -> tuple[dict[str, Any], Any, Any]:
    """The Lambda's figures for the job's upload, the CLI's report on ``source`` (the same upload here), and the
    sfm stage's report on what the Lambda published, with the limits its SageMaker job is given."""
    figures = validate(world, job_id)
    local = validate_path(source)
    photos_for_sfm = tmp_path / "sfm-input"
    for relative, data in published(job_id).items():
        (photos_for_sfm / relative).parent.mkdir(parents=True, exist_ok=True)
        (photos_for_sfm / relative).write_bytes(data)
    from spaceport.cloud.sagemaker_requests import sfm_request
    from spaceport.cloud.settings import stage_settings

    for name, value in sfm_request(stage_settings(), "sp-x-sfm-a1-x", job_id, "image")["Environment"].items():
        monkeypatch.setenv(name, value)
    return figures, local, validate_path(photos_for_sfm)


@pytest.mark.parametrize("kind", ["zip", "images"])
def test_the_lambda_the_cli_and_the_sfm_stage_agree(world, tmp_path, lambda_tmp, monkeypatch, kind):
    # GIVEN a realistic capture, uploaded as a zip or as a folder
    folder = mixed_capture(tmp_path / "capture")
    archive = zip_folder(folder, tmp_path / "capture.zip")
    if kind == "zip":
        upload_zip("job-doors", archive)
    else:
        upload_folder("job-doors", folder)
    # WHEN the Lambda validates it, the CLI validates the same input here, and the sfm stage validates what the
    # Lambda published, with the limits its SageMaker job is given
    source = archive if kind == "zip" else folder
    figures, local, at_sfm = three_doors(world, monkeypatch, tmp_path, "job-doors", source)
    # THEN all three accept the same photos, byte for byte, and the Lambda reports the CLI's warnings
    assert local.accepted and at_sfm.accepted
    assert figures["images"] == local.images == at_sfm.images == 7
    assert sorted(published("job-doors")) == local.image_paths == at_sfm.image_paths
    assert all(data == (folder / relative).read_bytes() for relative, data in published("job-doors").items())
    assert figures["warnings"] == [issue.message for issue in local.warnings]


SMALL_BLOCK = 16 << 10


def archive_with_extra_fields(folder: Path, archive: Path, extra_bytes: int) -> Path:
    """``folder``'s photos zipped with an extra field of ``extra_bytes`` in every member's local header and central
    directory entry (as archivers that store timestamps, owners or resource forks write them, only larger)."""
    payload = bytes(index % 256 for index in range(extra_bytes))
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        for path in sorted(folder.iterdir()):
            info = zipfile.ZipInfo(path.name, date_time=(2026, 12, 6, 12, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.extra = struct.pack("<HH", 0xCAFE, len(payload)) + payload  # an id no reader interprets
            handle.writestr(info, path.read_bytes())
    return archive


def central_directory_bytes(archive: Path) -> int:
    """The size of the archive's central directory, which zipfile reads with one call."""
    with zipfile.ZipFile(archive) as handle:
        first_header = min(info.header_offset for info in handle.infolist())
        ends = [info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size
                for info in handle.infolist()]  # fmt: skip
    return archive.stat().st_size - 22 - max(ends) + first_header


@pytest.mark.parametrize(("photo_count", "extra_bytes"), [(1000, 0), (40, 40_000)], ids=["1000-photos", "40-kB-extras"])
def test_an_archive_many_blocks_long_is_accepted_as_the_cli_accepts_it(
    world, tmp_path, lambda_tmp, monkeypatch, photo_count, extra_bytes
):
    # GIVEN MaxImages 1000, and an archive of small photos written by Python's zipfile, or one with a 40 kB extra
    # field in every member; the Lambda reads it through ranged GETs of 16 KiB (a stand-in for its 8 MiB blocks,
    # which only larger archives would cross as often)
    from spaceport.cloud import s3io, settings
    from spaceport.cloud import validate as validate_module

    monkeypatch.setenv("SPACEPORT_MAX_IMAGES", "1000")
    settings.clear_cache()
    readers: list[s3io.S3ObjectReader] = []

    class SmallBlockReader(s3io.S3ObjectReader):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs, block_bytes=SMALL_BLOCK)
            readers.append(self)

    monkeypatch.setattr(validate_module, "S3ObjectReader", SmallBlockReader)
    folder = tmp_path / "capture"
    for index in range(photo_count):
        photo(folder / f"IMG_{index:04d}.jpg", seed=index, size=(64, 64))
    if extra_bytes:
        archive = archive_with_extra_fields(folder, tmp_path / "capture.zip", extra_bytes)
    else:
        archive = zip_folder(folder, tmp_path / "capture.zip")
    # (the central directory, which zipfile reads with one call, and with the extra fields every local header, are
    # longer than a block: those reads must be stitched from several)
    assert archive.stat().st_size > 100 * SMALL_BLOCK and central_directory_bytes(archive) > SMALL_BLOCK
    upload_zip("job-many-blocks", archive)
    # WHEN the Lambda validates it, the CLI validates the same file, and the sfm stage what the Lambda published
    figures, local, at_sfm = three_doors(world, monkeypatch, tmp_path, "job-many-blocks", archive)
    # THEN all three accept every photo, the same ones byte for byte, read through many ranged GETs
    assert local.accepted and at_sfm.accepted, [problem.message for problem in local.problems]
    assert figures["images"] == local.images == at_sfm.images == photo_count
    assert sorted(published("job-many-blocks")) == local.image_paths == at_sfm.image_paths
    assert all(data == (folder / name).read_bytes() for name, data in published("job-many-blocks").items())
    assert figures["warnings"] == [issue.message for issue in local.warnings]
    assert readers[0].requests > 100


def test_a_rejected_upload_is_rejected_for_the_same_reasons_and_publishes_nothing(world, tmp_path, lambda_tmp):
    # GIVEN a zip with two good photos and a truncated one (the deployment asks for three)
    folder = tmp_path / "capture"
    photos(folder, 2)
    good = (folder / "img_000.jpg").read_bytes()
    (folder / "img_009.jpg").write_bytes(good[: len(good) // 2])
    archive = zip_folder(folder, tmp_path / "capture.zip")
    upload_zip("job-reject", archive)
    # WHEN the Lambda validates it
    from spaceport.cloud.validate import InputRejectedError

    with pytest.raises(InputRejectedError) as rejected:
        validate(world, "job-reject")
    # THEN it names the same problems as the CLI, the truncated photo among them, the upload by its key (never a
    # path in the Lambda's /tmp), and it left no photo published
    local = validate_path(archive)
    shown = {str(archive): "uploads/job-reject/photos.zip"}
    expected = "; ".join(f"{shown.get(p.path, p.path)}: {p.message} ({p.code})" for p in local.problems)
    assert str(rejected.value) == expected
    assert "img_009.jpg" in str(rejected.value) and "/tmp" not in str(rejected.value)
    assert published("job-reject") == {}


def test_the_sfm_job_gets_the_validators_limits(monkeypatch):
    # GIVEN the validator limits the template gives the validate function
    resources = load_template()["Resources"]
    limits = {
        name: value
        for name, value in resources["ValidateFunction"]["Properties"]["Environment"]["Variables"].items()
        if name.startswith("SPACEPORT_")
    }
    assert len(limits) == 5
    # THEN the starter of the SageMaker stages gets the same, from the same parameters
    starter = resources["StartStageFunction"]["Properties"]["Environment"]["Variables"]
    assert {name: starter.get(name) for name in limits} == limits
    # AND the sfm job's request carries them, so its validator applies the Lambda's limits
    for index, name in enumerate(limits):
        monkeypatch.setenv(name, str(1000 + index))
    from spaceport.cloud.sagemaker_requests import sfm_request
    from spaceport.cloud.settings import stage_settings

    environment = sfm_request(stage_settings(), "sp-x-sfm-a1-x", "job-x", "image")["Environment"]
    assert {name: environment.get(name) for name in limits} == {name: str(1000 + i) for i, name in enumerate(limits)}


@pytest.mark.parametrize("failing_read", [1, 3], ids=["first-read", "mid-archive"])
def test_a_failed_read_from_s3_is_retried_not_a_rejected_upload(world, tmp_path, lambda_tmp, monkeypatch, failing_read):
    # GIVEN a good zip, and S3 failing one of the reads the validator makes with a server error
    folder = tmp_path / "capture"
    photos(folder, 4)
    upload_zip("job-s3-error", zip_folder(folder, tmp_path / "capture.zip"))
    reads: list[dict[str, Any]] = []

    def answer(call, **kwargs):
        reads.append(kwargs)
        if len(reads) == failing_read:
            raise harness.aws_error("InternalError", "GetObject", "try again")
        return call(**kwargs)

    harness.intercept(monkeypatch, "s3", "get_object", answer)
    # WHEN the validate Lambda runs
    from spaceport.cloud.validate import InputRejectedError

    with pytest.raises(Exception) as raised:
        validate(world, "job-s3-error")
    # THEN it fails with an error the state machine retries, not as a rejected (or corrupt) upload
    assert not isinstance(raised.value, InputRejectedError)
    definition = json.loads((harness.ROOT / "statemachine" / "pipeline.asl.json").read_text())
    retried = {name for retry in definition["States"]["Validate the upload"]["Retry"] for name in retry["ErrorEquals"]}
    assert type(raised.value).__name__ in retried
