"""Fixtures for the compress tests: synthetic clouds, their SOG, and splat-transform as the reference decoder."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from spaceport.compress.evaluate import synthetic_cloud
from spaceport.compress.sog import SogConfig, SogEncoding, encode_files, encode_sog, write_bundle
from spaceport.gaussians import GaussianCloud, read_ply

REPO = Path(__file__).resolve().parents[2]
SPLAT_TRANSFORM = REPO / "node_modules" / ".bin" / "splat-transform"


def splat_transform_decode(source: Path, target: Path) -> GaussianCloud:
    """Decode ``source`` (.sog or meta.json) to a PLY with splat-transform and read it back."""
    # Fail, never skip: without the reference decoder these tests would prove nothing.
    assert SPLAT_TRANSFORM.exists(), f"{SPLAT_TRANSFORM} is missing: run `make setup` (npm ci) first"
    result = subprocess.run(
        [str(SPLAT_TRANSFORM), "-q", "-g", "cpu", "-w", str(source), str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"splat-transform failed: {result.stderr}"
    return read_ply(target)


class Encoded:
    """A cloud, its encoding and the written bundle."""

    def __init__(self, cloud: GaussianCloud, encoding: SogEncoding, files: dict[str, bytes], bundle: Path) -> None:
        self.cloud, self.encoding, self.files, self.bundle = cloud, encoding, files, bundle

    @property
    def reordered(self) -> GaussianCloud:
        """The input in texel order, to compare with a decode."""
        return self.cloud.subset(self.encoding.order)


def encode_to(cloud: GaussianCloud, path: Path, config: SogConfig | None = None) -> Encoded:
    encoding = encode_sog(cloud, config)
    files = encode_files(encoding, config)
    write_bundle(files, path)
    return Encoded(cloud, encoding, files, path)


@pytest.fixture(name="encode_to")
def encode_to_fixture() -> Callable[..., Encoded]:
    return encode_to


@pytest.fixture(name="splat_transform_decode")
def splat_transform_decode_fixture() -> Callable[[Path, Path], GaussianCloud]:
    return splat_transform_decode


@pytest.fixture(scope="session")
def sh3_encoded(tmp_path_factory: pytest.TempPathFactory) -> Encoded:
    return encode_to(synthetic_cloud(3000, 3, seed=1), tmp_path_factory.mktemp("sh3") / "scene.sog")


@pytest.fixture(scope="session")
def sh3_splat_transform(sh3_encoded: Encoded, tmp_path_factory: pytest.TempPathFactory) -> GaussianCloud:
    return splat_transform_decode(sh3_encoded.bundle, tmp_path_factory.mktemp("sh3-decoded") / "decoded.ply")
