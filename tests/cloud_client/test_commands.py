"""``spaceport cloud`` against the local stack: init reads the stack and checks it, status says where a job is and
exits with its outcome, build-images drives the stack's CodeBuild project."""

from __future__ import annotations

import json
import subprocess
import zipfile

import pytest

from spaceport.cli import main
from spaceport.cloud.client.report import describe_job
from spaceport.cloud.local_stack.template import BUCKET, JOBS_TABLE

from .conftest import client_for, finished_job


def cloud(*args: str) -> int:
    return main(["cloud", *args, "--region", "us-east-1"])


def test_init_records_the_stack_and_checks_access_images_and_quota(stack, tmp_path, capsys):
    # GIVEN the stack as deployed (outputs, images pushed under their tags)
    # WHEN init runs
    status = cloud("init")
    # THEN it records the API and bucket from the stack's outputs, and reports each check
    out = capsys.readouterr().out
    recorded = json.loads((tmp_path / "cloud.json").read_text())["default/us-east-1"]
    assert status == 0 and recorded["api_url"] == stack.api_url and recorded["bucket"] == BUCKET
    assert "API             ok" in out
    assert all(f"{stage} image" in out and f"spaceport-{stage}:0.1.0" in out for stage in ("sfm", "train", "compress"))
    # AND the GPU quota, which moto's Service Quotas cannot say, is reported as unknown, not as fine
    assert '"ml.g5.xlarge for training job usage"' in out and "unknown" in out


def test_init_names_a_missing_image_and_how_to_build_it(stack, capsys):
    # GIVEN the train image's tag missing from its repository
    stack.client("ecr").batch_delete_image(repositoryName="spaceport-train", imageIds=[{"imageTag": "0.1.0"}])
    # WHEN init runs THEN it fails, naming the image and the command that builds it
    assert cloud("init") == 1
    out = capsys.readouterr().out
    assert "spaceport-train:0.1.0 is missing" in out and "spaceport cloud build-images --wait" in out


@pytest.mark.parametrize("outcome", ["SUCCEEDED", "FAILED", "CANCELLED", "AWAITING_UPLOAD"])
def test_status_prints_where_the_job_is_and_exits_with_its_outcome(stack, tmp_path, capsys, outcome):
    # GIVEN a job that succeeded, failed in train, was cancelled, or awaits its upload
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import JobStatus

    if outcome == "SUCCEEDED":
        job_id = "job-0001"
        finished_job(stack, job_id, tmp_path / "outputs")
    else:
        job_id = client_for(stack).api.create_job({"upload": "zip", "archive_bytes": 1000, "photo_count": 8})["job_id"]
    if outcome == "FAILED":
        JobsTable(JOBS_TABLE).finish(job_id, JobStatus.FAILED, failed_stage="train", reason="train: loss diverged")
    if outcome == "CANCELLED":
        assert cloud("cancel", job_id, "--api-url", stack.api_url) == 0
    capsys.readouterr()
    # WHEN its status is asked for
    status = cloud("status", job_id, "--api-url", stack.api_url)
    # THEN the exit status is the outcome's (0, 1, 2; 3 while it is not over) and the lines say what to do next
    out = capsys.readouterr().out
    assert status == {"SUCCEEDED": 0, "FAILED": 1, "CANCELLED": 2, "AWAITING_UPLOAD": 3}[outcome]
    assert out.startswith(f"job {job_id}: {outcome}")
    expected = {
        "SUCCEEDED": f"spaceport cloud download {job_id} --out DIR",
        "FAILED": f"failed in train: train: loss diverged\n  retry: spaceport cloud retry {job_id}",
        "CANCELLED": f"retry: spaceport cloud retry {job_id}",
        "AWAITING_UPLOAD": "validate  PENDING",
    }[outcome]
    assert expected in out


def test_a_job_view_lists_every_stage_with_its_time_and_figures():
    # GIVEN a job view with two stages done, one running and one waiting for its slot
    view = {
        "job_id": "j1", "status": "QUEUED", "stage": "compress", "progress": 0.75,
        "stages": {
            "validate": {"status": "SUCCEEDED", "started_at": "2026-01-01T00:00:00+00:00",
                         "ended_at": "2026-01-01T00:00:02+00:00", "figures": {"images": 32}},
            "sfm": {"status": "SUCCEEDED", "started_at": "2026-01-01T00:00:02+00:00",
                    "ended_at": "2026-01-01T00:10:02+00:00",
                    "figures": {"registered_images": 32, "total_images": 32, "points": 1200,
                                "georef": {"method": "gps"}}},
            "train": {"status": "SUCCEEDED", "started_at": "2026-01-01T00:10:02+00:00",
                      "ended_at": "2026-01-01T01:10:02+00:00", "figures": {"test_psnr": 31.2, "gaussians": 9000}},
        },
        "waiting": "for a compress slot (2 at once): position 3 of 4",
        "cost": {"total": 1.57, "currency": "USD", "stages": {"train": {}}, "estimated": "sfm"},
    }  # fmt: skip
    # WHEN it is described
    lines = describe_job(view)
    # THEN each stage has its state, time and figures, then the wait and the cost
    assert lines[0] == "job j1: QUEUED, stage compress (75 %)"
    assert lines[2].split() == ["sfm", "SUCCEEDED", "0:10:00", "32/32", "registered,", "1200", "points,", "gps"]
    assert "held-out PSNR 31.20 dB, 9000 Gaussians" in lines[3] and lines[4].split() == ["compress", "PENDING"]
    assert lines[5] == "  waiting for a compress slot (2 at once): position 3 of 4"
    assert lines[6].startswith("  cost so far: 1.57 USD")


def test_build_images_uploads_this_checkout_and_follows_the_build(stack, tmp_path, capsys):
    # GIVEN init done, and a git checkout with one commit
    assert cloud("init") == 0
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "Dockerfile").write_text("FROM scratch\n")
    author = ["-c", "user.email=a@b", "-c", "user.name=a"]
    for command in (["init", "-q"], ["add", "Dockerfile"], [*author, "commit", "-qm", "x"]):
        subprocess.run(["git", "-C", str(checkout), *command], check=True)
    capsys.readouterr()
    # WHEN the images are built, waiting for the end
    status = cloud("build-images", "--wait", "--checkout", str(checkout))
    # THEN the committed sources are where the project reads them, the build ran to SUCCEEDED, phase by phase
    out = capsys.readouterr().out
    source = stack.client("s3").get_object(Bucket=BUCKET, Key="build/source.zip")["Body"].read()
    (tmp_path / "source.zip").write_bytes(source)
    assert zipfile.ZipFile(tmp_path / "source.zip").namelist() == ["Dockerfile"]
    assert status == 0 and "started (spaceport-images)" in out and out.rstrip().endswith("build SUCCEEDED")
