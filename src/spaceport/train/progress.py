"""The training log lines: the contract between the train stage, SageMaker metrics and the local run.

One line per report, ``key=value`` pairs separated by spaces, for example::

    iteration=500 loss=0.0412 psnr=24.31 gaussians=18234
    evaluation psnr_test=25.12 ssim_test=0.8731 psnr_initial=13.40 views=4

They go through the ``spaceport`` logger (stderr: CloudWatch in a container, the log file locally), so
readers must search rather than match from the line's start. ``METRIC_DEFINITIONS`` is what a
SageMaker ``CreateTrainingJob`` takes as ``AlgorithmSpecification.MetricDefinitions``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger("spaceport.train")

NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
METRIC_DEFINITIONS = [
    {"Name": "train:iteration", "Regex": r"iteration=(\d+) loss="},
    {"Name": "train:loss", "Regex": rf"iteration=\d+ loss={NUMBER}"},
    {"Name": "train:psnr", "Regex": rf"iteration=\d+ loss=\S+ psnr={NUMBER}"},
    {"Name": "train:gaussians", "Regex": r"iteration=\d+ loss=\S+ psnr=\S+ gaussians=(\d+)"},
    {"Name": "test:psnr", "Regex": rf"psnr_test={NUMBER}"},
    {"Name": "test:ssim", "Regex": rf"ssim_test={NUMBER}"},
]
PROGRESS_LINE = re.compile(rf"iteration=(\d+) loss={NUMBER} psnr={NUMBER} gaussians=(\d+)")

ProgressCallback = Callable[[dict[str, float]], None]


def format_progress(iteration: int, loss: float, psnr: float, gaussians: int) -> str:
    return f"iteration={iteration} loss={loss:.4f} psnr={psnr:.2f} gaussians={gaussians}"


def parse_progress(line: str) -> dict[str, float] | None:
    """The figures of a progress line anywhere in ``line`` (log prefixes allowed), else None."""
    match = PROGRESS_LINE.search(line)
    if not match:
        return None
    return {"iteration": int(match.group(1)), "loss": float(match.group(2)), "psnr": float(match.group(3)),
            "gaussians": int(match.group(4))}  # fmt: skip


@dataclass
class ProgressLog:
    """Averages loss and PSNR over the last ``every`` steps, logs one line, and calls ``callback`` with it."""

    every: int
    callback: ProgressCallback | None = None
    _losses: list[float] = field(default_factory=list)
    _psnrs: list[float] = field(default_factory=list)

    def record(self, iteration: int, loss: float, psnr: float, gaussians: int, force: bool = False) -> None:
        self._losses.append(loss)
        self._psnrs.append(psnr)
        if not force and (self.every <= 0 or iteration % self.every):
            return
        figures = {"iteration": iteration, "loss": sum(self._losses) / len(self._losses),
                   "psnr": sum(self._psnrs) / len(self._psnrs), "gaussians": gaussians}  # fmt: skip
        self._losses.clear()
        self._psnrs.clear()
        logger.info(format_progress(iteration, figures["loss"], figures["psnr"], gaussians))
        if self.callback is not None:
            self.callback(figures)
