"""SPZ (format version 2): our reader and splat-transform's both get the PLY's Gaussians back within SPZ's
quantisation; the header and layout are the format's."""

from __future__ import annotations

import gzip
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from spaceport.export import spz
from spaceport.gaussians import GaussianCloud, read_ply

from .scenes import random_cloud

REPO = Path(__file__).resolve().parents[2]
SPLAT_TRANSFORM = REPO / "node_modules" / ".bin" / "splat-transform"

# SPZ's steps (spz.py): positions 2^-12 m, colours 1 / (0.15 * 255), log-scales 1/16, SH 8/128 (degree 1) and
# 16/128 (degrees 2, 3), opacity 1/255 after the sigmoid; a value is off by at most half a step.
POSITION_ERROR = 0.5 / 4096 + 1e-6
COLOUR_ERROR = 0.5 / (0.15 * 255) + 1e-6
LOG_SCALE_ERROR = 0.5 / 16 + 1e-6
SH1_ERROR, SH_REST_ERROR = 4 / 128 + 0.5 / 128 + 1e-6, 8 / 128 + 0.5 / 128 + 1e-6
OPACITY_ERROR = 0.5 / 255 + 1e-6
# Version 2 stores x, y, z of the unit quaternion (w made non-negative) in steps of 1/127.5 and implies w: the
# components are within half a step; near a half turn (w near 0) that moves the rotation by several degrees, which
# is the format's (version 3 stores the smallest three components instead; CesiumJS's extension is version 2).
ROTATION_COMPONENT_ERROR = 0.5 / 127.5 + 1e-6


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values.astype(np.float64)))


def assert_within_spz_quantisation(decoded: GaussianCloud, source: GaussianCloud) -> None:
    """Every attribute of ``decoded`` is ``source``'s within half an SPZ step (rotations: x, y, z with w >= 0)."""
    assert len(decoded) == len(source) and decoded.sh_degree == source.sh_degree
    assert np.abs(decoded.means - source.means).max() <= POSITION_ERROR
    assert np.abs(decoded.sh0 - source.sh0).max() <= COLOUR_ERROR
    assert np.abs(decoded.log_scales - source.log_scales).max() <= LOG_SCALE_ERROR
    assert np.abs(_sigmoid(decoded.opacities) - _sigmoid(source.opacities)).max() <= OPACITY_ERROR
    if source.sh_degree:
        assert np.abs(decoded.shN[:, :3] - source.shN[:, :3]).max() <= SH1_ERROR
        assert np.abs(decoded.shN[:, 3:] - source.shN[:, 3:]).max(initial=0.0) <= SH_REST_ERROR
    unit = source.quats / np.linalg.norm(source.quats, axis=1, keepdims=True)
    unit *= np.where(unit[:, :1] < 0, -1.0, 1.0)
    assert np.abs(decoded.quats[:, 1:] - unit[:, 1:]).max() <= ROTATION_COMPONENT_ERROR


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_spz_round_trip_is_within_quantisation(degree: int) -> None:
    # GIVEN Gaussians of every SH degree, every attribute random within SPZ's ranges
    cloud = random_cloud(3000, degree=degree, seed=degree)
    # WHEN they are written as SPZ and read back
    decoded = spz.decode(spz.encode(cloud))
    # THEN each attribute is back within half a quantisation step
    assert_within_spz_quantisation(decoded, cloud)


def test_spz_is_a_version_2_gzip_stream_and_the_same_bytes_every_time() -> None:
    # GIVEN a cloud of SH degree 2
    cloud = random_cloud(100, degree=2)
    # WHEN it is encoded twice
    first, second = spz.encode(cloud), spz.encode(cloud)
    raw = gzip.decompress(first)
    # THEN the header is NGSP, version 2, the count, the degree, 12 fractional bits, no flags; the body holds
    # positions (9 bytes), opacity (1), colour (3), scales (3), rotation (3) and 24 SH bytes per point
    assert struct.unpack_from("<IIIBBBB", raw) == (0x5053474E, 2, 100, 2, 12, 0, 0)
    assert len(raw) == 16 + 100 * (9 + 1 + 3 + 3 + 3 + 8 * 3)
    assert first == second


def test_positions_far_out_trade_fractional_bits_and_beyond_reach_fail() -> None:
    # GIVEN a scene reaching 3 km from its origin, and one reaching 10,000 km
    wide = random_cloud(50, degree=0, spread=3000.0)
    # WHEN they are encoded
    header, _ = spz.read_header(spz.encode(wide))
    # THEN the wide one keeps 11 fractional bits (half a millimetre) and decodes to its positions
    assert header.fractional_bits == 11
    assert np.abs(spz.decode(spz.encode(wide)).means - wide.means).max() <= 0.5 / 2048 + 1e-4
    with pytest.raises(ValueError, match="SPZ positions reach"):
        spz.encode(random_cloud(5, degree=0, spread=1e7))


def test_reader_refuses_what_is_not_spz_version_2() -> None:
    # GIVEN a gzip stream of something else, and an SPZ claiming version 3
    other = gzip.compress(b"not a splat at all, just some text")
    version_3 = bytearray(gzip.decompress(spz.encode(random_cloud(3, degree=0))))
    version_3[4] = 3
    # WHEN they are read THEN each is refused with the reason
    with pytest.raises(ValueError, match="not SPZ"):
        spz.decode(other)
    with pytest.raises(ValueError, match="version 3"):
        spz.decode(gzip.compress(bytes(version_3)))


def test_splat_transform_reads_our_spz_as_the_ply_it_came_from(tmp_path: Path) -> None:
    # GIVEN a degree-3 cloud written as SPZ by us
    assert SPLAT_TRANSFORM.exists(), f"{SPLAT_TRANSFORM} is missing: run `make setup` (npm ci) first"
    cloud = random_cloud(2000, degree=3, seed=7)
    (tmp_path / "scene.spz").write_bytes(spz.encode(cloud))
    # WHEN splat-transform (an independent reader) turns it into a PLY
    result = subprocess.run([str(SPLAT_TRANSFORM), "-q", "-w", str(tmp_path / "scene.spz"), str(tmp_path / "out.ply")],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    # THEN its Gaussians are the cloud's within SPZ's quantisation, in the same frame and order
    assert_within_spz_quantisation(read_ply(tmp_path / "out.ply"), cloud)
