"""``spaceport sample-scene OUT``: render the synthetic sample scene (photos + ground_truth.json)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    from spaceport.scene.generator import SceneConfig

    defaults = SceneConfig()
    parser.add_argument("out", type=Path, help="output folder (photos go to OUT/images)")
    parser.add_argument("--images", type=int, default=defaults.images, help="photos on the orbit")
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--height", type=int, default=defaults.height)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="texture and orbit seed")


def run(args: argparse.Namespace) -> int:
    """Render the scene; returns 0, or 2 when the arguments describe an impossible scene."""
    from spaceport.scene.generator import SceneConfig, render_sample_scene

    try:
        config = SceneConfig(images=args.images, width=args.width, height=args.height, seed=args.seed)
        scene = render_sample_scene(args.out, config)
    except ValueError as error:
        print(f"spaceport sample-scene: {error}")
        return 2
    print(f"{len(scene.poses)} photos in {scene.images_dir}; ground truth in {scene.ground_truth_file}")
    return 0
