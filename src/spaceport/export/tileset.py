"""OGC 3D Tiles 1.1: ``tiles/tileset.json`` and one SPZ-compressed glTF per tile under ``tiles/content/``.

- The root ``transform`` takes the scene's east-north-up metres to ECEF at the origin (``placement``); every
  tile's content holds positions in those metres, turned to glTF's y-up (viewers turn y-up back to z-up before the
  transform), so float32 keeps sub-millimetre detail and only the transform holds ECEF's millions of metres.
- Bounding volumes are boxes in the same east-north-up metres, each holding its tile's Gaussians and all its
  descendants' out to three standard deviations.
- ``refine: REPLACE``, geometric errors in metres, 0 at the leaves (``spaceport.export.lod``).
- ``3DTILES_content_gltf`` declares the two glTF extensions the content needs (CesiumJS renders splat tiles only
  then), and 3D Tiles 1.1 metadata (``schema`` and ``metadata``, class ``scene``) says where the origin is and how
  its height was obtained.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from spaceport import __version__
from spaceport.export.frames import column_major, enu_to_gltf
from spaceport.export.lod import Tile
from spaceport.export.placement import Placement
from spaceport.export.splat_gltf import SPLATTING, SPZ_EXTENSION, read_splat_glb, spz_glb
from spaceport.gaussians import GaussianCloud
from spaceport.transform import transform_cloud

TILESET_FILE = "tileset.json"
CONTENT_DIR = "content"
CONTENT_GLTF = "3DTILES_content_gltf"
# A box never collapses to a plane: 3D Tiles readers divide by its half sizes.
MIN_HALF_SIZE_M = 1e-3
STRING_PROPERTIES = ("heightReference", "frame")


def box(low: np.ndarray, high: np.ndarray) -> list[float]:
    """A 3D Tiles ``box``: its centre, then its three half-axes as columns."""
    centre = (np.asarray(low) + np.asarray(high)) / 2.0
    half = np.maximum((np.asarray(high) - np.asarray(low)) / 2.0, MIN_HALF_SIZE_M)
    return [float(v) for v in [*centre, half[0], 0, 0, 0, half[1], 0, 0, 0, half[2]]]


def content_uri(tile: Tile) -> str:
    return f"{CONTENT_DIR}/{tile.name}.glb"


def _tile_json(tile: Tile) -> dict[str, Any]:
    node: dict[str, Any] = {
        "boundingVolume": {"box": box(tile.low, tile.high)},
        "geometricError": tile.geometric_error,
        "refine": "REPLACE",
        "content": {"uri": content_uri(tile)},
    }
    if tile.children:
        node["children"] = [_tile_json(child) for child in tile.children]
    return node


def _schema(properties: dict[str, Any]) -> dict[str, Any]:
    described = {
        name: {"type": "STRING"} if name in STRING_PROPERTIES else {"type": "SCALAR", "componentType": "FLOAT64"}
        for name in properties
    }
    return {"id": "spaceport", "classes": {"scene": {"name": "A spaceport scene", "properties": described}}}


def tileset_document(root: Tile, placement: Placement) -> dict[str, Any]:
    """``tileset.json``'s content for the tree under ``root``."""
    diagonal = float(np.linalg.norm(root.high - root.low))
    tree = _tile_json(root) | {"transform": column_major(placement.enu_to_ecef())}
    properties = placement.metadata()
    return {
        "asset": {"version": "1.1", "generator": f"spaceport {__version__}"},
        "extensionsUsed": [CONTENT_GLTF],
        "extensions": {
            CONTENT_GLTF: {
                "extensionsUsed": [SPLATTING, SPZ_EXTENSION],
                "extensionsRequired": [SPLATTING, SPZ_EXTENSION],
            }
        },  # fmt: skip
        "schema": _schema(properties),
        "metadata": {"class": "scene", "properties": properties},
        "geometricError": max(diagonal, 2.0 * root.geometric_error),
        "root": tree,
    }


def write_tileset(root: Tile, placement: Placement, folder: Path) -> dict[str, Any]:
    """Write ``folder/tileset.json`` and the tiles' content, replacing ``folder`` whole (a half-written tileset
    never carries its name); returns the figures: tiles, levels, Gaussians per level, bytes."""
    to_gltf = enu_to_gltf()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        (staging / CONTENT_DIR).mkdir()
        for tile in root.walk():
            (staging / content_uri(tile)).write_bytes(spz_glb(transform_cloud(tile.cloud, to_gltf)))
        document = tileset_document(root, placement)
        (staging / TILESET_FILE).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    per_level: dict[int, int] = {}
    for tile in root.walk():
        level = tile.name.count("_")
        per_level[level] = per_level.get(level, 0) + len(tile.cloud)
    return {
        "tiles": len(root.walk()),
        "levels": root.depth,
        "gaussians_per_level": [per_level[level] for level in sorted(per_level)],
        "root_gaussians": len(root.cloud),
        "bytes": sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()),
    }


def read_tileset(folder: Path) -> tuple[dict[str, Any], list[tuple[dict[str, Any], GaussianCloud]]]:
    """``tileset.json`` and every tile with its Gaussians, back in the scene's east-north-up frame (parents first).

    Raises:
        ValueError: a tile's content is not a splat GLB.
    """
    document = json.loads((folder / TILESET_FILE).read_text(encoding="utf-8"))
    to_scene = enu_to_gltf().inverse()
    tiles, pending = [], [document["root"]]
    while pending:
        node = pending.pop(0)
        cloud = read_splat_glb((folder / node["content"]["uri"]).read_bytes())
        tiles.append((node, transform_cloud(cloud, to_scene)))
        pending.extend(node.get("children", []))
    return document, tiles
