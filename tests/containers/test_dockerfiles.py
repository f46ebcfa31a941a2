"""The three stage images: lint-clean, pinned to the platform SageMaker runs, each with its thin entry point."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HADOLINT = REPO / ".tools" / "bin" / "hadolint"
STAGES = ("sfm", "train", "compress")


@pytest.mark.parametrize("stage", STAGES)
def test_dockerfile_is_hadolint_clean(stage: str) -> None:
    # GIVEN the stage's Dockerfile and hadolint from `make setup-tools`
    assert HADOLINT.is_file(), "hadolint is missing: run `make setup-tools`"

    # WHEN it is linted
    result = subprocess.run([HADOLINT, str(REPO / "containers" / stage / "Dockerfile")], capture_output=True, text=True)

    # THEN there is nothing to report
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("stage", STAGES)
def test_image_is_pinned_to_amd64_and_starts_the_stage(stage: str) -> None:
    # GIVEN the stage's Dockerfile
    dockerfile = (REPO / "containers" / stage / "Dockerfile").read_text()

    # THEN every base image is pinned to linux/amd64 at a fixed tag, and the entry point is the stage's own
    bases = re.findall(r"^FROM\s+(.+)$", dockerfile, flags=re.MULTILINE)
    assert bases and all(base.startswith("--platform=linux/amd64 ") for base in bases)
    assert all(":" in base.split()[1] and ":latest" not in base for base in bases)
    assert f"containers/{stage}/entrypoint.py" in dockerfile
    assert "ENTRYPOINT" in dockerfile
    entrypoint = (REPO / "containers" / stage / "entrypoint.py").read_text()
    assert "from spaceport." in entrypoint and len(entrypoint.splitlines()) < 30
