"""``make cloud-demo``: the sample scene from photos to a verified, viewable splat through ``spaceport cloud``,
against a local stack that runs the real stages. No AWS command, no AWS account.

The stack runs in a process of its own (its log in ``WORK/stack.log``); each step is the ``spaceport cloud`` command
a user types, with the local stack's profile (``--profile spaceport-local``, written into ``WORK/stack/aws``).
``WORK/figures.json`` records the times and the held-out PSNR (``python -m benchmarks --only cloud-demo`` reports it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY_TIMEOUT_S = 180
FIGURES_FILE = "figures.json"


@dataclass(frozen=True)
class DemoOptions:
    work: Path
    preset: str = "default"
    iterations: int = 2000
    images: int | None = None
    allow_docker: bool = True


def _spaceport(*args: str, env: dict[str, str] | None = None) -> tuple[int, float]:
    """Run ``spaceport ARGS`` as a user would (its output on this terminal); exit status and seconds."""
    print(f"\n$ spaceport {' '.join(args)}", flush=True)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "spaceport.cli", *args], env=env, check=False)
    return result.returncode, round(time.monotonic() - started, 1)


def start_stack(work: Path, allow_docker: bool) -> tuple[subprocess.Popen, dict[str, Any]]:
    """The stack's process, once its endpoints are written."""
    ready = work / "stack" / "ready.json"
    ready.unlink(missing_ok=True)
    command = [sys.executable, "-m", "spaceport.cloud.local_stack", "serve", "--work", str(work / "stack"),
               "--ready", str(ready), *([] if allow_docker else ["--no-docker"])]  # fmt: skip
    log = (work / "stack.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 (our own module)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            tail = (work / "stack.log").read_text()[-3000:]
            raise RuntimeError(f"the local stack did not come up; the end of {work / 'stack.log'}:\n{tail}")
        time.sleep(0.2)
    return process, json.loads(ready.read_text())


def stage_seconds(job: dict[str, Any]) -> dict[str, float]:
    from datetime import datetime

    seconds = {}
    for name, record in job.get("stages", {}).items():
        if record.get("started_at") and record.get("ended_at"):
            delta = datetime.fromisoformat(record["ended_at"]) - datetime.fromisoformat(record["started_at"])
            seconds[name] = round(delta.total_seconds(), 1)
    return seconds


def run_demo(options: DemoOptions) -> dict[str, Any]:
    """Render the sample scene (once), start the stack, then init, submit --wait (upload, stages, download); the
    figures, also written to ``WORK/figures.json``."""
    work = options.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    photos, scene = work / "sample-photos", work / "scene"
    if not (photos / "images").is_dir():
        count = ["--images", str(options.images)] if options.images else []
        _spaceport("sample-scene", str(photos), *count)
    process, stack = start_stack(work, options.allow_docker)
    print(f"local stack: API {stack['api_url']}, AWS {stack['endpoint']}; stages run as {stack['stages']}")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env |= stack["aws_files"] | {"SPACEPORT_CLOUD_CONFIG": str(work / "cloud.json")}
    profile = ["--profile", stack["profile"]]
    try:
        init_status, init_seconds = _spaceport("cloud", "init", *profile, env=env)
        status, seconds = _spaceport("cloud", "submit", str(photos / "images"), "--preset", options.preset,
                                     "--iterations", str(options.iterations), "--wait", "--out", str(scene),
                                     *profile, env=env)  # fmt: skip
    finally:
        process.terminate()
        process.wait(timeout=60)
    return _figures(work, scene, stack, options, init_status, status, seconds)


def _figures(
    work: Path, scene: Path, stack: dict[str, Any], options: DemoOptions, init_status: int, status: int, seconds: float
) -> dict[str, Any]:
    job = json.loads((scene / "cloud-job.json").read_text()) if status == 0 else {}
    index = (scene / "index.html").read_text() if (scene / "index.html").is_file() else ""
    figures = {
        "status": job.get("status", "FAILED"),
        "submit_to_verified_scene_s": seconds,
        "stage_seconds": stage_seconds(job),
        "test_psnr": job.get("stages", {}).get("train", {}).get("figures", {}).get("test_psnr"),
        "photos": job.get("stages", {}).get("validate", {}).get("figures", {}).get("images"),
        "preset": options.preset,
        "iterations": options.iterations,
        "stages_ran_as": stack["stages"],
        "init_exit": init_status,
        "submit_exit": status,
        "viewer_upright": '"up": [0.0, 0.0, 1.0]' in index,
        "scene_files": sorted(p.relative_to(scene).as_posix() for p in scene.rglob("*") if p.is_file()),
    }
    (work / FIGURES_FILE).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\ncloud demo: {figures['status']} in {seconds:.0f} s from submit to a verified scene; held-out PSNR "
          f"{figures['test_psnr']} dB; stages {figures['stage_seconds']}; {work / FIGURES_FILE}")  # fmt: skip
    return figures
