"""``spaceport run INPUT --out DIR``: photos to a viewable splat on this machine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spaceport.local.pipeline import STAGES, RunOptions, run_pipeline
from spaceport.local.progress import progress_for
from spaceport.local.report import failure_summary, summary_table

PRESETS = ("fast", "default", "quality")
DEVICES = ("auto", "cpu", "cuda")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="a folder of photos or a .zip")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; reused to resume)")
    parser.add_argument("--preset", choices=PRESETS, default="default", help="training preset (default: default)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="training device (default: auto)")
    parser.add_argument("--from-stage", choices=STAGES[1:], help="rerun this stage and every stage after it")
    parser.add_argument("--iterations", type=int,
                        help="training steps instead of the preset's (its schedule is stretched to match)")  # fmt: skip
    parser.add_argument("--no-georef", dest="georef", action="store_false",
                        help="keep the frame SfM chose (default: x east, y north, z up in metres when the photos "
                        "carry GPS, else z up)")  # fmt: skip


def training_iterations(options: RunOptions) -> int | None:
    """The run's iteration count on this machine, for the training bar's total."""
    from spaceport.contract import StageError
    from spaceport.train.config import build_config

    try:
        return build_config(options.train_hyperparameters()).iterations
    except StageError:
        return None  # e.g. --device cuda without a GPU: the train stage itself reports it


def run(args: argparse.Namespace) -> int:
    options = RunOptions(args.input, args.out, args.preset, args.device, args.from_stage, args.iterations, args.georef)
    # On stderr, so that stdout carries only the result (the summary, or nothing when the run failed).
    progress = progress_for(training_iterations(options), sys.stderr)
    try:
        report = run_pipeline(options, progress)
    finally:
        progress.close()
    if report.status != "succeeded":
        print(failure_summary(report), file=sys.stderr)
        return 1
    print(summary_table(report))
    print(f"\nView it: spaceport view {args.out}")
    return 0
