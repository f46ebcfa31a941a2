"""``python -m spaceport.cloud.local_stack serve --work DIR`` runs a local stack until interrupted;
``python -m spaceport.cloud.local_stack demo --work DIR`` is ``make cloud-demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spaceport.cloud.local_stack", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True)
    serve = verbs.add_parser("serve", help="run a local stack until interrupted")
    serve.add_argument("--work", type=Path, required=True, help="the stand-in SageMaker's job folders and logs")
    serve.add_argument("--ready", type=Path, help="write the endpoints here (JSON) once the stack answers")
    serve.add_argument("--no-docker", action="store_true", help="run sfm and compress as processes, not containers")
    demo = verbs.add_parser("demo", help="the sample scene through `spaceport cloud` on a local stack")
    demo.add_argument("--work", type=Path, required=True, help="photos, the stack's files and the scene go here")
    demo.add_argument("--preset", default="default")
    demo.add_argument("--iterations", type=int, default=2000, help="training steps (default 2000, as `make demo`)")
    demo.add_argument("--images", type=int, help="photos in the sample scene (default: its layout's)")
    demo.add_argument("--no-docker", action="store_true", help="run sfm and compress as processes, not containers")
    args = parser.parse_args(argv)
    if args.verb == "serve":
        from spaceport.cloud.local_stack.serve import serve as run_serve

        return run_serve(args.work, args.ready, allow_docker=not args.no_docker)
    from spaceport.cloud.local_stack.demo import DemoOptions, run_demo

    options = DemoOptions(args.work, args.preset, args.iterations, args.images, allow_docker=not args.no_docker)
    return 0 if run_demo(options)["status"] == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
