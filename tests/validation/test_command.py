"""The ``spaceport validate`` door: exit codes, one JSON object, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spaceport.validation import Code, Limits, LimitsError, command

from .validation_corpus import photos

REPO = Path(__file__).resolve().parents[2]


def run_json(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, dict]:
    status = command.main(["--json", *argv])
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "exactly one JSON object on one line"
    return status, json.loads(out)


def test_accepted_prints_the_documented_object(tmp_path: Path, capsys: pytest.CaptureFixture):
    # GIVEN three photos and a stray text file
    photos(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("x")

    # WHEN validated with --json
    status, report = run_json(capsys, str(tmp_path))

    # THEN exit 0 and the object has the documented keys
    assert status == 0
    assert report["accepted"] is True and report["images"] == 3 and report["problems"] == []
    assert report["warnings"] == [
        {"code": "UNSUPPORTED_FILE", "path": "notes.txt", "message": report["warnings"][0]["message"]}
    ]


def test_rejected_exits_one_and_min_images_option(tmp_path: Path, capsys: pytest.CaptureFixture):
    # GIVEN three photos
    photos(tmp_path, 3)

    # WHEN validated asking for at least four
    status, report = run_json(capsys, "--min-images", "4", str(tmp_path))

    # THEN exit 1 with a named problem
    assert status == 1 and report["accepted"] is False
    assert [problem["code"] for problem in report["problems"]] == ["TOO_FEW_IMAGES"]


def test_human_summary(tmp_path: Path, capsys: pytest.CaptureFixture):
    # GIVEN a missing folder
    # WHEN validated without --json
    status = command.main([str(tmp_path / "nope")])

    # THEN the summary names the verdict and the problem
    out = capsys.readouterr().out
    assert status == 1 and out.startswith("REJECTED") and "NOT_FOUND" in out


def test_unexpected_error_is_a_problem_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    # GIVEN a validator that breaks
    def broken(path, limits):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("spaceport.validation.core.validate_path", broken)

    # WHEN validated
    status, report = run_json(capsys, str(tmp_path))

    # THEN exit 1 with INTERNAL_ERROR and no traceback on stderr
    assert status == 1 and report["problems"][0]["code"] == "INTERNAL_ERROR"
    assert "disk on fire" in report["problems"][0]["message"]
    assert "Traceback" not in capsys.readouterr().err


def test_usage_errors_exit_two(tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch):
    # GIVEN no PATH, a bad option value, and a bad limit in the environment
    with pytest.raises(SystemExit) as missing_path:
        command.main([])
    with pytest.raises(SystemExit) as bad_option:
        command.main(["--min-images", "zero", str(tmp_path)])
    monkeypatch.setenv("SPACEPORT_MAX_IMAGES", "lots")
    bad_env = command.main([str(tmp_path)])

    # THEN each is a usage error, exit 2
    assert missing_path.value.code == 2 and bad_option.value.code == 2 and bad_env == 2
    assert "SPACEPORT_MAX_IMAGES" in capsys.readouterr().err


def test_limits_from_env():
    # GIVEN an environment setting two limits
    environ = {"SPACEPORT_MIN_IMAGES": "10", "SPACEPORT_MAX_IMAGE_PIXELS": "50_000_000"}

    # WHEN read
    limits = Limits.from_env(environ)

    # THEN those two change and the rest keep their defaults; nonsense is refused
    assert (limits.min_images, limits.max_image_pixels, limits.max_images) == (10, 50_000_000, Limits().max_images)
    with pytest.raises(LimitsError):
        Limits.from_env({"SPACEPORT_MIN_IMAGES": "-1"})


def test_spaceport_cli_dispatches_to_validate(tmp_path: Path, capsys: pytest.CaptureFixture):
    # GIVEN the top-level CLI and three photos
    from spaceport import cli

    photos(tmp_path, 3)

    # WHEN `spaceport validate --json PATH` runs
    status = cli.main(["validate", "--json", str(tmp_path)])

    # THEN it answers like the command itself
    assert status == 0 and json.loads(capsys.readouterr().out)["images"] == 3


def test_exit_codes_from_a_real_process(tmp_path: Path):
    # GIVEN a rejected input and a usage error, run as separate processes
    environ = {**os.environ, "PYTHONPATH": str(REPO / "src"), "LC_ALL": "C"}
    module = [sys.executable, "-m", "spaceport.validation.command"]
    (tmp_path / "ñame.txt").write_text("x")

    # WHEN they run
    rejected = subprocess.run([*module, "--json", str(tmp_path)], capture_output=True, text=True, env=environ)
    usage = subprocess.run([*module, "--bogus"], capture_output=True, text=True, env=environ)

    # THEN exit 1 with one JSON object (even under the C locale, with a non-ASCII name), and exit 2
    assert rejected.returncode == 1, rejected.stderr
    problems = json.loads(rejected.stdout)["problems"]
    assert [problem["code"] for problem in problems] == [Code.TOO_FEW_IMAGES, Code.UNSUPPORTED_FILE]
    assert problems[1]["path"] == "ñame.txt"
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
