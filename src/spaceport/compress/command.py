"""``spaceport compress``: a 3DGS PLY to PlayCanvas SOG v2, as a command or as the SageMaker stage.

Two modes:

- ``spaceport compress IN.ply --out OUT.sog [--unbundled-dir DIR]``: one file, here.
- ``spaceport compress --stage [--ml-root /opt/ml]``: the Processing job; reads
  ``processing/input/model/{scene.ply | model.tar.gz}`` and ``processing/input/georef/georef.json`` (optional), writes
  ``processing/output/{scene.sog, sog/, scene.glb, scene.spz, tiles/, manifest.json}`` (``tiles/`` for a scene
  registered by GPS), and on failure the reason to ``output/message`` with a non-zero exit. ``--input``,
  ``--output`` and ``--failure-file`` override single paths of that layout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from spaceport.contract import SAGEMAKER_ROOT, ProcessingLayout, StageError, configure_logging, run_stage

if TYPE_CHECKING:
    from spaceport.compress.sog import SogConfig


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("ply", nargs="?", type=Path, help="input 3DGS PLY (not with --stage)")
    parser.add_argument("--out", type=Path, help="output .sog bundle (a ZIP of meta.json and WebP images)")
    parser.add_argument("--unbundled-dir", type=Path, help="also write meta.json and the WebP images to DIR")
    parser.add_argument("--sh-palette", type=int, help="SH palette entries (default: about one per 16 Gaussians)")
    parser.add_argument("--iterations", type=int, default=8, help="k-means iterations for the SH palette")
    stage = parser.add_argument_group("stage mode (SageMaker Processing contract)")
    stage.add_argument("--stage", action="store_true", help="run as the compress stage")
    stage.add_argument("--ml-root", type=Path, default=SAGEMAKER_ROOT, help="contract root (default /opt/ml)")
    stage.add_argument("--input", type=Path, help="input folder (default ROOT/processing/input/model)")
    stage.add_argument("--output", type=Path, help="output folder (default ROOT/processing/output)")
    stage.add_argument("--failure-file", type=Path, help="failure reason file (default ROOT/output/message)")


def run(args: argparse.Namespace) -> int:
    from spaceport.compress.sog import SogConfig

    if args.sh_palette is not None and not 1 <= args.sh_palette <= 65536:
        return _usage_error("--sh-palette must be between 1 and 65536 (labels are 16-bit)")
    if args.iterations < 0:
        return _usage_error("--iterations must be zero or more")
    config = SogConfig(sh_palette=args.sh_palette, iterations=args.iterations)
    if args.stage:
        if args.ply is not None or args.out is not None:
            return _usage_error("--stage reads the contract's folders: give no PLY and no --out")
        return _run_stage(args, config)
    if args.ply is None or args.out is None:
        return _usage_error("give IN.ply and --out OUT.sog, or --stage")
    return _run_file(args, config)


def _usage_error(message: str) -> int:
    print(f"spaceport compress: {message}", file=sys.stderr)
    return 2


def _run_stage(args: argparse.Namespace, config: SogConfig) -> int:
    from spaceport.compress.stage import CompressPaths, compress_stage

    defaults = CompressPaths.from_layout(ProcessingLayout(args.ml_root))
    paths = CompressPaths(
        input_dir=args.input or defaults.input_dir,
        output_dir=args.output or defaults.output_dir,
        failure_file=args.failure_file or defaults.failure_file,
        georef_dir=defaults.georef_dir,
    )
    return run_stage("compress", paths.failure_file, lambda: compress_stage(paths, config))


def _run_file(args: argparse.Namespace, config: SogConfig) -> int:
    from spaceport.compress.sog import encode_files, encode_sog, write_bundle, write_directory
    from spaceport.compress.stage import drop_non_finite, load_cloud

    configure_logging()
    try:
        cloud, dropped = drop_non_finite(load_cloud(args.ply))
    except (StageError, OSError) as error:
        return _usage_error(str(error))
    encoding = encode_sog(cloud, config)
    files = encode_files(encoding, config)
    sog_bytes = write_bundle(files, args.out)
    if args.unbundled_dir:
        write_directory(files, args.unbundled_dir)
    ply_bytes = args.ply.stat().st_size
    summary = {"gaussians": len(cloud), "dropped_non_finite": dropped, "sh_degree": cloud.sh_degree}
    summary |= {"ply_bytes": ply_bytes, "sog_bytes": sog_bytes, "ratio": round(ply_bytes / sog_bytes, 2)}
    print(json.dumps(summary | {"seconds": encoding.seconds}))
    return 0
