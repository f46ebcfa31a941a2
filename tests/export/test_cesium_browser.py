"""The tileset on the globe in CesiumJS 1.145, offline, in headless Chromium: the coarse level first, then the
markers where an east-north-up camera must see them, and the view our own renderer gives from the same pose.

Needs Debian's chromium and ``make setup`` (npm ``cesium``); a missing one fails, never skips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmarks.globe_browser import CESIUM_BUILD, CHROMIUM, EnuCamera, view_globe
from benchmarks.globe_compare import image_ssim, marker_centroid, render_reference

from spaceport.cli import main
from spaceport.gaussians import read_ply, write_ply
from spaceport.scene.markers import MARKER_COLOURS, MARKER_OFFSETS, marked_scene

from .scenes import ORIGIN, gps_georef, with_sky_shell

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

WIDTH, HEIGHT = 480, 360
MARKER_TOLERANCE_PX = 2.0
MIN_SSIM = 0.85
FAR = EnuCamera(position=(-120.0, -200.0, 160.0), target=(0.0, 0.0, 0.0))
OBLIQUE = EnuCamera(position=(-18.0, -30.0, 22.0), target=(3.0, 3.0, 2.0))
ABOVE = EnuCamera(position=(2.0, -6.0, 26.0), target=(2.0, 2.0, -1.5))
# Fetched by the page at the end: the harness must refuse it (no request leaves 127.0.0.1 unseen).
OUTSIDE = "https://tile.openstreetmap.org/0/0/0.png"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GPS run of the marked scene with its sky shell, exported with levels (at most 2,500 Gaussians a tile)."""
    folder = tmp_path_factory.mktemp("run")
    cloud, description = with_sky_shell(marked_scene())
    write_ply(cloud, folder / "scene.ply")
    (folder / "georef.json").write_text(json.dumps(gps_georef()))
    (folder / "report.json").write_text(json.dumps({"train": {"sky_shell": description}, "outputs": {}}))
    assert main(["export", str(folder), "--format", "3dtiles", "--tile-limit", "2500"]) == 0
    return folder


@pytest.fixture(scope="module")
def session(run_dir: Path):
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    assert (CESIUM_BUILD / "Cesium.js").is_file(), "npm cesium is missing: run `make setup`"
    origin = {"latitude": ORIGIN["latitude"], "longitude": ORIGIN["longitude"], "height": ORIGIN["altitude_m"]}
    return view_globe(run_dir / "tiles", origin, [FAR, OBLIQUE, ABOVE], WIDTH, HEIGHT, errors=[16.0, 1.0, 1.0],
                      outside_urls=(OUTSIDE,))  # fmt: skip


def test_cesium_loads_offline_and_draws_the_coarse_level_first(session) -> None:
    # GIVEN the tileset served from 127.0.0.1 beside CesiumJS's build, every other host refused
    # WHEN CesiumJS opens it from far away
    far = session.frames[0]
    # THEN nothing but the page's own probe of another host was requested off 127.0.0.1, and that was refused
    assert session.refused == [OUTSIDE]
    assert all(url.startswith("http://127.0.0.1:") for url in session.requests if url != OUTSIDE)
    assert session.console_errors == []
    # AND the root tile loaded first and alone drew the first frame
    assert far.state["loaded"][0]["uri"] == "0.glb" and far.state["firstFrameTiles"] == ["0.glb"]
    assert far.state["visible"] == ["0.glb"]
    # AND closer, the viewer replaced the root by its children
    assert "0.glb" not in session.frames[1].state["visible"] and len(session.frames[1].state["visible"]) == 4


@pytest.mark.parametrize("view", [1, 2], ids=["oblique", "above"])
def test_markers_land_where_the_east_north_up_camera_sees_them(session, view: int) -> None:
    # GIVEN red, green and blue balls 10 m east, north and up of the georef origin
    camera = [FAR, OBLIQUE, ABOVE][view]
    image = session.frames[view].image
    # WHEN CesiumJS shows them through the tileset's root transform, the camera set through its own ENU frame
    expected = camera.project(np.array(list(MARKER_OFFSETS.values())), WIDTH, HEIGHT)
    # THEN every leaf is drawn (all the scene's Gaussians, the sky shell left out), the root no longer
    assert session.frames[view].state["splats"] == len(marked_scene())
    # AND each ball's centre is within 2 px of where a pinhole camera with that pose projects it
    for (name, colour), where in zip(MARKER_COLOURS.items(), expected, strict=True):
        found, pixels = marker_centroid(image, colour)
        assert found is not None and pixels > 20, f"the {name} marker is not on screen"
        assert np.linalg.norm(found - where) <= MARKER_TOLERANCE_PX, (name, found, where)


@pytest.mark.parametrize("view", [1, 2], ids=["oblique", "above"])
def test_cesium_shows_what_our_renderer_shows_without_the_sky(session, run_dir: Path, view: int) -> None:
    # GIVEN our own render of the PLY, its sky shell left out, from the same pose
    report = json.loads((run_dir / "report.json").read_text())
    scene = read_ply(run_dir / "scene.ply")
    scene = scene.subset(np.arange(report["train"]["sky_shell"]["first"]))
    camera = [FAR, OBLIQUE, ABOVE][view]
    reference = render_reference(scene, camera, WIDTH, HEIGHT)
    # WHEN it is compared with CesiumJS's view
    score = image_ssim(session.frames[view].image, reference)
    # THEN they agree (SSIM at least 0.85)
    assert score >= MIN_SSIM, score
