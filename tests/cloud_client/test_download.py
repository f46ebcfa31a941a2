"""Downloading a finished job: each file checked against the manifest of the stage that wrote it."""

from __future__ import annotations

import json

import pytest

from spaceport.cloud.client.errors import VerificationError

from .conftest import client_for, finished_job

JOB = "job-0001"


def test_a_corrupted_download_is_an_error_and_leaves_nothing_behind(stack, tmp_path):
    # GIVEN a finished job, and a transfer of its scene that arrives with one byte changed
    finished_job(stack, JOB, tmp_path / "outputs")
    stack.faults.corrupt_keys = {"scene.sog"}
    out = tmp_path / "downloads" / "scene"
    # WHEN it is downloaded
    with pytest.raises(VerificationError) as refused:
        client_for(stack).task(JOB).download_assets(out)
    # THEN the error names the file and the manifest, and neither the folder nor a partial copy is left
    assert "scene.sog" in str(refused.value) and "compress manifest" in str(refused.value)
    assert list((tmp_path / "downloads").iterdir()) == []


def test_a_download_verifies_every_file_and_opens_upright(stack, tmp_path):
    # GIVEN a finished job whose sfm stage put the scene upright
    sent = finished_job(stack, JOB, tmp_path / "outputs")
    out = tmp_path / "scene"
    # WHEN it is downloaded
    files = client_for(stack).task(JOB).download_assets(out)
    # THEN the scene and georef.json are the stages' bytes, the job's record is beside them, and the viewer page
    # orbits about +z (the frame georef.json gives)
    assert (out / "scene.sog").read_bytes() == sent["scene.sog"]
    assert (out / "georef.json").read_bytes() == sent["georef.json"]
    assert json.loads((out / "cloud-job.json").read_text())["status"] == "SUCCEEDED"
    assert sorted(files) == ["cloud-job.json", "georef.json", "index.html", "scene.sog"]
    assert '"frame": {"up": [0.0, 0.0, 1.0]' in (out / "index.html").read_text()
