"""Fixtures for the train stage: a synthetic COLMAP model built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from .synthetic import SyntheticSpec, make_synthetic_sfm


@pytest.fixture(scope="session")
def synthetic_spec() -> SyntheticSpec:
    return SyntheticSpec()


@pytest.fixture(scope="session")
def synthetic_sfm(tmp_path_factory: pytest.TempPathFactory, synthetic_spec: SyntheticSpec) -> Path:
    """``sparse/0`` + ``images/`` of 16 views of 300 known Gaussians at 64x48 (read-only: copy to modify)."""
    return make_synthetic_sfm(tmp_path_factory.mktemp("synthetic") / "sfm", synthetic_spec)
