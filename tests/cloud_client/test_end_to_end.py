"""The sample scene through ``spaceport cloud`` on the local stack, every stage real: a stage that fails shows its
reason and the retry command, ``retry`` finishes the job, and the download verifies and opens upright."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from spaceport.cli import main
from spaceport.cloud.local_stack.stages import docker_image

pytestmark = pytest.mark.slow

FAILURE = "train: injected: the instance was lost (SageMaker stand-in fault)"


def cloud(*args: str) -> int:
    return main(["cloud", *args, "--region", "us-east-1"])


def page_config(page: str) -> dict:
    """The configuration the viewer page carries inline."""
    return json.loads(page.split('id="spaceport-config">')[1].split("</script>")[0])


def serve_and_fetch(job_id: str, folder, capsys) -> str:
    """Run `spaceport cloud view JOB --out FOLDER --no-browser` until its page has been fetched once; the page."""
    from spaceport.cli import build_parser
    from spaceport.cloud.client import command

    args = build_parser(only="cloud").parse_args(
        ["cloud", "view", job_id, "--out", str(folder), "--no-browser", "--region", "us-east-1"]
    )
    stop = threading.Event()
    viewer = threading.Thread(target=command.run, args=(args, stop), daemon=True)
    viewer.start()
    deadline = time.monotonic() + 30
    printed = ""
    while "Serving" not in printed and time.monotonic() < deadline:
        time.sleep(0.05)
        printed += capsys.readouterr().out
    url = printed.split(" at ")[1].split()[0]
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 (the viewer on 127.0.0.1)
            return answer.read().decode()
    finally:
        stop.set()
        viewer.join(timeout=10)


def test_a_stage_fails_retry_finishes_the_job_and_the_scene_verifies_and_opens_upright(
    pipeline_stack, sample_scene, tmp_path, capsys
):
    # GIVEN the stack deployed and initialised, and a train stage that fails the first time
    assert cloud("init") == 0
    pipeline_stack.sagemaker.fail_next("train", FAILURE)
    capsys.readouterr()
    # WHEN the sample scene is submitted, following the job
    status = cloud("submit", str(sample_scene.images_dir), "--preset", "fast", "--iterations", "100", "--wait")
    out = capsys.readouterr().out
    job_id = out.split()[1].rstrip(":")
    # THEN the job fails in train, and status shows the container's reason and how to retry
    assert status == 1
    assert cloud("status", job_id) == 1
    shown = capsys.readouterr().out
    assert f"failed in train: {FAILURE}" in shown and f"retry: spaceport cloud retry {job_id}" in shown
    # WHEN it is retried from the failed stage, following it and downloading the scene
    out_dir = tmp_path / "scene"
    assert cloud("retry", job_id, "--wait") == 0
    assert cloud("download", job_id, "--out", str(out_dir)) == 0
    # THEN train ran again (its SfM kept), the job SUCCEEDED with a held-out score, and every file verified
    job = json.loads((out_dir / "cloud-job.json").read_text())
    assert job["status"] == "SUCCEEDED" and job["stages"]["train"]["attempts"] == 2
    assert job["stages"]["train"]["figures"]["test_psnr"] > 15
    sfm_runs = [name for name in pipeline_stack.sagemaker.jobs if "-sfm-" in name]
    assert len(sfm_runs) == 1
    # AND sfm and compress ran in the images of `make images` wherever this engine has them (in CI it does)
    for name, record in pipeline_stack.sagemaker.jobs.items():
        if record.job.stage in ("sfm", "compress"):
            assert record.in_container == (docker_image(record.job.stage, True) is not None), name
    # (the sample scene has no GPS: its exports are the GLB and the SPZ, no tileset)
    assert {"scene.sog", "scene.glb", "scene.spz", "georef.json", "index.html", "sfm/sparse/0/points3D.bin"} <= {
        p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()
    }
    # AND the viewer opens it upright: orbiting +z from the local run's oblique start above the scene
    config = page_config((out_dir / "index.html").read_text())
    assert config["frame"]["up"] == [0.0, 0.0, 1.0] and config["camera"]["up"] == [0.0, 0.0, 1.0]
    assert config["camera"]["position"][2] > config["camera"]["target"][2]
    # AND `spaceport cloud view` serves that folder as it is, without downloading it again
    assert serve_and_fetch(job_id, out_dir, capsys) == (out_dir / "index.html").read_text()
