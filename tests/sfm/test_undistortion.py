"""Which models the sfm stage undistorts before training: training reads PINHOLE and SIMPLE_PINHOLE only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pycolmap = pytest.importorskip("pycolmap")

from spaceport.sfm.stage import needs_undistortion  # noqa: E402


def model_with(name: str, params: list[float]) -> SimpleNamespace:
    """A reconstruction's cameras, as the mapper leaves them: one camera of this model."""
    camera = pycolmap.Camera(model=name, width=320, height=240, params=params)
    return SimpleNamespace(cameras={1: camera})


def test_a_distortion_model_whose_terms_are_zero_is_undistorted_too():
    # GIVEN a SIMPLE_RADIAL camera whose k the global mapper left at exactly 0 (the local stack met this: training
    # then refused "camera 1 ... uses the SIMPLE_RADIAL model")
    radial_without_k = model_with("SIMPLE_RADIAL", [300.0, 160.0, 120.0, 0.0])
    # WHEN the stage decides whether to undistort THEN it does, which writes PINHOLE
    assert needs_undistortion(radial_without_k)


def test_distortion_is_undistorted_and_a_pinhole_model_kept():
    # GIVEN a camera that distorts, and pinhole cameras
    # WHEN the stage decides THEN only the distorting one is undistorted
    assert needs_undistortion(model_with("SIMPLE_RADIAL", [300.0, 160.0, 120.0, 0.02]))
    assert not needs_undistortion(model_with("PINHOLE", [300.0, 301.0, 160.0, 120.0]))
    assert not needs_undistortion(model_with("SIMPLE_PINHOLE", [300.0, 160.0, 120.0]))
