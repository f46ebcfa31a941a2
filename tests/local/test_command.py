"""What the ``spaceport`` command prints: its help, a run's progress in a pipe, a failed run's reason.

Fast: every run here stops at the validate stage, before any stage process starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spaceport.cli import main
from spaceport.validation import Limits


def _noise_photos(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        noise = np.random.default_rng(index).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        Image.fromarray(noise).save(folder / f"p{index}.jpg")
    return folder


def test_help_says_what_the_tool_does_and_how_to_run_and_view(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a new user
    # WHEN they ask for help
    with pytest.raises(SystemExit) as exited:
        main(["--help"])

    # THEN it says what the tool makes from what, and shows the two commands that matter first, with their input
    assert exited.value.code == 0
    help_text = capsys.readouterr().out
    assert "photos" in help_text and "splat" in help_text and "browser" in help_text
    assert "spaceport run PHOTOS --out DIR" in help_text and "spaceport view DIR" in help_text
    assert f"{Limits().min_images} or more photos" in help_text
    commands = help_text.split("commands:")[1]
    assert commands.index(" run ") < commands.index(" view ") < commands.index(" validate ") < commands.index(" sfm ")
    # AND not how the code is organised
    assert "subcommand" not in help_text and "module" not in help_text


def test_piped_run_writes_plain_lines_then_the_reason_first(tmp_path: Path) -> None:
    # GIVEN a folder that the validate stage rejects (two photos)
    photos = _noise_photos(tmp_path / "photos", 2)

    # WHEN `spaceport run` runs with its output piped (stdout and stderr), as in `spaceport run ... 2>&1 | cat`
    command = [sys.executable, "-m", "spaceport.cli", "run", str(photos), "--out", str(tmp_path / "out")]
    finished = subprocess.run(  # noqa: S603 - our own interpreter and module
        [*command, "--preset", "fast"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, check=False
    )

    # THEN there are no carriage-return frames, only whole lines: the stage's progress, then the reason and the log
    output = finished.stdout.decode()
    assert finished.returncode == 1
    assert "\r" not in output
    lines = output.splitlines()
    assert lines[0] == "validate started"
    assert lines[1].startswith("validate failed: the input was rejected: TOO_FEW_IMAGES")
    assert lines[2] == f"log: {tmp_path / 'out' / 'logs' / 'validate.log'}"
    # AND no table of empty figures
    assert "images registered" not in output


def test_failed_run_prints_its_reason_and_log_and_no_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a folder that the validate stage rejects
    photos = _noise_photos(tmp_path / "photos", 2)

    # WHEN it is run
    exit_code = main(["run", str(photos), "--out", str(tmp_path / "out"), "--preset", "fast"])

    # THEN stdout (the result) stays empty, and stderr ends with the reason, the log and the report, in that order
    captured = capsys.readouterr()
    assert exit_code == 1 and captured.out == ""
    *_, reason, log, report = captured.err.splitlines()
    assert reason.startswith("validate failed: the input was rejected: TOO_FEW_IMAGES")
    assert log == f"log: {tmp_path / 'out' / 'logs' / 'validate.log'}"
    assert report == f"report: {tmp_path / 'out' / 'report.json'}"


def test_single_photo_run_says_what_input_is_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN one photo given as the input
    photo = _noise_photos(tmp_path / "photos", 1) / "p0.jpg"

    # WHEN it is run
    exit_code = main(["run", str(photo), "--out", str(tmp_path / "out"), "--preset", "fast"])

    # THEN the run fails at validate and says what to give instead of calling the photo an unsupported file
    error = capsys.readouterr().err
    assert exit_code == 1
    assert "expected a folder or a .zip of 3 or more photos, got a single photo (JPEG)" in error
    assert "UNSUPPORTED_FILE" not in error


def test_iterations_reach_the_train_stage_as_a_hyperparameter_with_the_preset_schedule_stretched() -> None:
    # GIVEN a run asked for 1500 steps of the default preset on the CPU
    from spaceport.local.command import training_iterations
    from spaceport.local.pipeline import RunOptions
    from spaceport.train.config import build_config

    options = RunOptions(Path("photos"), Path("out"), "default", "cpu", iterations=1500)

    # WHEN the train stage's hyperparameters are made from it
    hyperparameters = options.train_hyperparameters()
    config = build_config(hyperparameters)

    # THEN they are SageMaker-style strings, the bar counts 1500 steps, and densification still ends before the run
    assert hyperparameters == {"preset": "default", "device": "cpu", "iterations": "1500"}
    assert training_iterations(options) == 1500
    assert config.densify_until < 1500
    # AND without --iterations the preset decides
    assert RunOptions(Path("p"), Path("o"), "default", "cpu").train_hyperparameters() == {
        "preset": "default",
        "device": "cpu",
    }
