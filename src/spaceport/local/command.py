"""``spaceport run INPUT --out DIR``: photos to a viewable splat on this machine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

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
    """One progress bar per stage on stderr; training's bar counts iterations and shows PSNR and Gaussians."""

    def __init__(self) -> None:
        self.bar = None

    def stage_started(self, stage: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(desc=stage.ljust(8), total=None, unit="it" if stage == "train" else " steps", leave=True)

    def stage_line(self, stage: str, line: str) -> None:
        from spaceport.train.progress import parse_progress

        if self.bar is None:
            return
        figures = parse_progress(line) if stage == "train" else None
        if figures is None:
            if stage != "train":
                self.bar.update(1)
            return
        if figures.get("total"):
            self.bar.total = int(figures["total"])
        self.bar.n = int(figures["iteration"])
        self.bar.set_postfix(psnr=f"{figures['psnr']:.2f}", gaussians=int(figures["gaussians"]), refresh=False)
        self.bar.refresh()

    def stage_finished(self, stage: str, outcome: StageOutcome) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str("reused" if outcome.skipped else f"{outcome.seconds:.1f} s")
            self.bar.close()
            self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run(args: argparse.Namespace) -> int:
    options = RunOptions(args.input, args.out, args.preset, args.device, args.from_stage)
    progress = BarProgress()
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
