"""The sfm stage's progress lines: the contract between the stage's log and whoever follows it live.

One line per report, in the stage's log (stderr: CloudWatch Logs in a SageMaker container), for example::

    sfm-progress phase=extraction photos=32
    sfm-progress phase=mapping registered=17 photos=32

``phase`` is extraction, matching, mapping, georeferencing or undistortion; ``registered`` (while mapping) is how
many photos the largest model holds so far. A SageMaker Processing job has no metric definitions, so the jobs API
reads these lines from the job's log stream (``spaceport.cloud.live``); readers search for ``MARKER`` rather than
match from the line's start, since the logger prefixes each line.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

logger = logging.getLogger("spaceport.sfm")

MARKER = "sfm-progress"
PHASES = ("extraction", "matching", "mapping", "georeferencing", "undistortion")
PROGRESS_LINE = re.compile(rf"{MARKER} phase=(\w+)(?: registered=(\d+))? photos=(\d+)")
# At most one mapping line a second: a 1,000-photo capture registers several photos a second at first.
REPORT_EVERY_S = 1.0


def format_progress(phase: str, photos: int, registered: int | None = None) -> str:
    counted = f" registered={registered}" if registered is not None else ""
    return f"{MARKER} phase={phase}{counted} photos={photos}"


def parse_progress(line: str) -> dict[str, str | int] | None:
    """The phase, photos and (while mapping) photos registered of a progress line anywhere in ``line``, else None."""
    match = PROGRESS_LINE.search(line)
    if not match:
        return None
    figures: dict[str, str | int] = {"phase": match.group(1), "photos": int(match.group(3))}
    if match.group(2) is not None:
        figures["registered"] = int(match.group(2))
    return figures


class SfmProgress:
    """Logs the stage's phases and, through the incremental mapper's callbacks, the photos registered so far.

    Args:
        photos: the photos the stage maps (after intake).
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(self, photos: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.photos, self._clock = photos, clock
        self.registered = 0
        self._model = 0
        self._reported_at = float("-inf")

    def phase(self, name: str) -> None:
        """A phase begins; from mapping on, each line also says how many photos are registered."""
        if name == "mapping":
            self.registered = self._model = 0
        counted = PHASES.index(name) >= PHASES.index("mapping")
        logger.info(format_progress(name, self.photos, self.registered if counted else None))

    def initial_pair(self) -> None:
        """The mapper registered a model's first two photos (a new model when an earlier one stalled)."""
        self._model = 2
        self._count()

    def next_image(self) -> None:
        """The mapper registered one more photo in the model it is growing."""
        self._model += 1
        self._count()

    def mapped(self, registered: int) -> None:
        """The mapper ended with ``registered`` photos in the model kept (the global mapper reports only this)."""
        self.registered, self._reported_at = registered, float("-inf")
        self._report()

    def _count(self) -> None:
        self.registered = max(self.registered, min(self._model, self.photos))
        if self._clock() - self._reported_at >= REPORT_EVERY_S:
            self._report()

    def _report(self) -> None:
        self._reported_at = self._clock()
        logger.info(format_progress("mapping", self.photos, self.registered))
