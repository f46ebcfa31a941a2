"""Fixtures for the validator's tests."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``tempfile`` at a folder of our own, so a test can prove the validator cleaned up after itself."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


@pytest.fixture(autouse=True)
def no_limits_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own SPACEPORT_* settings must not change the verdicts under test."""
    for name in list(os.environ):
        if name.startswith("SPACEPORT_") and name != "SPACEPORT_LOG_LEVEL":
            monkeypatch.delenv(name)
