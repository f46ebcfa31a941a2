"""How ``spaceport run`` shows progress: bars on a terminal, plain lines in a pipe, a file or CloudWatch."""

from __future__ import annotations

import io

from spaceport.local.pipeline import StageOutcome
from spaceport.local.progress import BarProgress, LineProgress, progress_for


def _logged(logger: str, message: str) -> str:
    """A line as a stage logs it (spaceport.contract.configure_logging)."""
    return f"2026-12-03 07:39:30,683 INFO {logger}: {message}"


# The train stage's log as a local run sees it, shortened: iterations 25 to 300 every 25, and a config dict
# that ends in "{}}".
TRAIN_LOG = [
    _logged("spaceport", "train: starting (spaceport 0.1.0)"),
    _logged("spaceport.train", "config: {'preset': 'fast', 'iterations': 300, 'extra': {}}"),
    _logged("spaceport", "load ..."),
    _logged("spaceport", "load done in 0.94 s"),
    _logged("spaceport", "initialise ..."),
    _logged("spaceport", "initialise done in 3.26 s"),
    _logged("spaceport", "train ..."),
    *(
        _logged("spaceport.train", f"iteration={i} loss=0.1 psnr={10 + i / 20:.2f} gaussians={10 * i}")
        for i in range(25, 301, 25)
    ),
    _logged("spaceport", "train done in 13.96 s"),
    _logged("spaceport.train", "evaluation psnr_test=24.62 ssim_test=0.7359 psnr_initial=8.50 views=4"),
    _logged("spaceport", "train: finished in 20.3 s"),
]


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_training_prints_one_plain_line_per_step_and_every_ten_percent() -> None:
    # GIVEN plain progress for a 300-iteration training, on a stream that is not a terminal
    stream = io.StringIO()
    progress = LineProgress(training_iterations=300, stream=stream, clock=FakeClock())

    # WHEN the train stage logs its steps and a progress line every 25 iterations, all within a second
    progress.stage_started("train")
    for line in TRAIN_LOG:
        progress.stage_line("train", line)
    progress.stage_finished("train", StageOutcome("train", seconds=20.3))

    # THEN no carriage return, one line per step, and the figures every 10 % of the iterations rather than every
    # progress line, the last iteration included
    output = stream.getvalue()
    assert "\r" not in output and "{}}" not in output
    lines = output.splitlines()
    assert lines[:4] == ["train    started", "train    load ...", "train    initialise ...", "train    train ..."]
    figures = [line for line in lines if "iteration" in line]
    shown = [int(line.split()[2].split("/")[0]) for line in figures]
    assert shown == [50, 75, 100, 125, 150, 200, 225, 250, 275, 300]  # 175 is 58 %: the 60 % line waits for 200
    assert figures[-1] == "train    iteration 300/300 (100 %)  psnr 25.00  gaussians 3000"
    assert lines[-1] == "train    done in 20.3 s"


def test_off_a_terminal_a_slow_training_prints_its_figures_every_half_minute() -> None:
    # GIVEN plain progress for a long training whose progress lines come every 20 s, 0.1 % apart
    clock = FakeClock()
    stream = io.StringIO()
    progress = LineProgress(training_iterations=30_000, stream=stream, clock=clock)
    progress.stage_started("train")

    # WHEN six progress lines arrive over two minutes
    for index in range(1, 7):
        clock.now = 20.0 * index
        progress.stage_line("train", f"INFO spaceport.train: iteration={index * 25} loss=0.1 psnr=20.00 gaussians=10")

    # THEN a line is printed whenever 30 s have passed since the last one: at 40 s, 80 s and 120 s
    figures = [line for line in stream.getvalue().splitlines() if "iteration" in line]
    assert [line.split()[2] for line in figures] == ["50/30000", "100/30000", "150/30000"]


def test_off_a_terminal_other_stages_print_their_steps_not_every_log_line() -> None:
    # GIVEN plain progress and an sfm stage whose log mixes our step lines with COLMAP's own
    clock = FakeClock()
    stream = io.StringIO()
    progress = LineProgress(training_iterations=None, stream=stream, clock=clock)
    progress.stage_started("sfm")

    # WHEN it logs a step, a burst of COLMAP lines, then a long quiet step whose COLMAP lines come a minute apart
    progress.stage_line("sfm", _logged("spaceport", "extraction ..."))
    for index in range(100):
        progress.stage_line("sfm", f"I20261203 07:39:17.753873 1404 feature_extraction.cc:273]   Name: f{index}.jpg")
    clock.now = 10.0
    progress.stage_line("sfm", _logged("spaceport", "mapping ..."))
    clock.now = 70.0
    progress.stage_line("sfm", "I20261203 07:40:27.000000 1404 incremental_mapper.cc:100] Registering image #9")
    progress.stage_finished("sfm", StageOutcome("sfm", seconds=71.0))

    # THEN one line per step, a reminder that the long step is still running, and the stage's time
    assert stream.getvalue().splitlines() == [
        "sfm      started",
        "sfm      extraction ...",
        "sfm      mapping ...",
        "sfm      mapping ... still running after 60 s",
        "sfm      done in 71.0 s",
    ]


def test_on_a_terminal_the_training_bar_shows_steps_then_figures_without_stray_text() -> None:
    # GIVEN progress chosen for a terminal
    stream = TerminalStream()
    progress = progress_for(training_iterations=300, stream=stream)

    # WHEN the train stage logs its config (a dict ending in "{}}"), its steps and its progress lines
    progress.stage_started("train")
    for line in TRAIN_LOG[:6]:
        progress.stage_line("train", line)
    before_first_iteration = stream.getvalue()
    for line in TRAIN_LOG[6:]:
        progress.stage_line("train", line)
    progress.stage_finished("train", StageOutcome("train", seconds=20.3))

    # THEN it is a bar (carriage-return frames) that names the step before the first iteration, never shows a
    # piece of a log message, and ends on the figures of the last iteration
    output = stream.getvalue()
    assert isinstance(progress, BarProgress) and "\r" in output
    assert "{}}" not in output and "initialise" in before_first_iteration
    assert "300/300" in output and "psnr=25.00" in output
