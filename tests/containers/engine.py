"""The Docker engine and the images `make images` builds, for the tests that run containers (marker ``docker``).

Without an engine or an image these tests cannot prove anything. In CI (``SPACEPORT_REQUIRE_DOCKER=1``, set by
``.ci/run``) that is a failure; elsewhere the test is skipped with what to run to get them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import NoReturn

import pytest

REQUIRE_DOCKER = "SPACEPORT_REQUIRE_DOCKER"
HOW_TO_GET_DOCKER = (
    "no Docker engine reachable. As root, `make docker-engine` installs Debian's docker.io and starts dockerd "
    "(or start your own engine), then `make images sam-build` builds what these tests run"
)
PLATFORM = "linux/amd64"


def unavailable(reason: str) -> NoReturn:
    """Fail in CI, where these tests must run; skip elsewhere, saying how to run them."""
    if os.environ.get(REQUIRE_DOCKER) == "1":
        pytest.fail(f"{reason} ({REQUIRE_DOCKER}=1: Docker tests may not be skipped)", pytrace=False)
    pytest.skip(reason)


def docker(*args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess:
    """Run the docker CLI; with ``check``, a non-zero exit fails the test with docker's own words."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"docker {' '.join(args[:3])} ... exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def require_engine() -> None:
    if shutil.which("docker") is None:
        unavailable(f"the docker command is missing; {HOW_TO_GET_DOCKER}")
    if docker("info", "--format", "{{.ServerVersion}}", timeout=30).returncode != 0:
        unavailable(HOW_TO_GET_DOCKER)


def require_image(name: str) -> None:
    require_engine()
    if docker("image", "inspect", name, timeout=30).returncode != 0:
        unavailable(f"image {name} is missing: run `make images`")


def image_platform(name: str) -> str:
    return docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", name, check=True).stdout.strip()
