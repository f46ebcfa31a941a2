"""The three stage images: lint-clean, pinned to the platform SageMaker runs, each with its thin entry point."""

from __future__ import annotations

import re
import subprocess
import tomllib
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


def default_base(dockerfile: str) -> str:
    """The image a plain ``docker build`` starts from: FROM with ``${BASE_IMAGE}`` at its ARG's default."""
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, flags=re.MULTILINE)
    base = re.search(r"^FROM\s+--platform=\S+\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert default and base, "every stage Dockerfile takes ARG BASE_IMAGE with a default, and one FROM"
    return base.group(1).replace("${BASE_IMAGE}", default.group(1))


@pytest.mark.parametrize("stage", STAGES)
def test_image_is_pinned_to_amd64_and_starts_the_stage(stage: str) -> None:
    # GIVEN the stage's Dockerfile
    dockerfile = (REPO / "containers" / stage / "Dockerfile").read_text()

    # THEN every base image is pinned to linux/amd64, by default a public image at a fixed tag that a local
    # stand-in can replace (ARG BASE_IMAGE), and the entry point is the stage's own
    bases = re.findall(r"^FROM\s+(.+)$", dockerfile, flags=re.MULTILINE)
    assert bases == ["--platform=linux/amd64 ${BASE_IMAGE}"]
    base = default_base(dockerfile)
    assert ":" in base and ":latest" not in base and not base.startswith("spaceport-local/")
    assert f"containers/{stage}/entrypoint.py" in dockerfile
    assert "ENTRYPOINT" in dockerfile
    entrypoint = (REPO / "containers" / stage / "entrypoint.py").read_text()
    assert "from spaceport." in entrypoint and len(entrypoint.splitlines()) < 30


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    logical, current = [], ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            if current.strip():
                keyword, _, arguments = current.strip().partition(" ")
                logical.append((keyword.upper(), " ".join(arguments.split())))
            current = ""
    return logical


def pinned_torch() -> str:
    stages = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["stages"]
    return next(requirement.split("==")[1] for requirement in stages if requirement.startswith("torch=="))


TRAIN_DOCKERFILE = REPO / "containers" / "train" / "Dockerfile"


def test_train_image_compiles_gsplat_from_its_sdist_against_the_images_torch() -> None:
    # GIVEN the train image's instructions
    steps = instructions(TRAIN_DOCKERFILE)

    # WHEN the RUN that installs gsplat is found
    install = next(arguments for keyword, arguments in steps if keyword == "RUN" and '"gsplat==' in arguments)

    # THEN it builds the sdist (PyPI's wheel has no kernels) against the image's torch, with ninja present,
    # for every GPU family SageMaker offers us
    assert "--no-binary gsplat" in install and "--no-build-isolation" in install and "ninja" in install
    arch_list = re.search(r'TORCH_CUDA_ARCH_LIST="([^"]+)"', TRAIN_DOCKERFILE.read_text())
    assert arch_list is not None
    assert {"7.5", "8.0", "8.6", "8.9", "9.0"} <= set(arch_list.group(1).split(";"))


def test_train_image_build_fails_unless_the_compiled_kernels_are_in_place() -> None:
    # GIVEN the train image's instructions
    steps = instructions(TRAIN_DOCKERFILE)

    # THEN after gsplat's install, the build copies in and runs the check that fails on PyPI's kernel-less wheel
    runs = [arguments for keyword, arguments in steps if keyword == "RUN"]
    install = next(index for index, arguments in enumerate(runs) if '"gsplat==' in arguments)
    assert any("verify_gsplat.py" in arguments for arguments in runs[install + 1 :])
    assert ("COPY", "containers/train/verify_gsplat.py /opt/spaceport/verify_gsplat.py") in steps
    assert (REPO / "containers" / "train" / "verify_gsplat.py").is_file()


def test_train_image_runs_the_torch_that_pyproject_pins() -> None:
    # GIVEN the torch version the tests run (pyproject.toml's `stages` extra) and the train image's instructions
    torch_version = pinned_torch()
    steps = instructions(TRAIN_DOCKERFILE)

    # THEN the base image is PyTorch's CUDA devel image of that version (nvcc compiles gsplat), the build checks
    # that version, and pip may not swap it for another
    base = default_base(TRAIN_DOCKERFILE.read_text())
    assert re.fullmatch(rf"pytorch/pytorch:{re.escape(torch_version)}-cuda\d+\.\d+-cudnn\d+-devel", base), base
    assert ("ARG", f"TORCH_VERSION={torch_version}") in steps
    runs = " ".join(arguments for keyword, arguments in steps if keyword == "RUN")
    assert '--torch-version "${TORCH_VERSION}"' in runs
    assert 'grep -q "\\"torch==${TORCH_VERSION}\\"" pyproject.toml' in runs
    installs = [command for command in runs.split("&&") if "pip install" in command and "--no-deps" not in command]
    resolving = [command for command in installs if "ninja" not in command]  # the build tools' line aside
    assert len(resolving) == 2 and all('"torch==${TORCH_VERSION}"' in command for command in resolving)
