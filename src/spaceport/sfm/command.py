"""``spaceport sfm``: the sfm stage under the SageMaker Processing contract.

By default it reads ``/opt/ml/processing/input/images`` and writes ``/opt/ml/processing/output``, with the
failure reason in ``/opt/ml/output/message``; ``--ml-root`` moves that root, and explicit paths win over it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from spaceport.contract import SAGEMAKER_ROOT, ProcessingLayout, run_stage

INPUT_CHANNEL = "images"


def configure(parser: argparse.ArgumentParser) -> None:
    from spaceport.sfm.stage import CAMERA_MODELS, MAPPERS, MATCHERS, SfmConfig

    defaults = SfmConfig()
    parser.add_argument("--ml-root", type=Path, default=SAGEMAKER_ROOT, help="root of the SageMaker layout")
    parser.add_argument("--images", type=Path, help="input photos (default: ML_ROOT/processing/input/images)")
    parser.add_argument("--output", type=Path, help="output folder (default: ML_ROOT/processing/output)")
    parser.add_argument("--failure-file", type=Path, help="failure reason (default: ML_ROOT/output/message)")
    parser.add_argument("--work-dir", type=Path, help="scratch folder (default: a temporary folder)")
    parser.add_argument("--max-image-size", type=int, default=defaults.max_image_size)
    parser.add_argument("--matcher", choices=MATCHERS, default=defaults.matcher)
    parser.add_argument("--mapper", choices=MAPPERS, default=defaults.mapper)
    parser.add_argument("--min-registered-ratio", type=float, default=defaults.min_registered_ratio)
    parser.add_argument("--camera-model", choices=CAMERA_MODELS, default=defaults.camera_model)
    parser.add_argument("--threads", type=int, default=defaults.num_threads, help="0: every available core")
    parser.add_argument("--no-georef", dest="georef", action="store_false",
                        help="keep the frame SfM chose (default: east-north-up metres by GPS, else z up)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Run the stage; returns 0 on success, non-zero after writing the failure reason."""
    from spaceport.sfm.stage import SfmConfig, run_sfm

    layout = ProcessingLayout(args.ml_root)
    images = args.images or layout.input_dir(INPUT_CHANNEL)
    output = args.output or layout.output_dir
    failure_file = args.failure_file or layout.failure_file

    def body() -> None:
        config = SfmConfig(
            max_image_size=args.max_image_size,
            matcher=args.matcher,
            mapper=args.mapper,
            min_registered_ratio=args.min_registered_ratio,
            camera_model=args.camera_model,
            num_threads=args.threads,
            georef=args.georef,
        )
        if args.work_dir:
            run_sfm(images, output, args.work_dir, config)
            return
        with tempfile.TemporaryDirectory(prefix="spaceport-sfm-") as scratch:
            run_sfm(images, output, Path(scratch), config)

    return run_stage("sfm", failure_file, body)


def main(argv: list[str] | None = None) -> int:
    """Container entry point: parse the arguments SageMaker passes and run the stage."""
    parser = argparse.ArgumentParser(prog="spaceport-sfm", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
