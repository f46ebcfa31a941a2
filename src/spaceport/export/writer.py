"""What an export writes beside ``scene.sog``: ``scene.glb``, ``scene.spz`` and, on the globe, ``tiles/``.

- ``tiles/``: OGC 3D Tiles 1.1 with SPZ-compressed ``KHR_gaussian_splatting`` content and levels of detail, for
  a scene georeferenced by GPS only (an upright or unregistered scene has no place on Earth).
- ``scene.glb``: the splat as plain ``KHR_gaussian_splatting`` glTF (float32: the PLY's numbers, in glTF's y-up
  axes), for glTF readers (PlayCanvas, Babylon.js, three.js, CesiumJS's model loader).
- ``scene.spz``: the splat as SPZ (format version 2) in the PLY's own frame, as splat-transform reads it.

None of them carries the sky shell by default: the globe draws its own sky, and glTF and SPZ are for putting the
scene into other scenes and viewers, which frame a model by its bounds: a shell ten times the scene's size would
leave it a speck inside a ball of sky. ``scene.ply`` and ``scene.sog`` keep the shell for viewers that show the
splat alone. ``keep_sky_shell`` puts it back into ``scene.glb`` and ``scene.spz`` (never into the tiles).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spaceport.export import spz
from spaceport.export.frames import enu_to_gltf
from spaceport.export.lod import TILE_LIMIT, build_tiles
from spaceport.export.placement import NotOnEarthError, Placement
from spaceport.export.sky_shell import SkyShell, scene_without_shell
from spaceport.export.splat_gltf import plain_glb
from spaceport.export.tileset import write_tileset
from spaceport.gaussians import GaussianCloud
from spaceport.transform import transform_cloud

logger = logging.getLogger("spaceport.export")

FORMATS = ("3dtiles", "glb", "spz")
GLB_NAME, SPZ_NAME, TILES_DIR = "scene.glb", "scene.spz", "tiles"


@dataclass(frozen=True)
class ExportOptions:
    """What to write and how.

    Attributes:
        formats: any of ``FORMATS``.
        keep_sky_shell: keep the sky shell in ``scene.glb`` and ``scene.spz``.
        geoid_undulation_m: N at the origin (ellipsoidal height = altitude above mean sea level + N), if known.
        tile_limit: the most Gaussians a tile holds (``spaceport.export.lod.TILE_LIMIT``).
        require_globe: a scene without GPS is an error for ``3dtiles`` (the command), not a tileset left out (a
            run, which writes what the scene allows).
    """

    formats: tuple[str, ...] = FORMATS
    keep_sky_shell: bool = False
    geoid_undulation_m: float | None = None
    tile_limit: int = TILE_LIMIT
    require_globe: bool = False


def _write_atomic(path: Path, data: bytes) -> int:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.replace(path)
    return len(data)


def _finite(cloud: GaussianCloud) -> GaussianCloud:
    from spaceport.compress.stage import drop_non_finite

    return drop_non_finite(cloud)[0]


def _glb_extras(georef: dict[str, Any] | None, with_shell: bool) -> dict[str, Any]:
    """What ``scene.glb`` says about itself in ``asset.extras``: its frame and whether the sky shell is in it."""
    frame = (georef or {}).get("frame", {}).get("axes", "as the PLY's")
    extras: dict[str, Any] = {"spaceport": {
        "frame": f"the PLY's frame ({frame}) turned y-up: glTF x = x, y = z, z = -y",
        "sky_shell_included": with_shell,
    }}  # fmt: skip
    origin = (georef or {}).get("origin")
    if (georef or {}).get("method") == "gps" and origin:
        extras["spaceport"]["origin"] = origin
    return extras


def export_scene(cloud: GaussianCloud, shell: SkyShell, georef: dict[str, Any] | None, out_dir: Path,
                 options: ExportOptions) -> dict[str, Any]:  # fmt: skip
    """Write the chosen formats of ``cloud`` (a trained PLY's Gaussians, sky shell and all) into ``out_dir``.

    Args:
        cloud: the Gaussians as ``scene.ply`` holds them (non-finite ones are left out here).
        shell: where its sky shell starts (``spaceport.export.sky_shell.find_shell``).
        georef: ``georef.json``'s content (None: none).
        out_dir: where ``scene.glb``, ``scene.spz`` and ``tiles/`` go.
        options: formats and choices.

    Returns:
        Figures per format (bytes, Gaussians, seconds; the tileset's tiles and levels, or why it was left out).

    Raises:
        NotOnEarthError: ``3dtiles`` with ``require_globe`` for a scene without GPS.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    scene = _finite(scene_without_shell(cloud, shell))
    shared = _finite(cloud) if options.keep_sky_shell and shell.gaussians else scene
    figures: dict[str, Any] = {"sky_shell": shell.to_json() | {"in_glb_and_spz": shared is not scene}}
    if "3dtiles" in options.formats:
        started = time.monotonic()
        try:
            placement = Placement.from_georef(georef, options.geoid_undulation_m)
        except NotOnEarthError as error:
            if options.require_globe:
                raise
            figures["3dtiles"] = {"skipped": str(error)}
        else:
            tiles = write_tileset(build_tiles(scene, options.tile_limit), placement, out_dir / TILES_DIR)
            figures["3dtiles"] = tiles | {"gaussians": len(scene), "seconds": round(time.monotonic() - started, 3)}
    if "glb" in options.formats:
        started = time.monotonic()
        data = plain_glb(transform_cloud(shared, enu_to_gltf()), _glb_extras(georef, shared is not scene))
        figures["glb"] = {"bytes": _write_atomic(out_dir / GLB_NAME, data), "gaussians": len(shared),
                          "seconds": round(time.monotonic() - started, 3)}  # fmt: skip
    if "spz" in options.formats:
        started = time.monotonic()
        figures["spz"] = {"bytes": _write_atomic(out_dir / SPZ_NAME, spz.encode(shared)), "gaussians": len(shared),
                          "seconds": round(time.monotonic() - started, 3)}  # fmt: skip
    logger.info("exported %s", {name: value for name, value in figures.items() if name != "sky_shell"})
    return figures
