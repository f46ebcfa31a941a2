"""``spaceport run`` on the sample scene: outputs, report, resume, corruption, failure."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pycolmap
import pytest
from PIL import Image

from spaceport.cli import main
from spaceport.compress.decode import read_sog
from spaceport.export import spz
from spaceport.export.splat_gltf import read_splat_glb
from spaceport.gaussians import read_ply

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(sample_scene, tmp_path_factory) -> tuple[Path, Path, int]:
    """One fast run of the whole pipeline, shared by the tests that only read its outputs."""
    out = tmp_path_factory.mktemp("run")
    exit_code = main(["run", str(sample_scene.images_dir), "--out", str(out), "--preset", "fast", "--device", "cpu"])
    return sample_scene.images_dir, out, exit_code


def test_run_makes_every_output_and_reports_its_figures(finished_run) -> None:
    # GIVEN the sample scene's photos, run once with the fast preset
    images_dir, out, exit_code = finished_run

    # THEN the run succeeded and left every deliverable
    assert exit_code == 0
    for name in ("scene.ply", "scene.sog", "index.html", "preview.png", "report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "succeeded" and report["failed_stage"] is None
    photos = sorted(p for p in images_dir.rglob("*") if p.is_file())
    assert report["sfm"]["registered_images"] == report["sfm"]["total_images"] == len(photos)
    assert report["sfm"]["points"] > 500
    assert report["train"]["psnr_test"] > report["train"]["psnr_initial"] + 3
    assert len(report["train"]["test_views"]) == len(range(0, len(photos), 8))
    assert report["compress"]["sog_bytes"] < report["compress"]["ply_bytes"] / 4
    assert set(report["stages"]) == {"validate", "sfm", "train", "compress"}
    assert all(stage["seconds"] > 0 for stage in report["stages"].values())


def test_run_outputs_are_readable_by_other_tools(finished_run) -> None:
    # GIVEN a finished run
    images_dir, out, _ = finished_run

    # WHEN its outputs are read back
    cloud = read_ply(out / "scene.ply")
    decoded = read_sog(out / "scene.sog")
    model = pycolmap.Reconstruction(str(out / "sfm" / "sparse" / "0"))

    # THEN the PLY and the SOG hold the same Gaussians, and the model names the input photos by relative path
    assert len(cloud) == len(decoded) > 1000
    names = {image.name for image in model.images.values()}
    assert names == {p.relative_to(images_dir).as_posix() for p in images_dir.rglob("*.jpg")}
    preview = np.asarray(Image.open(out / "preview.png"))
    assert preview.shape[1] > 2 * preview.shape[0] * 0.9 and preview.std() > 10


def test_run_delivers_the_scene_upright_and_says_so(finished_run) -> None:
    # GIVEN the sample scene's photos (no GPS), run once
    _, out, _ = finished_run

    # THEN georef.json says the scene is upright with an arbitrary scale, and report.json carries it
    georef = json.loads((out / "georef.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert georef["method"] == "upright" and not georef["metric"]
    assert report["georef"] == georef and report["outputs"]["georef.json"] == str(out / "georef.json")
    # AND the published model is level: its photos' x axes are horizontal, as they were taken
    model = pycolmap.Reconstruction(str(out / "sfm" / "sparse" / "0"))
    rights = np.array([image.cam_from_world().rotation.matrix()[0] for image in model.images.values()])
    assert np.degrees(np.arcsin(np.abs(rights[:, 2]).max())) < 3.0
    # AND the viewer starts above the scene, orbiting about +z, without a scale bar (the scale is arbitrary)
    page = (out / "index.html").read_text()
    config = json.loads(page.split('id="spaceport-config">')[1].split("</script>")[0])
    assert config["camera"]["up"] == [0.0, 0.0, 1.0]
    assert config["camera"]["position"][2] > config["camera"]["target"][2]
    assert config["frame"]["up"] == [0.0, 0.0, 1.0] and not config["frame"]["georeferenced"]
    # AND without GPS the run exports the splat as glTF and SPZ, the sky shell left out, but puts no tileset on Earth
    shell = report["train"]["sky_shell"]
    kept = shell["first"] if shell else len(read_ply(out / "scene.ply"))
    assert len(read_splat_glb((out / "scene.glb").read_bytes())) == kept
    assert len(spz.decode((out / "scene.spz").read_bytes())) == kept
    assert not (out / "tiles").exists() and {"scene.glb", "scene.spz"} <= set(report["outputs"])


def test_second_run_reuses_finished_stages(finished_run) -> None:
    # GIVEN a finished run
    images_dir, out, _ = finished_run
    sog_before = (out / "scene.sog").read_bytes()

    # WHEN the same command runs again
    exit_code = main(["run", str(images_dir), "--out", str(out), "--preset", "fast", "--device", "cpu"])

    # THEN no container stage runs again and the outputs are unchanged
    report = json.loads((out / "report.json").read_text())
    assert exit_code == 0
    assert all(report["stages"][stage]["skipped"] for stage in ("sfm", "train", "compress"))
    assert (out / "scene.sog").read_bytes() == sog_before


def test_corrupted_stage_output_is_detected_and_rerun(finished_run) -> None:
    # GIVEN a finished run whose compressed output was damaged afterwards
    images_dir, out, _ = finished_run
    damaged = out / "work" / "compress" / "processing" / "output" / "scene.sog"
    damaged.write_bytes(damaged.read_bytes()[:100])

    # WHEN the run is repeated
    exit_code = main(["run", str(images_dir), "--out", str(out), "--preset", "fast", "--device", "cpu"])

    # THEN only the damaged stage ran again, and its output is whole
    report = json.loads((out / "report.json").read_text())
    assert exit_code == 0
    assert report["stages"]["train"]["skipped"] and not report["stages"]["compress"]["skipped"]
    assert len(read_sog(out / "scene.sog")) > 1000


def test_from_stage_reruns_that_stage_and_later_ones(finished_run) -> None:
    # GIVEN a finished run
    images_dir, out, _ = finished_run

    # WHEN asked to rerun from compress
    exit_code = main(["run", str(images_dir), "--out", str(out), "--preset", "fast", "--from-stage", "compress"])

    # THEN sfm and train are reused and compress runs
    report = json.loads((out / "report.json").read_text())
    assert exit_code == 0
    assert report["stages"]["sfm"]["skipped"] and report["stages"]["train"]["skipped"]
    assert not report["stages"]["compress"]["skipped"]


def test_a_zip_of_photos_runs_like_its_folder(sample_scene, tmp_path: Path) -> None:
    # GIVEN the sample photos as a zip whose photos sit in a nested folder
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for photo in sorted(sample_scene.images_dir.glob("*.jpg")):
            bundle.write(photo, f"orbit/{photo.name}")

    # WHEN only the validate and sfm stages are exercised (train would take minutes)
    from spaceport.local.pipeline import RunLayout, RunOptions, prepare_images

    layout = RunLayout(tmp_path / "out")
    figures = prepare_images(RunOptions(archive, layout.out_dir), layout)

    # THEN every photo is ready for sfm under its path inside the archive
    staged = sorted(p.relative_to(layout.sfm.input_dir("images")).as_posix()
                    for p in layout.sfm.input_dir("images").rglob("*.jpg"))  # fmt: skip
    assert figures["images"] == len(staged) == len(list(sample_scene.images_dir.glob("*.jpg")))
    assert all(name.startswith("orbit/") for name in staged)


def test_rejected_input_fails_with_its_reason_and_a_report(tmp_path: Path, capsys) -> None:
    # GIVEN a folder with two photos only
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(2):
        noise = np.random.default_rng(index).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        Image.fromarray(noise).save(photos / f"p{index}.jpg")
    out = tmp_path / "out"

    # WHEN it is run
    exit_code = main(["run", str(photos), "--out", str(out), "--preset", "fast"])

    # THEN it fails at validate, says why and where the log is, and the report says the same
    assert exit_code == 1
    error = capsys.readouterr().err
    assert "validate failed" in error and "TOO_FEW_IMAGES" in error and "log:" in error
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "failed" and report["failed_stage"] == "validate"
    assert "TOO_FEW_IMAGES" in report["reason"]


def test_failed_container_stage_leaves_its_reason(sample_scene, tmp_path: Path, capsys) -> None:
    # GIVEN photos that validate but cannot be reconstructed: the same few views shuffled with noise
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(6):
        noise = np.random.default_rng(index).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        Image.fromarray(noise).save(photos / f"noise_{index}.jpg")
    shutil.copy(sorted(sample_scene.images_dir.glob("*.jpg"))[0], photos / "one_real_photo.jpg")

    # WHEN it is run
    exit_code = main(["run", str(photos), "--out", str(tmp_path / "out"), "--preset", "fast"])

    # THEN sfm is named as the failed stage, with a reason and its log file
    assert exit_code == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["failed_stage"] == "sfm" and report["reason"]
    assert Path(report["log_file"]).is_file()
    assert "sfm failed" in capsys.readouterr().err
