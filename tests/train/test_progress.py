"""The log-line contract: what SageMaker metric definitions and the local run parse."""

from __future__ import annotations

import re

from spaceport.train.progress import METRIC_DEFINITIONS, ProgressLog, format_progress, parse_progress


def test_progress_line_round_trips_through_the_parser_and_the_metric_regexes() -> None:
    # GIVEN a progress line as it appears in the log, behind the logger's prefix
    line = "2026-01-01 10:00:00,000 INFO spaceport.train: " + format_progress(500, 0.04123, 24.314, 18234)

    # WHEN the local run and SageMaker parse it
    figures = parse_progress(line)
    metrics = {d["Name"]: re.search(d["Regex"], line) for d in METRIC_DEFINITIONS}

    # THEN both read the same figures
    assert figures == {"iteration": 500, "loss": 0.0412, "psnr": 24.31, "gaussians": 18234}
    assert metrics["train:loss"].group(1) == "0.0412"
    assert metrics["train:psnr"].group(1) == "24.31"
    assert metrics["train:gaussians"].group(1) == "18234"
    assert metrics["test:psnr"] is None


def test_evaluation_line_matches_the_test_metrics() -> None:
    line = "INFO spaceport.train: evaluation psnr_test=25.12 ssim_test=0.8731 psnr_initial=13.40 views=4"
    found = {d["Name"]: re.search(d["Regex"], line) for d in METRIC_DEFINITIONS}
    assert found["test:psnr"].group(1) == "25.12" and found["test:ssim"].group(1) == "0.8731"
    assert parse_progress(line) is None


def test_progress_log_averages_over_the_window_and_calls_back() -> None:
    # GIVEN a log that reports every 2 steps to a callback
    received: list[dict] = []
    log = ProgressLog(every=2, callback=received.append)

    # WHEN three steps are recorded, the last one forced
    log.record(1, 0.2, 20.0, 10)
    log.record(2, 0.4, 22.0, 10)
    log.record(3, 0.1, 30.0, 12, force=True)

    # THEN the callback got the window averages
    assert [r["iteration"] for r in received] == [2, 3]
    assert received[0]["loss"] == 0.30000000000000004 or abs(received[0]["loss"] - 0.3) < 1e-9
    assert received[0]["psnr"] == 21.0 and received[1]["gaussians"] == 12
