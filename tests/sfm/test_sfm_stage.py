"""The sfm stage on the sample scene: every photo registers where it really was, and failures say why."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spaceport.cli import main
from spaceport.contract import ProcessingLayout, verify_manifest

# Input names with a nested folder, a space, non-ASCII letters and upper-case extensions: the model must
# name each image by its path relative to the input folder.
SUBFOLDER = "vuelo 1/órbita"


def input_name(index: int) -> str:
    return f"{SUBFOLDER}/Frame {index:03d}.JPG" if index % 2 else f"frame_{index:03d}.jpg"


@pytest.fixture(scope="module")
def sfm_run(sample_scene, tmp_path_factory):
    """One run of ``spaceport sfm --ml-root ROOT`` on the sample scene, photos spread over nested folders."""
    root = tmp_path_factory.mktemp("ml")
    layout = ProcessingLayout(root)
    names = {}
    for index, photo in enumerate(sample_scene.image_paths):
        target = layout.input_dir("images") / input_name(index)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(photo, target)
        names[input_name(index)] = index
    code = main(["sfm", "--ml-root", str(root)])
    return layout, names, code


def model_centers(sparse_dir: Path) -> dict[str, np.ndarray]:
    import pycolmap

    model = pycolmap.Reconstruction(sparse_dir)
    return {image.name: image.projection_center() for image in model.images.values() if image.has_pose}


@pytest.mark.slow
def test_every_photo_registers_under_its_input_name(sfm_run) -> None:
    # GIVEN the stage ran through the CLI on the 32 sample photos
    layout, names, code = sfm_run

    # THEN it succeeded, left no failure reason, and registered every photo under its relative input path
    assert code == 0
    assert not layout.failure_file.exists()
    centers = model_centers(layout.output_dir / "sparse" / "0")
    assert set(centers) == set(names)
    # AND the images training will read sit beside the model under the same names
    for name in names:
        assert (layout.output_dir / "images" / name).is_file()


@pytest.mark.slow
def test_camera_centres_match_ground_truth_after_similarity_alignment(sfm_run, sample_scene) -> None:
    import pycolmap

    # GIVEN the reconstructed camera centres and the true ones, paired by photo
    layout, names, _ = sfm_run
    centers = model_centers(layout.output_dir / "sparse" / "0")
    ordered = sorted(names, key=names.get)
    estimated = np.array([centers[name] for name in ordered])
    truth = sample_scene.camera_centers()

    # WHEN the model is aligned to the truth with a similarity transform (SfM has no absolute scale)
    truth_from_model = pycolmap.estimate_sim3d(estimated, truth)
    aligned = np.array([truth_from_model * point for point in estimated])

    # THEN every camera lies within 0.5 % of the orbit's extent of where it really was
    extent = np.ptp(truth, axis=0).max()
    errors = np.linalg.norm(aligned - truth, axis=1)
    assert errors.max() < 0.005 * extent, f"max error {errors.max():.4f} for extent {extent:.2f}"


@pytest.mark.slow
def test_manifest_reports_the_reconstruction(sfm_run) -> None:
    # GIVEN the finished stage
    layout, names, _ = sfm_run

    # WHEN its manifest is verified against the files
    manifest = verify_manifest(layout.output_dir)

    # THEN it is intact and states what was reconstructed, with a pinhole camera for training
    assert manifest is not None
    assert manifest["stage"] == "sfm"
    assert manifest["registered_images"] == manifest["total_images"] == len(names)
    assert manifest["points"] > 500
    assert 0 < manifest["mean_reprojection_error_px"] < 1.5
    assert manifest["camera_model"] == "PINHOLE"
    assert manifest["matcher"] == "exhaustive"
    assert set(manifest["seconds"]) == {"validation", "intake", "extraction", "matching", "mapping", "georeferencing",
                                        "undistortion"}  # fmt: skip
    assert any(path.startswith("sparse/0/") for path in manifest["files"])


@pytest.mark.slow
def test_capture_without_gps_comes_out_upright(sfm_run, sample_scene) -> None:
    import json

    import pycolmap

    from .test_georef import model_tilt_deg

    # GIVEN the stage's output for the sample photos, which carry no GPS
    layout, names, _ = sfm_run
    georef = json.loads((layout.output_dir / "georef.json").read_text())
    model = pycolmap.Reconstruction(layout.output_dir / "sparse" / "0")

    # WHEN the ground truth's poses are named as the model names the photos (their input paths)
    truth = json.loads(sample_scene.ground_truth_file.read_text())
    truth["images"] = [{**truth["images"][index], "name": name} for name, index in names.items()]

    # THEN its z axis is within 3 degrees of the true vertical, and georef.json says the scale is arbitrary
    assert model_tilt_deg(model, truth) < 3.0
    assert georef["method"] == "upright" and not georef["georeferenced"] and not georef["metric"]
    assert "arbitrary" in georef["frame"]["units"] and georef["photos"]["with_gps"] == 0
    assert verify_manifest(layout.output_dir)["georef"]["method"] == "upright"


@pytest.mark.slow
def test_focal_length_starts_from_exif(sfm_run, sample_scene) -> None:
    import pycolmap

    # GIVEN the photos carry their 35 mm focal length in EXIF
    layout, _, _ = sfm_run

    # THEN the single estimated camera ends close to the true focal length
    cameras = pycolmap.Reconstruction(layout.output_dir / "sparse" / "0").cameras
    assert len(cameras) == 1
    camera = next(iter(cameras.values()))
    assert abs(camera.focal_length_x - sample_scene.focal_px) / sample_scene.focal_px < 0.02


def smooth_noise_photo(path: Path, seed: int, size: tuple[int, int]) -> None:
    """A blurry random picture: unrelated to the scene, and cheap for SIFT (few features)."""
    coarse = np.random.default_rng(seed).integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC).save(path, quality=90)


@pytest.mark.slow
def test_too_few_registered_photos_fail_with_the_reason(sample_scene, tmp_path: Path) -> None:
    # GIVEN 12 neighbouring scene photos mixed with 14 unrelated pictures
    layout = ProcessingLayout(tmp_path)
    photos = layout.input_dir("images")
    photos.mkdir(parents=True)
    for path in sample_scene.image_paths[:12]:
        shutil.copyfile(path, photos / path.name)
    for seed in range(14):
        smooth_noise_photo(photos / f"unrelated_{seed:02d}.jpg", seed, (sample_scene.width, sample_scene.height))

    # WHEN the stage runs
    code = main(["sfm", "--ml-root", str(tmp_path)])

    # THEN it fails, says how many photos registered and what is required, and leaves no manifest
    assert code != 0
    reason = layout.failure_file.read_text()
    assert reason.startswith("sfm: ")
    assert "of 26 images registered" in reason and "at least 50% required" in reason
    assert verify_manifest(layout.output_dir) is None


def test_too_few_photos_fail_before_any_reconstruction(tmp_path: Path) -> None:
    # GIVEN only two photos and one broken file
    photos = tmp_path / "photos"
    photos.mkdir()
    for seed in range(2):
        smooth_noise_photo(photos / f"p{seed}.jpg", seed, (64, 48))
    (photos / "broken.png").write_bytes(b"not a png")

    # WHEN the stage runs with explicit paths
    failure = tmp_path / "reason.txt"
    code = main(["sfm", "--images", str(photos), "--output", str(tmp_path / "out"), "--failure-file", str(failure)])

    # THEN the shared validator stops it at once, with a reason naming the count and the broken file
    reason = failure.read_text()
    assert code == 1
    assert "TOO_FEW_IMAGES" in reason and "UNREADABLE_IMAGE broken.png" in reason
