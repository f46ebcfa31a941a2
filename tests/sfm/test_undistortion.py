"""The cameras the sfm stage writes: training reads PINHOLE and SIMPLE_PINHOLE only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pycolmap = pytest.importorskip("pycolmap")

from spaceport.sfm.stage import pinhole_when_undistorted  # noqa: E402


def model_with(name: str, params: list[float]) -> SimpleNamespace:
    """A reconstruction's cameras, as the mapper leaves them: one camera of this model."""
    camera = pycolmap.Camera(model=name, width=320, height=240, params=params)
    return SimpleNamespace(cameras={1: camera})


def written(model: SimpleNamespace) -> tuple[str, list[float]]:
    camera = model.cameras[1]
    return camera.model.name, [float(value) for value in camera.params]


def test_a_distortion_model_whose_terms_are_zero_becomes_the_pinhole_camera_it_is():
    # GIVEN a SIMPLE_RADIAL camera whose k the global mapper left at exactly 0 (the local stack met it: training then
    # refused "camera 1 ... uses the SIMPLE_RADIAL model", COLMAP's undistorter having copied it as it was), and an
    # OPENCV camera with two focal lengths and no distortion
    radial = model_with("SIMPLE_RADIAL", [300.0, 160.0, 120.0, 0.0])
    opencv = model_with("OPENCV", [300.0, 310.0, 160.0, 120.0, 0.0, 0.0, 0.0, 0.0])
    # WHEN the stage prepares them for writing
    pinhole_when_undistorted(radial)
    pinhole_when_undistorted(opencv)
    # THEN each is the pinhole model of the same intrinsics
    assert written(radial) == ("SIMPLE_PINHOLE", [300.0, 160.0, 120.0])
    assert written(opencv) == ("PINHOLE", [300.0, 310.0, 160.0, 120.0])


def test_a_camera_that_distorts_is_left_for_the_undistorter():
    # GIVEN a camera whose k is not 0 WHEN prepared THEN it keeps its model (undistortion turns it into PINHOLE)
    radial = model_with("SIMPLE_RADIAL", [300.0, 160.0, 120.0, 0.02])
    pinhole_when_undistorted(radial)
    assert written(radial)[0] == "SIMPLE_RADIAL"
