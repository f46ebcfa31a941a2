"""``spaceport sample-scene OUT``: render a synthetic sample scene (photos + ground_truth.json)."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    from spaceport.scene.layouts import LAYOUTS, SceneConfig

    defaults = SceneConfig()
    # No argparse `choices` for the layout: an unknown one fails in SceneConfig, which names the valid ones
    # and exits 2 through the same path as every other impossible scene.
    layout_images = ", ".join(f"{name} {layout.defaults.images}" for name, layout in LAYOUTS.items())
    parser.add_argument("out", type=Path, help="output folder (photos go to OUT/images)")
    parser.add_argument("--layout", default=defaults.layout, help=f"capture layout: {', '.join(LAYOUTS)}")
    parser.add_argument("--images", type=int, help=f"photos in the capture (default per layout: {layout_images})")
    parser.add_argument("--width", type=int, default=defaults.width)
    parser.add_argument("--height", type=int, default=defaults.height)
    parser.add_argument("--seed", type=int, default=defaults.seed, help="texture and camera path seed")
    parser.add_argument("--gps", action=argparse.BooleanOptionalAction,
                        help="write EXIF GPS with noise and one wrong fix (default: drone layout only)")  # fmt: skip
    parser.add_argument("--novel-views", action="store_true",
                        help="also render 16 views off the capture path into OUT/novel_views (poses in the ground "
                             "truth), for scoring a splat where no photo was taken")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Render the scene; returns 0, or 2 when the arguments describe an impossible scene."""
    from spaceport.scene.generator import render_sample_scene
    from spaceport.scene.layouts import SceneConfig

    try:
        config = SceneConfig(
            images=args.images, width=args.width, height=args.height, seed=args.seed, layout=args.layout, gps=args.gps
        )
        scene = render_sample_scene(args.out, config, novel_views=args.novel_views)
    except ValueError as error:
        print(f"spaceport sample-scene: {error}")
        return 2
    print(f"{len(scene.poses)} photos in {scene.images_dir}; ground truth in {scene.ground_truth_file}")
    if args.novel_views:
        print(f"the novel-view sweep in {args.out / 'novel_views'}")
    return 0
