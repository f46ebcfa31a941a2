"""How ``spaceport run`` shows a run's progress: bars on a terminal, plain lines anywhere else.

A bar redraws itself with carriage returns; in a pipe, a file or CloudWatch every redraw becomes a partial line.
So off a terminal each stage step gets one line, and training gets a line of the bar's figures every
``EVERY_PERCENT`` % of its iterations or every ``EVERY_SECONDS`` seconds, whichever comes first.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TextIO

from spaceport.local.pipeline import Progress, StageOutcome
from spaceport.train.progress import parse_progress

EVERY_PERCENT = 10
EVERY_SECONDS = 30.0
# Our stages' log lines (spaceport.contract.configure_logging: "<asctime> <level> <logger>: <message>") and the
# message that ``spaceport.contract.timed`` logs when a step starts ("extraction ..."). Other lines (COLMAP's own,
# the config dict) are detail for the log file, not progress.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ [\w.]+: (?P<message>.*)$")
STEP_STARTED = re.compile(r"^(?P<step>\w+) \.\.\.$")


def step_started(line: str) -> str | None:
    """The name of the step that a stage's log line says has started, else None."""
    log_line = LOG_LINE.match(line)
    step = STEP_STARTED.match(log_line.group("message")) if log_line else None
    return step.group("step") if step else None


def progress_for(training_iterations: int | None, stream: TextIO) -> Progress:
    """Bars when ``stream`` is a terminal, plain lines otherwise."""
    isatty = getattr(stream, "isatty", None)
    if callable(isatty) and isatty():
        return BarProgress(training_iterations, stream)
    return LineProgress(training_iterations, stream)


class BarProgress(Progress):
    """One progress bar per stage: training counts iterations with PSNR and Gaussians, the other stages count
    log lines; each shows the step it is on."""

    def __init__(self, training_iterations: int | None, stream: TextIO) -> None:
        self.training_iterations = training_iterations
        self.stream = stream
        self.bar: Any = None

    def stage_started(self, stage: str) -> None:
        from tqdm import tqdm

        total = self.training_iterations if stage == "train" else None
        unit = "it" if stage == "train" else " lines"
        self.bar = tqdm(desc=stage.ljust(8), total=total, unit=unit, leave=True, file=self.stream)

    def stage_line(self, stage: str, line: str) -> None:
        if self.bar is None:
            return
        figures = parse_progress(line) if stage == "train" else None
        if figures is not None:
            self.bar.n = int(figures["iteration"])
            self.bar.set_postfix(psnr=f"{figures['psnr']:.2f}", gaussians=int(figures["gaussians"]), refresh=False)
            self.bar.refresh()
            return
        step = step_started(line)
        if step is not None:
            self.bar.set_postfix_str(step)
        self.bar.update(0 if stage == "train" else 1)

    def stage_finished(self, stage: str, outcome: StageOutcome) -> None:
        if self.bar is not None:
            if stage == "train" and not outcome.skipped:
                self.bar.n = self.bar.total or self.bar.n
            self.bar.set_postfix_str("reused" if outcome.skipped else f"done in {outcome.seconds:.1f} s")
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class LineProgress(Progress):
    """Plain lines, ``<stage> <what>``: the stage's start and end, each step, and training's figures now and then.

    A step that logs no figures (SfM's mapping) gets a reminder line when ``every_seconds`` pass without one.
    """

    def __init__(
        self,
        training_iterations: int | None,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
        every_percent: int = EVERY_PERCENT,
        every_seconds: float = EVERY_SECONDS,
    ) -> None:
        self.training_iterations = training_iterations
        self.stream = stream
        self.clock = clock
        self.every_percent = every_percent
        self.every_seconds = every_seconds
        self.step: str | None = None
        self.step_started_at = self.last_printed_at = 0.0
        self.next_percent = every_percent

    def stage_started(self, stage: str) -> None:
        self.step = None
        self.next_percent = self.every_percent
        self._print(stage, "started")

    def stage_line(self, stage: str, line: str) -> None:
        figures = parse_progress(line) if stage == "train" else None
        if figures is not None:
            if self._figures_due(int(figures["iteration"])):
                self._print(stage, self._figures_text(figures))
            return
        step = step_started(line)
        if step is not None:
            self.step, self.step_started_at = step, self.clock()
            self._print(stage, f"{step} ...")
        elif self.step is not None and self.clock() - self.last_printed_at >= self.every_seconds:
            self._print(stage, f"{self.step} ... still running after {self.clock() - self.step_started_at:.0f} s")

    def stage_finished(self, stage: str, outcome: StageOutcome) -> None:
        self._print(stage, "reused" if outcome.skipped else f"done in {outcome.seconds:.1f} s")

    def close(self) -> None:
        self.stream.flush()

    def _figures_due(self, iteration: int) -> bool:
        """Whether a training progress line is worth a line: the next ``every_percent`` step was reached, the
        last iteration came, or ``every_seconds`` passed since the last line printed."""
        total = self.training_iterations
        if total:
            percent = 100 * iteration / total
            if percent >= self.next_percent or iteration >= total:
                self.next_percent = (int(percent) // self.every_percent + 1) * self.every_percent
                return True
        return self.clock() - self.last_printed_at >= self.every_seconds

    def _figures_text(self, figures: dict[str, float]) -> str:
        iteration, total = int(figures["iteration"]), self.training_iterations
        done = f"{iteration}/{total} ({100 * iteration // total} %)" if total else f"{iteration}"
        return f"iteration {done}  psnr {figures['psnr']:.2f}  gaussians {int(figures['gaussians'])}"

    def _print(self, stage: str, text: str) -> None:
        self.stream.write(f"{stage.ljust(8)} {text}\n")
        self.stream.flush()
        self.last_printed_at = self.clock()
