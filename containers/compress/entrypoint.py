"""The compress container's entry point: the SageMaker Processing job runs ``spaceport compress --stage``.

Extra arguments (the job's ``ContainerArguments``, e.g. ``--sh-palette 4096``) are passed through.
"""

from __future__ import annotations

import sys

from spaceport.cli import main

if __name__ == "__main__":
    sys.exit(main(["compress", "--stage", *sys.argv[1:]]))
