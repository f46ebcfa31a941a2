"""``spaceport validate PATH [--json]``: check a folder or .zip of photos before processing.

Exit status: 0 accepted (warnings allowed), 1 rejected, 2 usage error. Never a traceback: an unexpected error is
reported as an ``INTERNAL_ERROR`` problem.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from spaceport.validation.codes import Code
from spaceport.validation.limits import Limits, LimitsError
from spaceport.validation.report import Issue, ValidationReport

EXIT_ACCEPTED, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2
logger = logging.getLogger("spaceport.validation")


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the ``validate`` arguments."""
    parser.add_argument("path", type=Path, help="a folder of photos or a .zip of them")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")
    parser.add_argument(
        "--min-images",
        type=_positive_int,
        default=None,
        help="fewest usable images (default: SPACEPORT_MIN_IMAGES, else 3)",
    )


def run(args: argparse.Namespace) -> int:
    """Validate ``args.path`` and print the report; return the exit status."""
    # Names may hold any character; escape what the terminal's encoding cannot show rather than crash.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        limits = Limits.from_env()
    except LimitsError as error:
        print(f"spaceport validate: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.min_images is not None:
        limits = Limits(**{**limits.__dict__, "min_images": args.min_images})
    report = _validate(args.path, limits)
    print(report.to_json() if args.json else report.summary())
    return EXIT_ACCEPTED if report.accepted else EXIT_REJECTED


def _validate(path: Path, limits: Limits) -> ValidationReport:
    # Imported here so `spaceport --help` does not load Pillow.
    from spaceport.validation.core import validate_path

    try:
        return validate_path(path, limits)
    except Exception as error:  # the last line of defence: the caller must get a report, not a traceback
        logger.debug("validation failed", exc_info=True)
        issue = Issue(code=Code.INTERNAL_ERROR, path=str(path), message=f"{type(error).__name__}: {error}")
        return ValidationReport(accepted=False, problems=[issue])


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from error
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Run ``validate`` on its own (``python -m spaceport.validation.command``), without the other commands."""
    parser = argparse.ArgumentParser(prog="spaceport validate", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
