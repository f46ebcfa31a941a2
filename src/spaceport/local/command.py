"""``spaceport run INPUT --out DIR``: photos to a viewable splat on this machine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from spaceport.local.pipeline import STAGES, Progress, RunOptions, StageOutcome, run_pipeline
from spaceport.local.report import summary_table

PRESETS = ("fast", "default", "quality")
DEVICES = ("auto", "cpu", "cuda")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="a folder of photos or a .zip")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; reused to resume)")
    parser.add_argument("--preset", choices=PRESETS, default="default", help="training preset (default: default)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="training device (default: auto)")
    parser.add_argument("--from-stage", choices=STAGES[1:], help="rerun this stage and every stage after it")


class BarProgress(Progress):
    """One progress bar per stage on stderr: training counts iterations with PSNR and Gaussians, the other
    stages show the step they are on."""

    def __init__(self, training_iterations: int | None) -> None:
        self.training_iterations = training_iterations
        self.bar: Any = None

    def stage_started(self, stage: str) -> None:
        from tqdm import tqdm

        total = self.training_iterations if stage == "train" else None
        self.bar = tqdm(desc=stage.ljust(8), total=total, unit="it" if stage == "train" else " lines", leave=True)

    def stage_line(self, stage: str, line: str) -> None:
        from spaceport.train.progress import parse_progress

        if self.bar is None:
            return
        figures = parse_progress(line) if stage == "train" else None
        if figures is None:
            # The log's message part, e.g. "matching ...": what the stage is doing now.
            self.bar.set_postfix_str(line.rsplit(": ", 1)[-1][:60], refresh=False)
            self.bar.update(0 if stage == "train" else 1)
            return
        self.bar.n = int(figures["iteration"])
        self.bar.set_postfix(psnr=f"{figures['psnr']:.2f}", gaussians=int(figures["gaussians"]), refresh=False)
        self.bar.refresh()

    def stage_finished(self, stage: str, outcome: StageOutcome) -> None:
        if self.bar is not None:
            if stage == "train" and not outcome.skipped:
                self.bar.n = self.bar.total or self.bar.n
            self.bar.set_postfix_str("reused" if outcome.skipped else f"done in {outcome.seconds:.1f} s")
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def training_iterations(preset: str, device: str) -> int | None:
    """The preset's iteration count on this machine, for the training bar's total."""
    from spaceport.contract import StageError
    from spaceport.train.config import build_config

    try:
        return build_config({"preset": preset, "device": device}).iterations
    except StageError:
        return None  # e.g. --device cuda without a GPU: the train stage itself reports it


def run(args: argparse.Namespace) -> int:
    options = RunOptions(args.input, args.out, args.preset, args.device, args.from_stage)
    progress = BarProgress(training_iterations(args.preset, args.device))
    try:
        report = run_pipeline(options, progress)
    finally:
        progress.close()
    print(summary_table(report))
    if report.status != "succeeded":
        print(f"\n{report.failed_stage} failed: {report.reason}", file=sys.stderr)
        print(f"log: {report.log_file}", file=sys.stderr)
        return 1
    print(f"\nView it: spaceport view {args.out}")
    return 0
