"""Container entry point: SageMaker starts training images as ``docker run IMAGE train``.

``train`` (and no argument) runs ``spaceport train`` on the SageMaker layout under ``/opt/ml``; any
further arguments are passed on, so ``docker run IMAGE train --preset fast`` works for local tests.
"""

from __future__ import annotations

import sys

from spaceport.cli import main


def command_line(argv: list[str]) -> list[str]:
    """The ``spaceport`` arguments for the container's arguments."""
    if not argv or argv[0] == "train":
        return ["train", *argv[1:]]
    return argv


if __name__ == "__main__":
    sys.exit(main(command_line(sys.argv[1:])))
