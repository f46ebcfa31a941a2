"""The job console in headless Chromium on the local stack: the screenshots its end-to-end test takes (the sample
scene's folder dropped on the page, trained with its stage and live step shown on a desktop and on a phone, the
finished scene opened in our viewer), kept in plots/, and what a person saw in them.

``python -m benchmarks --only console`` runs ``tests/cloud_client/test_console_end_to_end.py`` with its screenshots
written to the work folder, then copies them to plots/. A screenshot is reported as looked at only while its bytes are
those described in ``LOOKED_AT``: a new run's screenshots are new images, to be looked at and described there, and
``python -m benchmarks.console`` then writes the section again from the run's saved figures, without running it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import SuiteResult, Target, Workspace, described, fingerprint, run_quiet
from benchmarks.report import rewrite_section

NAME, TITLE = "console", "The job console in the browser: a dropped folder to an opened scene"
TEST = "tests/cloud_client/test_console_end_to_end.py"
# The test's screenshots, in the order RESULTS.md shows them; the viewer's render is kept as a JPEG (a photo-like
# image: a tenth of the PNG's size).
SHOTS = {
    "console-training-desktop.png": "console-training-desktop.png",
    "console-training-phone.png": "console-training-phone.png",
    "console-succeeded-desktop.png": "console-succeeded-desktop.png",
    "console-scene-opened.png": "console-scene-opened.jpg",
}
# What a person saw in each kept screenshot, by the SHA-256 of its bytes in plots/ (the first 16 hex digits).
LOOKED_AT: dict[str, tuple[str, str]] = {
    "console-training-desktop.png": (
        "d2d9389c5e84a0b5",
        (
            "1280x800, dark theme. Left, the New job panel: the drop zone, Preset set to fast, Steps and "
            'Webhook empty, and the dropped folder\'s upload ("images") as "uploaded · job 692d3204" with a '
            'full bar. Right, one job card: 692d3204, a blue RUNNING badge, "train running", the bar just '
            'past half (two stages done and 50 of 300 steps), "step 50 / 300 · PSNR 18.64 dB · 3,173 '
            "Gaussians\", the train log stream's name on two lines, 0.00 USD and a Cancel button. Nothing "
            "overlaps or is cut off."
        ),
    ),
    "console-training-phone.png": (
        "5c9738b9b1b1c8f2",
        (
            "390x844 (a phone), the same moment on the second page: the panels stack in one column, the drop"
            ' zone and the options above (Preset still "the stack\'s": the folder was dropped on the desktop '
            'page), then the card with RUNNING at its top right, "train running", the bar, the same step '
            'line wrapping after "3,173", the log stream wrapped over three lines, and cost 0.00 USD beside '
            "Cancel at the bottom. No sideways scrolling (the test checks the page's width too)."
        ),
    ),
    "console-succeeded-desktop.png": (
        "4e469243b9d0e6c8",
        (
            'The desktop page when the job ended: a green SUCCEEDED badge, "done" over a full green bar, '
            '"held-out PSNR 25.30 dB · 10,331 Gaussians · 0.1 MB", 0.02 USD, and a blue Open scene button in'
            " place of Cancel."
        ),
    ),
    "console-scene-opened.jpg": (
        "b46a8aacb7a5df4a",
        (
            "The tab Open scene opened: our viewer (1280x800) showing the sample scene from above at an "
            "angle, upright: the cluster of objects (checkered box, stacked cylinder, spheres, striped "
            "blocks) on green ground in the middle, sharp enough to tell apart, with blurred floaters and a "
            "soft green-grey haze around them (300 fast steps at 160 px on the CPU); the controls' help line"
            " at the bottom left."
        ),
    ),
}


def run(workspace: Workspace) -> SuiteResult:
    """Run the console's end-to-end test, keep its screenshots in plots/ and report them."""
    shots = workspace.root / "console-shots"
    shutil.rmtree(shots, ignore_errors=True)
    environment = {**os.environ, "SPACEPORT_CONSOLE_SHOTS": str(shots)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST]
    try:
        seconds: float | None = run_quiet(command, workspace.root / "logs" / "console.log", environment)
    except subprocess.CalledProcessError:
        seconds = None
    kept = {name: keep(shots / name, workspace.plots_dir / plot) for name, plot in SHOTS.items()
            if (shots / name).is_file()}  # fmt: skip
    figures = {"test_passed": seconds is not None, "test_seconds": seconds, "screenshots": kept}
    return report(figures)


def keep(shot: Path, plot: Path) -> str:
    """Copy ``shot`` to ``plot`` (as a JPEG where the name says so); the kept file's fingerprint."""
    plot.parent.mkdir(parents=True, exist_ok=True)
    if plot.suffix == ".jpg":
        from PIL import Image

        Image.open(shot).convert("RGB").save(plot, "JPEG", quality=85)
    else:
        shutil.copyfile(shot, plot)
    return fingerprint(plot)


def report(figures: dict[str, Any]) -> SuiteResult:
    kept: dict[str, str] = figures.get("screenshots", {})
    plots = [SHOTS[name] for name in SHOTS if name in kept]
    seen = {plot: text for plot in plots if (text := described(LOOKED_AT, plot, kept[_shot(plot)]))}
    took = f"passed in {figures['test_seconds']:.0f} s" if figures["test_passed"] else "failed (see logs/console.log)"
    targets = [
        Target("In headless Chromium, the console creates a job from a dropped folder, shows its stage and live step, "
               "and opens the finished scene; the access key appears nowhere in the page or its traffic",
               f"`{TEST}` {took}", bool(figures["test_passed"])),
        Target("The screenshots, desktop and phone-sized, are looked at",
               f"{len(seen)} of {len(SHOTS)} described below, as kept in plots/", len(seen) == len(SHOTS)),
    ]  # fmt: skip
    notes = [
        f"- `{plot}`: {seen.get(plot, 'not looked at yet (a new run: describe it in LOOKED_AT)')}" for plot in plots
    ]
    return SuiteResult(NAME, TITLE, figures, [], targets, plots=plots, notes=notes)


def _shot(plot: str) -> str:
    return next(name for name, kept in SHOTS.items() if kept == plot)


def report_again() -> None:
    """Write the section again from results.json (after describing the kept screenshots in ``LOOKED_AT``)."""
    rewrite_section(NAME, report)


if __name__ == "__main__":
    report_again()
