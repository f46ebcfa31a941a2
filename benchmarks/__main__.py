"""Run the benchmark suites and write benchmarks/RESULTS.md, results.json and plots/.

``python -m benchmarks [--only quality,compress,train,sfm,lambdas,local,gpu,cloud-demo,console] [--quick] [--work DIR]``
runs the chosen suites one after the other (never two heavy measurements at once), then merges their results into
``benchmarks/results.json`` and rewrites ``benchmarks/RESULTS.md`` and ``benchmarks/plots/``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# pycolmap logs every image to stderr through glog; the suites read its figures, not its log.
os.environ.setdefault("GLOG_minloglevel", "2")

from benchmarks import (  # noqa: E402
    burst,
    cloud_demo,
    compression,
    console,
    georef,
    globe,
    gpu,
    lambdas,
    local_run,
    quality,
    scaling_sfm,
    scaling_splats,
    sfm,
    training,
    validate_lambda,
)
from benchmarks.common import SuiteResult, Workspace, machine_info  # noqa: E402
from benchmarks.report import load, save_json, save_markdown  # noqa: E402

HERE = Path(__file__).resolve().parent


SUITES: dict[str, Callable[[Workspace], SuiteResult]] = {
    "sfm": sfm.run,
    "scaling-sfm": scaling_sfm.run,
    "scaling-splats": scaling_splats.run,
    "georef": georef.run,
    "globe": globe.run,
    "compress": compression.run,
    "train": training.run,
    "quality": quality.run,
    "lambdas": lambdas.run,
    "validate": validate_lambda.run,
    "local": local_run.run,
    "burst": burst.run,
    "gpu": gpu.run,
    "cloud-demo": cloud_demo.run,
    "console": console.run,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated suites (default: all of {', '.join(SUITES)})")
    parser.add_argument("--quick", action="store_true",
                        help="smaller runs: 20k-Gaussian compression scene, 60/180 s training budgets, "
                             "fast and default presets, fewer repeats")  # fmt: skip
    parser.add_argument("--work", type=Path, help="keep intermediate files here and reuse them (default: temporary)")
    parser.add_argument("--skip-splat-transform", action="store_true",
                        help="compress with our encoder only (splat-transform's k-means takes minutes)")  # fmt: skip
    parser.add_argument("--presets", help="presets for the local suite (default: fast,default; +quality when full)")
    parser.add_argument("--quality-scenes", help="measure only these quality scenes again (e.g. real); keep the rest")
    parser.add_argument("--real-source", action="append", default=[], metavar="KEY=PATH",
                        help="a local copy (git mirror or clone) of a real capture's repository, e.g. "
                             "lund=/path/to/OpenSfM.git (default: a partial clone of the public one, which needs "
                             "the network); repeat for each capture")  # fmt: skip
    parser.add_argument("--gpu-figures", type=Path, help="`make gpu-check`'s figures.json (default: gpu-check-output/)")
    parser.add_argument("--cloud-demo-figures", type=Path,
                        help="a `make cloud-demo`'s figures.json to report instead of running it again")  # fmt: skip
    args = parser.parse_args(argv)
    args.suites = [name.strip() for name in args.only.split(",")] if args.only else list(SUITES)
    if any("=" not in item for item in args.real_source):
        parser.error("--real-source takes KEY=PATH, e.g. lund=/path/to/OpenSfM.git")
    args.real_sources = {key: Path(path) for key, path in (item.split("=", 1) for item in args.real_source)}
    unknown = [name for name in args.suites if name not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)}")
    return args


def run_suites(args: argparse.Namespace, work: Path) -> None:
    workspace = Workspace(work, quick=args.quick, plots_dir=HERE / "plots")
    results = load(HERE / "results.json")
    for name in args.suites:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        if name == "compress":
            result = compression.run(workspace, compare=not args.skip_splat_transform)
        elif name == "local" and args.presets:
            result = local_run.run(workspace, [preset.strip() for preset in args.presets.split(",")])
        elif name == "quality":
            only = set(args.quality_scenes.split(",")) if args.quality_scenes else None
            earlier = (
                results["quality"].figures | {"date": results["quality"].machine.get("date")}
                if "quality" in results
                else None
            )
            result = quality.run(workspace, args.real_sources, only, earlier)
        elif name == "gpu":
            result = gpu.run(workspace, args.gpu_figures)
        elif name == "cloud-demo":
            result = cloud_demo.run(workspace, args.cloud_demo_figures)
        elif name == "scaling-splats":
            result = scaling_splats.run(workspace, not args.skip_splat_transform, args.gpu_figures)
        else:
            result = SUITES[name](workspace)
        if not result.machine:  # a suite that reports another machine's figures (gpu) stamps that machine itself
            result.seconds = round(time.perf_counter() - started, 1)
            result.machine, result.mode = machine_info(), "quick" if args.quick else "full"
        # Merged into the file as it is now, not as it was when this run began: another run may have saved a suite
        # since. Saved after every suite: a long run that is stopped keeps what it measured.
        results = load(HERE / "results.json") | {name: result}
        save_json(results, HERE / "results.json")
        save_markdown(results, HERE / "RESULTS.md")
        print(f"[bench] {name} done in {result.seconds:.0f} s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
        run_suites(args, args.work.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="spaceport-bench-") as scratch:
            run_suites(args, Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
