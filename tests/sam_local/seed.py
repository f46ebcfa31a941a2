"""Prepare moto's server for ``sam local invoke`` with one of the ``events/`` files (the README's debugging steps).

    python -m tests.sam_local.seed validate_input.json [--endpoint http://127.0.0.1:5000]

Empties the server, creates the stack's resources, writes the state the event is about (as the tests do), and
prints the ``sam local invoke`` command for that event. ``--list`` names each event with its function.
"""

from __future__ import annotations

import argparse
import os
import shlex

from .scenarios import SCENARIOS
from .stack import SETTINGS, create_stack, reset_server


def sam_command(function: str, event: str, endpoint: str) -> str:
    return shlex.join(
        [
            f"AWS_ENDPOINT_URL_STS={endpoint}", "AWS_ACCESS_KEY_ID=testing", "AWS_SECRET_ACCESS_KEY=testing",
            ".tools/bin/sam", "local", "invoke", function, "-e", f"events/{event}",
            "--env-vars", "tests/sam_local/env.json", "--docker-network", "spaceport-local",
            "--invoke-image", "spaceport-local/lambda-python:3.11", "--skip-pull-image", "--region", "us-east-1",
        ]
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sam_local.seed", description=__doc__.splitlines()[0])
    parser.add_argument("event", nargs="?", choices=sorted(SCENARIOS), metavar="EVENT", help="a file in events/")
    parser.add_argument("--endpoint", default="http://127.0.0.1:5000", help="moto's server, as this machine reaches it")
    parser.add_argument("--list", action="store_true", help="each event file with the function it is for")
    args = parser.parse_args(argv)
    if args.list or not args.event:
        for event, scenario in sorted(SCENARIOS.items()):
            print(f"{event:42} {scenario.function}")
        return 0
    scenario = SCENARIOS[args.event]
    os.environ.update({key: value for key, value in SETTINGS.items() if key != "AWS_ENDPOINT_URL"})
    os.environ.update(
        AWS_ENDPOINT_URL=args.endpoint,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    reset_server(args.endpoint, scenario.executes)
    create_stack()
    scenario.seed()
    print(sam_command(scenario.function, args.event, args.endpoint))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
