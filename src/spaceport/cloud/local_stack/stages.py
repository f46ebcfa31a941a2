"""One SageMaker job of a stage, run here: its request's inputs staged from S3 into a SageMaker root (what
``/opt/ml`` is in the container), the real stage run on it, and its outputs staged back to S3 as SageMaker does.

The sfm and compress stages run in the images ``make images`` builds (``docker run`` as SageMaker starts a
Processing job: inputs read-only, no network), the request's ImageUri standing for the local image of the same
repository; where Docker or the image is missing, and always for train (its CUDA image is not built here), the
stage's own command runs as a process on the same root (``spaceport <stage> --ml-root``), as ``spaceport run`` does.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("spaceport.local_stack")

OPT_ML = "/opt/ml"
LOCAL_IMAGES = {"sfm": "spaceport-sfm:local", "compress": "spaceport-compress:local"}
# What each stage's process runs in the container: the image's entry point, as a `spaceport` command line.
STAGE_COMMANDS = {"sfm": ["sfm"], "train": ["train"], "compress": ["compress", "--stage"]}
LOG_TAIL_BYTES = 1 << 20


@dataclass
class StageJob:
    """A Create*Job request being run: its name, stage, request, root folder and what became of it."""

    name: str
    stage: str
    training: bool
    request: dict[str, Any]
    root: Path
    log: list[str] = field(default_factory=list)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    process: subprocess.Popen | None = None
    # Each line of the stage's output as it comes (SageMaker's agent sends them to CloudWatch).
    on_line: Callable[[str], None] | None = None

    def output(self, line: str) -> None:
        self.log.append(line)
        if self.on_line is not None:
            self.on_line(line)

    @property
    def container_name(self) -> str:
        return f"spaceport-local-{self.name}"

    def host_path(self, container_path: str) -> Path:
        """Where a path under /opt/ml lives on this machine."""
        return self.root / Path(container_path).relative_to(OPT_ML)

    def log_text(self) -> str:
        return "".join(self.log)[-LOG_TAIL_BYTES:]


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def download_prefix(s3: Any, uri: str, target: Path) -> int:
    """Every object under ``uri`` (an S3Prefix) into ``target``, by its path below the prefix; a prefix that names
    one object (``.../model.tar.gz``) gives that object under its own name. Returns the object count."""
    bucket, prefix = split_uri(uri)
    base = prefix if prefix.endswith("/") else prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            destination = target / item["Key"][len(base) :]
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(destination))
            count += 1
    return count


def upload_folder(s3: Any, folder: Path, uri: str) -> None:
    bucket, prefix = split_uri(uri)
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        s3.upload_file(str(path), bucket, prefix + path.relative_to(folder).as_posix())


def stage_inputs(s3: Any, job: StageJob) -> list[tuple[Path, str]]:
    """Download the request's inputs under the job's root; returns each as (host folder, container path)."""
    mounts = []
    if job.training:
        for channel in job.request["InputDataConfig"]:
            path = f"{OPT_ML}/input/data/{channel['ChannelName']}"
            download_prefix(s3, channel["DataSource"]["S3DataSource"]["S3Uri"], job.host_path(path))
            mounts.append((job.host_path(path), path))
        config = job.host_path(f"{OPT_ML}/input/config/hyperparameters.json")
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(job.request.get("HyperParameters", {})))
        return mounts
    for item in job.request.get("ProcessingInputs", []):
        path = item["S3Input"]["LocalPath"]
        download_prefix(s3, item["S3Input"]["S3Uri"], job.host_path(path))
        mounts.append((job.host_path(path), path))
    return mounts


def publish_outputs(s3: Any, job: StageJob) -> str | None:
    """Upload what the stage wrote, as SageMaker does at the job's end; for training, ``model/`` as
    ``<S3OutputPath><name>/output/model.tar.gz``, whose URI is returned."""
    if not job.training:
        for output in job.request["ProcessingOutputConfig"]["Outputs"]:
            folder = job.host_path(output["S3Output"]["LocalPath"])
            if folder.is_dir():
                upload_folder(s3, folder, output["S3Output"]["S3Uri"])
        return None
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        model = job.host_path(f"{OPT_ML}/model")
        for path in sorted(p for p in model.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(model).as_posix())
    bucket, prefix = split_uri(job.request["OutputDataConfig"]["S3OutputPath"])
    key = f"{prefix.rstrip('/')}/{job.name}/output/model.tar.gz"
    s3.put_object(Bucket=bucket, Key=key, Body=archive.getvalue())
    return f"s3://{bucket}/{key}"


def failure_reason(job: StageJob) -> str:
    """What the container wrote where SageMaker reads a failure (``/opt/ml/output/message`` for Processing,
    ``/opt/ml/output/failure`` for Training), its first KB."""
    name = "failure" if job.training else "message"
    path = job.host_path(f"{OPT_ML}/output/{name}")
    return path.read_text(encoding="utf-8", errors="replace")[:1024].strip() if path.is_file() else ""


def docker_image(stage: str, allow_docker: bool) -> str | None:
    """The local image standing for the stage's ECR image, when Docker is allowed, running and holds it."""
    image = LOCAL_IMAGES.get(stage)
    if not allow_docker or image is None or shutil.which("docker") is None:
        return None
    found = subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=60)
    return image if found.returncode == 0 else None


def _environment(job: StageJob) -> dict[str, str]:
    return {str(key): str(value) for key, value in (job.request.get("Environment") or {}).items()}


def _arguments(job: StageJob) -> list[str]:
    return list(job.request.get("AppSpecification", {}).get("ContainerArguments") or [])


def container_command(job: StageJob, image: str, mounts: list[tuple[Path, str]]) -> list[str]:
    """``docker run`` as SageMaker starts a Processing job: /opt/ml from the host, inputs read-only, no network."""
    command = ["docker", "run", "--rm", "--name", job.container_name, "--platform", "linux/amd64",
               "--network", "none", "-v", f"{job.root}:{OPT_ML}"]  # fmt: skip
    for host, path in mounts:
        command += ["-v", f"{host}:{path}:ro"]
    for key, value in _environment(job).items():
        command += ["-e", f"{key}={value}"]
    return [*command, image, *_arguments(job)]


def process_command(job: StageJob) -> list[str]:
    """The stage's own command on the job's root, with the request's arguments."""
    return [sys.executable, "-m", "spaceport.cli", *STAGE_COMMANDS[job.stage], "--ml-root", str(job.root),
            *_arguments(job)]  # fmt: skip


def run_stage(job: StageJob, command: list[str], in_container: bool) -> int:
    """Run the stage to its end (or until a stop is asked for), its output kept in ``job.log``; the exit code."""
    environment = os.environ | {"PYTHONUNBUFFERED": "1"} | ({} if in_container else _environment(job))
    logger.info("%s: %s", job.name, " ".join(command))
    job.process = subprocess.Popen(  # noqa: S603 - our own interpreter or docker, no shell
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
    )
    assert job.process.stdout is not None
    for line in job.process.stdout:
        job.output(line)
    return job.process.wait()


def stop(job: StageJob, in_container: bool) -> None:
    """StopProcessingJob / StopTrainingJob: end the container or process."""
    job.stop_requested.set()
    if in_container:
        subprocess.run(["docker", "kill", job.container_name], capture_output=True, timeout=60)
    elif job.process is not None and job.process.poll() is None:
        job.process.terminate()
