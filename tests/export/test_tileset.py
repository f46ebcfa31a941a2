"""tileset.json: on the globe where georef.json says (checked with pyproj), heights said plainly, every tile's
content read back into the scene within SPZ's quantisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyproj
import pytest

from spaceport.export.frames import enu_to_gltf
from spaceport.export.lod import build_tiles
from spaceport.export.placement import NotOnEarthError, Placement
from spaceport.export.splat_gltf import read_splat_glb
from spaceport.export.tileset import read_tileset, write_tileset
from spaceport.gaussians import concatenate
from spaceport.scene.markers import marked_scene
from spaceport.transform import transform_cloud

from .scenes import ORIGIN, gps_georef, random_cloud, upright_georef
from .test_spz import assert_within_spz_quantisation

ECEF_TO_LLA = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True)


def _box_centre_to_geodetic(document: dict, box: list[float]) -> tuple[float, float, float]:
    transform = np.array(document["root"]["transform"]).reshape(4, 4).T  # column-major
    ecef = transform @ np.array([*box[:3], 1.0])
    lon, lat, height = ECEF_TO_LLA.transform(*ecef[:3])
    return lat, lon, height


def test_root_transform_puts_the_scene_where_georef_says(tmp_path: Path) -> None:
    # GIVEN the marked scene (its ground centred on the origin) registered at Lausanne
    scene = marked_scene()
    placement = Placement.from_georef(gps_georef())
    # WHEN it is written as a tileset
    write_tileset(build_tiles(scene), placement, tmp_path / "tiles")
    document, _ = read_tileset(tmp_path / "tiles")
    box = document["root"]["boundingVolume"]["box"]
    # THEN the box centre goes through the root transform to the point pyproj's own topocentric frame at the origin
    # gives it (within 1 cm), and the origin itself to the georef's latitude, longitude and altitude
    topocentric = pyproj.Transformer.from_pipeline(gps_georef()["frame"]["proj_pipeline"])
    lon, lat, height = topocentric.transform(*box[:3], direction="INVERSE")
    got = _box_centre_to_geodetic(document, box)
    metres_per_degree = 111_320.0
    assert abs(got[0] - lat) * metres_per_degree < 0.01 and abs(got[1] - lon) * metres_per_degree < 0.01
    assert abs(got[2] - height) < 0.01
    origin = _box_centre_to_geodetic(document, [0.0, 0.0, 0.0])
    assert abs(origin[0] - ORIGIN["latitude"]) * metres_per_degree < 0.01
    assert abs(origin[1] - ORIGIN["longitude"]) * metres_per_degree < 0.01
    assert abs(origin[2] - ORIGIN["altitude_m"]) < 0.01


def test_tileset_declares_its_content_and_says_what_its_heights_are(tmp_path: Path) -> None:
    # GIVEN a scene without a geoid undulation, and the same with N = 52.3 m given
    scene = marked_scene()
    for undulation in (None, 52.3):
        # WHEN each is written
        folder = tmp_path / f"tiles-{undulation}"
        write_tileset(build_tiles(scene), Placement.from_georef(gps_georef(), undulation), folder)
        document, _ = read_tileset(folder)
        metadata = document["metadata"]["properties"]
        # THEN 3D Tiles 1.1 declares both glTF extensions as CesiumJS requires, the root refines by replacement,
        # and the metadata says the origin's height above the ellipsoid and from what it came
        assert document["asset"]["version"] == "1.1" and document["extensionsUsed"] == ["3DTILES_content_gltf"]
        required = document["extensions"]["3DTILES_content_gltf"]["extensionsRequired"]
        assert required == ["KHR_gaussian_splatting", "KHR_gaussian_splatting_compression_spz_2"]
        assert document["root"]["refine"] == "REPLACE"
        assert set(metadata) <= set(document["schema"]["classes"]["scene"]["properties"])
        assert metadata["originAltitudeAboveMeanSeaLevel"] == 413.0
        if undulation is None:
            assert metadata["originEllipsoidalHeight"] == 413.0
            assert "no geoid model" in metadata["heightReference"] and "mean sea level" in metadata["heightReference"]
        else:
            assert metadata["originEllipsoidalHeight"] == pytest.approx(465.3)
            assert "plus the geoid undulation given" in metadata["heightReference"]
            transform = np.array(document["root"]["transform"]).reshape(4, 4).T
            assert ECEF_TO_LLA.transform(*transform[:3, 3])[2] == pytest.approx(465.3, abs=0.01)


def test_every_tile_reads_back_into_the_scene(tmp_path: Path) -> None:
    # GIVEN a 30,000-Gaussian scene tiled with levels (at most 4,000 per tile), its SH small enough that turning
    # it y-up keeps every coefficient inside SPZ's range
    scene = random_cloud(30_000, degree=3, spread=60.0, seed=8)
    scene.shN *= 0.3
    root = build_tiles(scene, limit=4000)
    # WHEN the tileset is written and read back
    figures = write_tileset(root, Placement.from_georef(gps_georef()), tmp_path / "tiles")
    document, tiles = read_tileset(tmp_path / "tiles")
    # THEN there is one content file per tile; each holds its tile's Gaussians, turned y-up, within SPZ's
    # quantisation; and the leaves (geometric error 0) hold the scene
    assert figures["tiles"] == len(tiles) == len(root.walk()) and figures["levels"] == root.depth
    for tile in root.walk():
        content = read_splat_glb((tmp_path / "tiles" / "content" / f"{tile.name}.glb").read_bytes())
        assert_within_spz_quantisation(content, transform_cloud(tile.cloud, enu_to_gltf()))
    leaves = concatenate([cloud for node, cloud in tiles if node["geometricError"] == 0])
    assert len(leaves) == len(scene)
    assert np.abs(np.sort(leaves.means, axis=0) - np.sort(scene.means, axis=0)).max() < 1e-3
    assert document["geometricError"] > document["root"]["geometricError"] > 0


def test_a_scene_without_gps_has_no_place_on_the_globe() -> None:
    # GIVEN an upright scene's georef and none at all
    # WHEN a placement is asked for THEN it is refused, naming the frame
    with pytest.raises(NotOnEarthError, match="frame: upright"):
        Placement.from_georef(upright_georef())
    with pytest.raises(NotOnEarthError, match="no georef.json"):
        Placement.from_georef(None)
