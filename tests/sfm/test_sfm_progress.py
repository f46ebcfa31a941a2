"""The sfm stage's progress lines: the phases in order, and the photos registered as the mapper adds them."""

from __future__ import annotations

import logging

import pytest

from spaceport.sfm.progress import SfmProgress, format_progress, parse_progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [parse_progress(record.getMessage()) for record in caplog.records if parse_progress(record.getMessage())]


def test_a_line_reads_back_anywhere_in_a_logged_line() -> None:
    # GIVEN a mapping line behind the logger's prefix, and an extraction line without a count
    logged = "2026-12-07 10:00:00,000 INFO spaceport.sfm: " + format_progress("mapping", 32, 17)
    # WHEN they are parsed THEN the phase, photos and registered come back; other lines are not progress
    assert parse_progress(logged) == {"phase": "mapping", "photos": 32, "registered": 17}
    assert parse_progress(format_progress("extraction", 32)) == {"phase": "extraction", "photos": 32}
    assert parse_progress("sfm: 32 of 32 images registered") is None


def test_the_mapper_callbacks_count_the_largest_model_at_most_once_a_second(caplog) -> None:
    # GIVEN a capture of 10 photos, mapped after extraction and matching
    caplog.set_level(logging.INFO, logger="spaceport.sfm")
    clock = Clock()
    progress = SfmProgress(10, clock)
    progress.phase("extraction")
    progress.phase("matching")
    progress.phase("mapping")
    # WHEN a first model grows to 4 photos within a second, a second model starts and grows to 6, a second later
    progress.initial_pair()
    progress.next_image()
    progress.next_image()
    clock.now = 1.5
    progress.initial_pair()
    for _ in range(4):
        progress.next_image()
    clock.now = 3.0
    progress.next_image()
    progress.mapped(7)
    progress.phase("georeferencing")
    # THEN the phases come in order, counts only from mapping on, one line a second at most, never going back
    reported = lines(caplog)
    assert [line["phase"] for line in reported] == ["extraction", "matching", "mapping", "mapping", "mapping",
                                                    "mapping", "mapping", "georeferencing"]  # fmt: skip
    assert "registered" not in reported[0] and "registered" not in reported[1]
    assert [line["registered"] for line in reported[2:]] == [0, 2, 4, 7, 7, 7]
