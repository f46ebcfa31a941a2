"""The ``spaceport`` command: one subcommand per job, each implemented by its own module.

A command module exposes ``configure(parser)`` and ``run(args) -> int`` and imports heavy libraries
(torch, pycolmap) only inside ``run``, so ``spaceport --help`` and ``spaceport validate`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spaceport import __version__

# What a user reads first: what they get from what, and the two commands that do it. Lines fit 80 columns.
# "3 or more" is the validator's default minimum (spaceport.validation.limits; importing it here would load Pillow).
DESCRIPTION = """\
Turn photos of a scene into a 3D Gaussian splat that you can look around in a
web browser, on this machine.

  spaceport run PHOTOS --out DIR
      PHOTOS: a folder or a .zip of 3 or more photos of one scene, taken from
      different positions. Writes the splat and its viewer into DIR and prints
      a summary. Add --preset fast for a quick first try.
  spaceport view DIR
      Opens the splat in DIR in your browser (served on 127.0.0.1).
"""
EPILOG = """\
validate, sfm, train and compress run one part of `run` on its own; sample-scene
renders photos to try it on; georef re-registers a finished run (z up, GPS);
export writes 3D Tiles for the globe, glTF and SPZ;
cloud does it all on a deployed AWS stack (spaceport cloud --help).
Details: spaceport COMMAND --help
"""

# In the order `spaceport --help` lists them: the two a user needs first.
COMMANDS = {
    "run": ("spaceport.local.command", "photos to a viewable splat on this machine"),
    "view": ("spaceport.viewer.command", "serve a run's viewer on localhost and open it"),
    "georef": ("spaceport.local.georef", "put a finished run upright, in metres, on Earth (GPS); no retraining"),
    "validate": ("spaceport.validation.command", "check a folder or .zip of photos before processing"),
    "sample-scene": ("spaceport.scene.command", "render a synthetic sample scene: photos to try `run` on"),
    "sfm": ("spaceport.sfm.command", "the sfm stage: photos to a COLMAP model (SageMaker Processing contract)"),
    "train": ("spaceport.train.command", "the train stage: COLMAP model to scene.ply (SageMaker Training contract)"),
    "compress": ("spaceport.compress.command", "compress a 3DGS PLY to PlayCanvas SOG"),
    "export": ("spaceport.export.command", "a run's splat as 3D Tiles on the globe, as glTF and as SPZ"),
    "cloud": ("spaceport.cloud.client.command", "the same on AWS: submit photos to a deployed stack, follow, download"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's module is imported (a command never pays for others)."""
    parser = argparse.ArgumentParser(
        prog="spaceport",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"spaceport {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        if only in (None, name):
            module = importlib.import_module(module_name)
            module.configure(subparser)
            subparser.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only=command).parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
