"""Entry point of the sfm container: the stage lives in the spaceport package, this only starts it."""

import sys

from spaceport.sfm.command import main

if __name__ == "__main__":
    sys.exit(main())
