"""Shared fixtures. The network is blocked for every test (pytest-socket, see pyproject.toml); only
loopback is allowed, for the viewer's local server."""

from __future__ import annotations

import os

import pytest

# Heavy math on two cores: one thread per process keeps parallel test processes from thrashing
# and makes float reductions repeatable.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(scope="session")
def sample_scene(tmp_path_factory):
    """The default sample scene (32 photos, 320x240), rendered once per session: a ``SampleScene``."""
    from spaceport.scene.generator import render_sample_scene

    return render_sample_scene(tmp_path_factory.mktemp("sample_scene"))
