"""The ``spaceport`` command: one subcommand per job, each implemented by its own module.

A command module exposes ``configure(parser)`` and ``run(args) -> int`` and imports heavy libraries
(torch, pycolmap) only inside ``run``, so ``spaceport --help`` and ``spaceport validate`` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spaceport import __version__

COMMANDS = {
    "validate": ("spaceport.validation.command", "check a folder or .zip of photos before processing"),
    "sfm": ("spaceport.sfm.command", "the sfm stage: photos to a COLMAP model (SageMaker Processing contract)"),
    "train": ("spaceport.train.command", "the train stage: COLMAP model to scene.ply (SageMaker Training contract)"),
    "compress": ("spaceport.compress.command", "compress a 3DGS PLY to PlayCanvas SOG"),
    "run": ("spaceport.local.command", "photos to a viewable splat on this machine"),
    "view": ("spaceport.viewer.command", "serve a run's viewer on localhost"),
    "sample-scene": ("spaceport.scene.command", "render the bundled synthetic sample scene"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's module is imported (a command never pays for others)."""
    parser = argparse.ArgumentParser(prog="spaceport", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"spaceport {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
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
