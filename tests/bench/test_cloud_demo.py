"""The cloud-demo suite reports what `make cloud-demo` measured."""

from __future__ import annotations

import pytest
from benchmarks import cloud_demo
from benchmarks.common import Workspace

FIGURES = {
    "status": "SUCCEEDED", "submit_to_verified_scene_s": 251.3, "test_psnr": 30.84, "photos": 32,
    "stage_seconds": {"validate": 0.5, "sfm": 12.1, "train": 190.2, "compress": 4.4},
    "preset": "default", "iterations": 2000, "viewer_upright": True,
    "stages_ran_as": {"sfm": "container spaceport-sfm:local", "compress": "process", "train": "process (CPU)"},
}  # fmt: skip


def test_the_section_gives_the_time_each_stage_and_the_held_out_psnr():
    # GIVEN a demo's figures WHEN reported
    result = cloud_demo.report(FIGURES)
    # THEN one row holds the outcome, the total, each stage and the PSNR; the target is met; the note says where
    # each stage ran
    [row] = result.tables[0].rows
    assert row[:7] == ["SUCCEEDED", "251 s", "0.5 s", "12.1 s", "190.2 s", "4.4 s", "30.84 dB"]
    assert result.targets[0].met is True
    assert "sfm: container spaceport-sfm:local" in result.notes[0]


def test_a_demo_that_failed_or_opened_sideways_misses_its_target():
    # GIVEN a failed demo, and one whose page was not upright WHEN reported THEN the target is missed
    assert cloud_demo.report(FIGURES | {"status": "FAILED"}).targets[0].met is False
    assert cloud_demo.report(FIGURES | {"viewer_upright": False}).targets[0].met is False


def test_figures_that_are_not_there_are_an_error(tmp_path):
    # GIVEN no figures file WHEN the suite is pointed at it THEN it says to run the demo
    with pytest.raises(FileNotFoundError, match="make cloud-demo"):
        cloud_demo.run(Workspace(tmp_path), tmp_path / "figures.json")
