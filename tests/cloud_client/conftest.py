"""Fixtures for the client's tests: a local stack on 127.0.0.1 (moto's server, our functions, the SageMaker
stand-in), the client pointed at it, photos to upload, and a finished job's outputs where the stages put them."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from spaceport.cloud.jobs import JobsTable
from spaceport.cloud.local_stack.stack import LocalStack
from spaceport.cloud.local_stack.template import BUCKET, JOBS_TABLE, REGION
from spaceport.cloud.models import Stage

MIB = 1 << 20
# S3's smallest part: multipart uploads of a few MiB exercise what 64 MiB parts do.
SMALL_PART = 5 * MIB


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local stack whose uploads start nothing (no trigger): the upload tests look at S3 alone."""
    monkeypatch.setenv("SPACEPORT_CLOUD_CONFIG", str(tmp_path / "cloud.json"))
    with LocalStack(tmp_path / "stack", part_bytes=SMALL_PART, pipeline=False) as running:
        yield running


@pytest.fixture
def pipeline_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local stack that runs jobs: the trigger, the state machine and the real stages."""
    monkeypatch.setenv("SPACEPORT_CLOUD_CONFIG", str(tmp_path / "cloud.json"))
    with LocalStack(tmp_path / "stack") as running:
        yield running


def client_for(stack: LocalStack, parallel: int = 4) -> Any:
    """The client of the local stack's deployment, signing as the stack's user (its environment's credentials)."""
    from spaceport.cloud.client.config import Deployment
    from spaceport.cloud.client.session import AwsSession
    from spaceport.cloud.client.tasks import Client

    deployment = Deployment(stack="spaceport", region=REGION, api_url=stack.api_url, bucket=BUCKET)
    return Client(deployment, AwsSession(region=REGION), parallel=parallel)


def noise_photos(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` distinct 1024x768 JPEGs of noise (about 0.7 MB each: noise does not compress)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for index in range(count):
        pixels = rng.integers(0, 255, (768, 1024, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"IMG_{index:04d}.jpg", "JPEG", quality=90)
    return folder


def s3_object(stack: LocalStack, key: str) -> bytes:
    return stack.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()


def pending_uploads(stack: LocalStack) -> list[str]:
    return [upload["Key"] for upload in stack.client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])]


def put_stage_output(stack: LocalStack, folder: Path, prefix: str) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stack.client("s3").put_object(Bucket=BUCKET, Key=prefix + path.relative_to(folder).as_posix(),
                                      Body=path.read_bytes())  # fmt: skip


def finished_job(stack: LocalStack, job_id: str, work: Path) -> dict[str, bytes]:
    """A SUCCEEDED job whose sfm and compress outputs (with their manifests, as the stages write them) are in S3,
    recorded through the table's own methods as the functions record it; the bytes of each deliverable."""
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import JobStatus, Stage
    from spaceport.contract import write_manifest

    sfm, compress = work / "sfm", work / "compress"
    (sfm / "sparse" / "0").mkdir(parents=True)
    (sfm / "georef.json").write_text(json.dumps({"method": "upright", "georeferenced": False, "warnings": []}))
    compress.mkdir(parents=True)
    scene = io.BytesIO()
    rng = np.random.default_rng(7)
    scene.write(b"PK\x03\x04" + rng.bytes(300_000))
    (compress / "scene.sog").write_bytes(scene.getvalue())
    write_manifest(sfm, "sfm", {"registered_images": 16})
    write_manifest(compress, "compress", {"gaussians": 1000, "sog_bytes": len(scene.getvalue())})
    prefix = f"s3://{BUCKET}/jobs/{job_id}/"
    manifest = f"{prefix}compress/manifest.json"
    put_stage_output(stack, sfm, f"jobs/{job_id}/sfm/")
    put_stage_output(stack, compress, f"jobs/{job_id}/compress/")
    table = JobsTable(JOBS_TABLE)
    table.claim_for_start(job_id, {"preset": "fast"}, {"kind": "zip", "key": f"uploads/{job_id}/photos.zip"})
    outputs = {
        Stage.VALIDATE: {"images": f"{prefix}images/"},
        Stage.TRAIN: {"model": f"{prefix}train/sp-{job_id}-train-a1-abcdef/output/model.tar.gz"},
        Stage.SFM: {"sfm": f"{prefix}sfm/", "georef": f"{prefix}sfm/georef.json"},
        Stage.COMPRESS: {"scene": f"{prefix}compress/scene.sog", "compress_manifest": manifest},
    }
    for stage in (Stage.VALIDATE, Stage.SFM, Stage.TRAIN, Stage.COMPRESS):
        table.begin_stage(job_id, stage)
        table.end_stage(job_id, stage, "SUCCEEDED", {}, outputs[stage])
    table.finish(job_id, JobStatus.SUCCEEDED)
    return {"scene.sog": scene.getvalue(), "georef.json": (sfm / "georef.json").read_bytes()}


def waiting_for(job_id: str, stage: Stage, sagemaker_job: str) -> None:
    """The job's record while ``stage`` waits for ``sagemaker_job``, as the functions write it."""
    table = JobsTable(JOBS_TABLE)
    table.claim_for_start(
        job_id, {"preset": "fast", "iterations": 400}, {"kind": "zip", "key": f"uploads/{job_id}.zip"}
    )
    for done in (Stage.VALIDATE, Stage.SFM, Stage.TRAIN)[: [Stage.VALIDATE, Stage.SFM, Stage.TRAIN].index(stage)]:
        table.begin_stage(job_id, done)
        table.end_stage(job_id, done, "SUCCEEDED", {}, {done.value: f"s3://bucket/{done.value}/"})
    table.begin_stage(job_id, stage)
    table.attach_sagemaker_job(job_id, stage, sagemaker_job, "token")


@pytest.fixture
def shots_dir(tmp_path: Path) -> Path:
    """Where the console's tests keep their screenshots: ``SPACEPORT_CONSOLE_SHOTS`` (the benchmark suite's), else
    the test's own folder."""
    import os

    folder = Path(os.environ.get("SPACEPORT_CONSOLE_SHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
