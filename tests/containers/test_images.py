"""The sfm and compress images that `make images` built, run the way SageMaker runs a Processing job.

``/opt/ml`` is an empty folder of the host; each input is mounted read-only at its ``LocalPath``; the output folder
and ``/opt/ml/output`` do not exist yet; the container has no network. A success must leave the outputs and a
manifest that verifies, a failure a non-zero exit and its reason in ``/opt/ml/output/message`` (SageMaker's
ExitMessage). Each image must also reproduce the local run: the registered count on the sample scene, the bytes
of the SOG for the same PLY.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest

from spaceport.cli import main
from spaceport.compress.evaluate import synthetic_cloud
from spaceport.contract import ProcessingLayout, verify_manifest
from spaceport.gaussians import write_ply
from spaceport.scene.markers import marked_scene

from ..export.scenes import gps_georef
from .engine import PLATFORM, docker, image_platform, require_engine, require_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SFM_IMAGE = "spaceport-sfm:local"
COMPRESS_IMAGE = "spaceport-compress:local"
PROCESSING = "/opt/ml/processing"


@pytest.fixture(autouse=True, scope="session")
def engine() -> None:
    """Before any fixture renders a scene or runs a local stage: is there an engine at all?"""
    require_engine()


def run_processing_job(image: str, ml_root: Path, inputs: dict[str, Path], timeout: float = 600):
    """``docker run`` the image as SageMaker starts a Processing job: no arguments, inputs read-only, no network."""
    require_image(image)
    ml_root.mkdir(parents=True, exist_ok=True)
    mounts = ["-v", f"{ml_root}:/opt/ml"]
    for name, host_path in inputs.items():
        mounts += ["-v", f"{host_path}:{PROCESSING}/input/{name}:ro"]
    return docker(
        "run", "--rm", "--platform", PLATFORM, "--network", "none", "-e", "SPACEPORT_JOB_ID=job-0001",
        *mounts, image, timeout=timeout,
    )  # fmt: skip


@pytest.mark.parametrize("image", [SFM_IMAGE, COMPRESS_IMAGE])
def test_image_is_built_for_sagemakers_platform(image: str) -> None:
    # GIVEN an image from `make images` WHEN inspected THEN it is linux/amd64, what SageMaker instances run
    require_image(image)
    assert image_platform(image) == PLATFORM


# ---------------------------------------------------------------- sfm


@pytest.fixture(scope="module")
def local_sfm(sample_scene, tmp_path_factory) -> dict:
    """The local run's sfm stage (``spaceport sfm``, in this process) on the sample scene: its manifest."""
    root = tmp_path_factory.mktemp("local-sfm")
    shutil.copytree(sample_scene.images_dir, ProcessingLayout(root).input_dir("images"))
    assert main(["sfm", "--ml-root", str(root)]) == 0
    return json.loads((ProcessingLayout(root).output_dir / "manifest.json").read_text())


def test_sfm_image_reconstructs_the_sample_scene_like_the_local_run(sample_scene, local_sfm, tmp_path: Path) -> None:
    # GIVEN the sample scene's photos as the job's `images` input, and nothing else under /opt/ml
    ml_root = tmp_path / "ml"

    # WHEN the sfm image runs as a Processing job
    result = run_processing_job(SFM_IMAGE, ml_root, {"images": sample_scene.images_dir})

    # THEN it succeeds without a failure reason, the output verifies, and it registered what the local run did
    layout = ProcessingLayout(ml_root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not layout.failure_file.exists()
    manifest = verify_manifest(layout.output_dir)
    assert manifest is not None, "the output's manifest.json is missing or does not match the files"
    assert (layout.output_dir / "sparse" / "0" / "images.bin").is_file()
    photos = sorted(path.name for path in sample_scene.images_dir.iterdir())
    assert sorted(path.name for path in (layout.output_dir / "images").iterdir()) == photos
    assert manifest["registered_images"] == local_sfm["registered_images"] == len(photos)
    # AND the read-only input was left as it was
    assert sorted(path.name for path in sample_scene.images_dir.iterdir()) == photos


def test_sfm_image_without_photos_fails_with_its_reason(tmp_path: Path) -> None:
    # GIVEN an empty `images` input
    (tmp_path / "empty").mkdir()
    ml_root = tmp_path / "ml"

    # WHEN the sfm image runs
    result = run_processing_job(SFM_IMAGE, ml_root, {"images": tmp_path / "empty"})

    # THEN it exits non-zero, the reason is where SageMaker reads ExitMessage, and no manifest claims an output
    layout = ProcessingLayout(ml_root)
    assert result.returncode != 0
    assert layout.failure_file.read_text().startswith("sfm: ")
    assert not (layout.output_dir / "manifest.json").exists()


# ---------------------------------------------------------------- compress


@pytest.fixture(scope="module")
def scene_ply(tmp_path_factory) -> Path:
    """A synthetic scene with degree-3 SH, so the SOG holds the k-means palette too."""
    path = tmp_path_factory.mktemp("ply") / "scene.ply"
    write_ply(synthetic_cloud(3000, 3, seed=11), path)
    return path


def model_tar_gz(ply: Path, target: Path) -> Path:
    """What a training job uploads: /opt/ml/model (scene.ply and its manifest) as model.tar.gz."""
    target.mkdir(parents=True)
    with tarfile.open(target / "model.tar.gz", "w:gz") as archive:
        archive.add(ply, arcname="scene.ply")
        manifest = json.dumps({"stage": "train"}).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest))
    return target


def test_compress_image_writes_the_local_runs_sog_bytes(scene_ply: Path, tmp_path: Path) -> None:
    # GIVEN the training output as SageMaker hands it over (model.tar.gz) and the local run's SOG of the same PLY
    local_root = tmp_path / "local"
    (local_root / "processing" / "input" / "model").mkdir(parents=True)
    shutil.copyfile(scene_ply, local_root / "processing" / "input" / "model" / "scene.ply")
    assert main(["compress", "--stage", "--ml-root", str(local_root)]) == 0
    ml_root = tmp_path / "ml"

    # WHEN the compress image runs as a Processing job
    result = run_processing_job(COMPRESS_IMAGE, ml_root, {"model": model_tar_gz(scene_ply, tmp_path / "model")})

    # THEN it succeeds, its output verifies, and the SOG is byte for byte the local one
    output = ProcessingLayout(ml_root).output_dir
    assert result.returncode == 0, result.stderr[-3000:]
    assert not ProcessingLayout(ml_root).failure_file.exists()
    manifest = verify_manifest(output)
    assert manifest is not None, "the output's manifest.json is missing or does not match the files"
    local_output = ProcessingLayout(local_root).output_dir
    assert (output / "scene.sog").read_bytes() == (local_output / "scene.sog").read_bytes()
    assert manifest["files"] == json.loads((local_output / "manifest.json").read_text())["files"]


def test_compress_image_on_the_globe_writes_the_local_runs_exports(tmp_path: Path) -> None:
    # GIVEN a scene registered by GPS, its two channels as SageMaker mounts them (the trained PLY, sfm's
    # georef.json), and the local stage's output of the same
    channels = {"model": tmp_path / "model", "georef": tmp_path / "georef"}
    for folder in channels.values():
        folder.mkdir()
    write_ply(marked_scene(), channels["model"] / "scene.ply")
    (channels["georef"] / "georef.json").write_text(json.dumps(gps_georef()))
    local_root = tmp_path / "local"
    for name, folder in channels.items():
        shutil.copytree(folder, local_root / "processing" / "input" / name)
    assert main(["compress", "--stage", "--ml-root", str(local_root)]) == 0
    ml_root = tmp_path / "ml"

    # WHEN the compress image runs as a Processing job with both channels
    result = run_processing_job(COMPRESS_IMAGE, ml_root, channels)

    # THEN it succeeds (everything the exports import is in the image), its output verifies, and the GLB, the SPZ
    # and every file of the tileset are the local run's, byte for byte
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = verify_manifest(ProcessingLayout(ml_root).output_dir)
    assert manifest is not None, "the output's manifest.json is missing or does not match the files"
    local_manifest = json.loads((ProcessingLayout(local_root).output_dir / "manifest.json").read_text())
    exports = {name for name in local_manifest["files"] if name.startswith("tiles/") or name.startswith("scene.")}
    assert {"scene.sog", "scene.glb", "scene.spz", "tiles/tileset.json", "tiles/content/0.glb"} <= exports
    assert {name: manifest["files"].get(name) for name in exports} == {
        name: local_manifest["files"][name] for name in exports
    }
    assert manifest["exports"]["3dtiles"]["gaussians"] == len(marked_scene())


def test_compress_image_with_a_corrupt_ply_fails_with_its_reason(scene_ply: Path, tmp_path: Path) -> None:
    # GIVEN a scene.ply cut off in the middle of its data
    model = tmp_path / "model"
    model.mkdir()
    data = scene_ply.read_bytes()
    (model / "scene.ply").write_bytes(data[: len(data) // 2])
    ml_root = tmp_path / "ml"

    # WHEN the compress image runs
    result = run_processing_job(COMPRESS_IMAGE, ml_root, {"model": model})

    # THEN it exits non-zero with the reason where SageMaker reads it, and no manifest
    assert result.returncode != 0
    assert ProcessingLayout(ml_root).failure_file.read_text().startswith("compress: scene.ply is truncated")
    assert not (ProcessingLayout(ml_root).output_dir / "manifest.json").exists()
