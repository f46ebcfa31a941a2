"""``spaceport export PATH [--format 3dtiles|glb|spz ...]``: a splat as glTF, SPZ and 3D Tiles on the globe.

PATH is a run's folder (``scene.ply``, ``georef.json``, ``report.json``) or a 3DGS PLY file (its ``georef.json``
beside it, or ``--georef FILE``). Writes into ``--out`` (default: PATH's folder):

- ``tiles/tileset.json`` + ``tiles/content/*.glb``: OGC 3D Tiles 1.1 on the globe, SPZ-compressed
  ``KHR_gaussian_splatting``, with levels of detail beyond the tile limit; needs a GPS-registered scene;
- ``scene.glb``: plain ``KHR_gaussian_splatting`` glTF (y-up);
- ``scene.spz``: SPZ, format version 2, in the PLY's frame.

The sky shell the train stage appends to ``scene.ply`` is left out of all three (``--keep-sky-shell`` keeps it in
the GLB and the SPZ). Where it starts comes from ``--sky-shell N``, else the train stage's record (the run's
``report.json``, or a ``manifest.json`` beside the PLY), else its shape (the last 4,096 Gaussians on one sphere
around all the others); ``--sky-shell none`` exports every Gaussian. Heights: georef.json's altitude is above mean
sea level; without ``--geoid-undulation N`` it is used as the height above the ellipsoid, and the tileset says so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spaceport.contract import configure_logging, write_json_atomic

FORMAT_CHOICES = ("3dtiles", "glb", "spz")


class ExportInputError(Exception):
    """PATH is neither a run's folder nor a PLY, or an option does not fit it; the message says what to pass."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    parser.add_argument("path", type=Path, help="a finished run's folder, or a 3DGS PLY")
    parser.add_argument("--format", action="append", choices=FORMAT_CHOICES, dest="formats",
                        help="what to write; repeat for several (default: all three)")  # fmt: skip
    parser.add_argument("--out", type=Path, help="output folder (default: the run's folder, or the PLY's)")
    parser.add_argument("--georef", type=Path, help="georef.json (default: the one beside scene.ply)")
    parser.add_argument("--sky-shell", default="auto", metavar="auto|none|N",
                        help="where the PLY's sky shell starts: auto (the train stage's record, else its shape), "
                             "none, or the index of its first Gaussian")  # fmt: skip
    parser.add_argument("--keep-sky-shell", action="store_true", help="keep the sky shell in scene.glb and scene.spz")
    parser.add_argument("--geoid-undulation", type=float, metavar="N",
                        help="metres of geoid above the WGS 84 ellipsoid at the origin: the tileset puts the "
                             "origin at its altitude above sea level plus N (default: no geoid, 0)")  # fmt: skip
    parser.add_argument("--tile-limit", type=int, help="most Gaussians in one tile (default: spaceport's measured)")


def _inputs(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """(the PLY, georef.json's path, the output folder)."""
    path: Path = args.path
    if path.is_dir():
        ply = path / "scene.ply"
        if not ply.is_file():
            raise ExportInputError(f"{path} has no scene.ply: pass a finished run's folder or a PLY")
    elif path.is_file() and path.suffix.lower() == ".ply":
        ply = path
    else:
        raise ExportInputError(f"{path} is neither a run's folder nor a .ply file")
    return ply, args.georef or ply.parent / "georef.json", args.out or ply.parent


def run(args: argparse.Namespace) -> int:
    """Export; 0 on success, 2 when the input or an option does not fit."""
    configure_logging()
    try:
        figures = export(args)
    except (ExportInputError, ValueError) as error:
        print(f"spaceport export: {error}", file=sys.stderr)
        return 2
    for line in summary(figures):
        print(line)
    return 0


def export(args: argparse.Namespace) -> dict[str, Any]:
    """Read, find the sky shell, write; returns the figures (with the paths written).

    Raises:
        ExportInputError: PATH or an option does not fit.
        ValueError: the PLY cannot be read, the sky shell option does not fit it, or ``3dtiles`` without GPS.
    """
    from spaceport.export.lod import TILE_LIMIT
    from spaceport.export.sky_shell import find_shell
    from spaceport.export.writer import ExportOptions, export_scene
    from spaceport.gaussians import read_ply
    from spaceport.sfm.georef import read_georef

    ply, georef_path, out_dir = _inputs(args)
    if args.tile_limit is not None and args.tile_limit < 1:
        raise ExportInputError("--tile-limit must be 1 or more")
    if args.georef is not None and not georef_path.is_file():
        raise ExportInputError(f"{georef_path} does not exist")
    cloud = read_ply(ply)
    shell = find_shell(cloud, ply, args.sky_shell)
    options = ExportOptions(formats=tuple(args.formats or FORMAT_CHOICES), keep_sky_shell=args.keep_sky_shell,
                            geoid_undulation_m=args.geoid_undulation, tile_limit=args.tile_limit or TILE_LIMIT,
                            require_globe=bool(args.formats) and "3dtiles" in args.formats)  # fmt: skip
    figures = export_scene(cloud, shell, read_georef(georef_path), out_dir, options)
    figures["paths"] = written_paths(figures, out_dir)
    if out_dir == ply.parent:
        _record_in_report(ply.parent / "report.json", figures["paths"], out_dir)
    return figures


def written_paths(figures: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """{format: path} of what was written (a format left out has none)."""
    from spaceport.export.tileset import TILESET_FILE
    from spaceport.export.writer import GLB_NAME, SPZ_NAME, TILES_DIR

    names = {"3dtiles": f"{TILES_DIR}/{TILESET_FILE}", "glb": GLB_NAME, "spz": SPZ_NAME}
    return {name: str(out_dir / names[name]) for name in names if "bytes" in figures.get(name, {})}


def _record_in_report(report: Path, paths: dict[str, str], out_dir: Path) -> None:
    """A run's ``report.json`` lists every output, these too (by their names in the run's folder)."""
    if not report.is_file():
        return
    payload = json.loads(report.read_text(encoding="utf-8"))
    payload.setdefault("outputs", {}).update({Path(path).relative_to(out_dir).as_posix(): path
                                              for path in paths.values()})  # fmt: skip
    write_json_atomic(report, payload)


def summary(figures: dict[str, Any]) -> list[str]:
    """What was written, one line each, the sky shell first."""
    from spaceport.export.sky_shell import SkyShell

    shell = figures["sky_shell"]
    kept = (
        " (kept in scene.glb and scene.spz)" if shell["in_glb_and_spz"] else " (left out)" if shell["gaussians"] else ""
    )
    lines = [SkyShell(shell["first"], shell["gaussians"], shell["source"]).describe() + kept]
    for name in FORMAT_CHOICES:
        entry = figures.get(name)
        if entry is None:
            continue
        if "skipped" in entry:
            lines.append(f"{name}: not written: {entry['skipped']}")
            continue
        detail = f", {entry['tiles']} tiles in {entry['levels']} levels" if name == "3dtiles" else ""
        lines.append(f"{figures['paths'][name]}: {entry['gaussians']} Gaussians, {entry['bytes']} bytes{detail}")
    return lines
