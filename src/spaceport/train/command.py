"""``spaceport train``: the train stage from the command line, in a container or on this machine.

In a container (``docker run IMAGE train``) every default is the SageMaker layout under ``/opt/ml``;
locally the flags point it anywhere. Explicit flags override ``hyperparameters.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spaceport.contract import SAGEMAKER_ROOT, TrainingLayout, run_stage
from spaceport.train.config import DEVICES, PRESETS

# Flags that are also hyperparameters: dest -> hyperparameter name.
HYPERPARAMETER_FLAGS = {"preset": "preset", "device": "device", "iterations": "iterations"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ml-root", type=Path, default=SAGEMAKER_ROOT, help="SageMaker root (default /opt/ml)")
    parser.add_argument("--sfm", type=Path, help="the sfm output: sparse/0 and images/ (default ROOT/input/data/sfm)")
    parser.add_argument("--model-dir", type=Path, help="where scene.ply and manifest.json go (default ROOT/model)")
    parser.add_argument("--checkpoint-dir", type=Path, help="checkpoints, resumed from (default ROOT/checkpoints)")
    parser.add_argument("--failure-file", type=Path, help="failure reason (default ROOT/output/failure)")
    parser.add_argument("--hyperparameters", type=Path, help="JSON of string values (default ROOT/input/config/...)")
    parser.add_argument("--preset", choices=PRESETS, help="training preset (hyperparameter 'preset')")
    parser.add_argument("--device", choices=DEVICES, help="auto, cpu or cuda (hyperparameter 'device')")
    parser.add_argument("--iterations", type=int, help="override the preset's iteration count")


def resolve_paths(args: argparse.Namespace):  # noqa: ANN201 - TrainPaths, imported lazily below
    from spaceport.train.stage import TrainPaths

    defaults = TrainPaths.from_layout(TrainingLayout(args.ml_root))
    return TrainPaths(
        sfm_dir=args.sfm or defaults.sfm_dir,
        model_dir=args.model_dir or defaults.model_dir,
        checkpoint_dir=args.checkpoint_dir or defaults.checkpoint_dir,
        failure_file=args.failure_file or defaults.failure_file,
        hyperparameters_file=args.hyperparameters or defaults.hyperparameters_file,
    )


def run(args: argparse.Namespace) -> int:
    from spaceport.train.stage import STAGE, train_stage

    paths = resolve_paths(args)
    overrides = {name: str(getattr(args, dest)) for dest, name in HYPERPARAMETER_FLAGS.items()
                 if getattr(args, dest) is not None}  # fmt: skip
    return run_stage(STAGE, paths.failure_file, lambda: train_stage(paths, overrides))
