"""``spaceport georef DIR`` and the transforms it applies: a finished run carried into the georeferenced frame
renders the same images from the correspondingly moved cameras, its SOG still reads, and the run's options reach
the sfm stage (``--no-georef``)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from spaceport.cli import main
from spaceport.compress.evaluate import psnr, synthetic_cloud
from spaceport.export.tileset import read_tileset
from spaceport.gaussians import GaussianCloud, concatenate, read_ply, write_ply
from spaceport.transform import Similarity, rotation_between, sh_band_rotations, transform_cloud

from ..sfm.test_georef import random_similarity, truth_in_georef_frame

SPLAT_TRANSFORM = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "splat-transform"

WIDTH, HEIGHT, FOCAL = 96, 72, 80.0
BACKGROUND = (0.2, 0.3, 0.4)
# A tilted turn, a scale and an offset: nothing that a symmetric scene or an identity could hide.
SIMILARITY = Similarity(2.5, rotation_between(np.array([0.3, -0.5, 0.8]), np.array([0.0, 0.2, 1.0])) @
                        rotation_between(np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.4])),
                        np.array([30.0, -12.0, 5.0]))  # fmt: skip


def splat_transform_decode(source: Path, target: Path) -> GaussianCloud:
    """``source`` decoded by splat-transform (the reference reader) to a PLY, read back."""
    import subprocess

    # Fail, never skip: without the reference decoder the test would prove nothing.
    assert SPLAT_TRANSFORM.exists(), f"{SPLAT_TRANSFORM} is missing: run `make setup` (npm ci) first"
    result = subprocess.run([str(SPLAT_TRANSFORM), "-q", "-g", "cpu", "-w", str(source), str(target)],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, f"splat-transform failed: {result.stderr}"
    return read_ply(target)


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) world-to-camera of an OpenCV camera at ``eye`` looking at ``target``, world y up."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    rotation = np.stack([right, np.cross(forward, right), forward])
    viewmat = np.eye(4)
    viewmat[:3, :3], viewmat[:3, 3] = rotation, -rotation @ eye
    return viewmat


def moved_viewmat(viewmat: np.ndarray, similarity: Similarity) -> np.ndarray:
    """The same camera in the frame ``similarity`` maps to: its centre moved, its axes turned, depth scaled."""
    rotation = viewmat[:3, :3] @ similarity.rotation.T
    centre = similarity.apply(-viewmat[:3, :3].T @ viewmat[:3, 3])
    moved = np.eye(4)
    moved[:3, :3], moved[:3, 3] = rotation, -rotation @ centre
    return moved


def render_ply(ply: Path, viewmat: np.ndarray) -> np.ndarray:
    """The PLY rendered by the training rasteriser (SH evaluated from the camera centre) as (H, W, 3) floats."""
    import torch

    from spaceport.local.views import render_cloud_view

    as_tensor = lambda array: torch.as_tensor(np.asarray(array), dtype=torch.float32)  # noqa: E731
    view = SimpleNamespace(viewmat=as_tensor(viewmat), K=as_tensor([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2],
                           [0, 0, 1]]), width=WIDTH, height=HEIGHT,
                           camera_center=as_tensor(-viewmat[:3, :3].T @ viewmat[:3, 3]))  # fmt: skip
    return render_cloud_view(ply, view, BACKGROUND).astype(np.float64) / 255.0


def orbit_viewmats(count: int = 3) -> list[np.ndarray]:
    target = np.array([0.3, -0.2, 1.5])
    angles = np.linspace(0.3, 2 * np.pi + 0.3, count, endpoint=False)
    return [look_at(target + [7 * math.cos(a), 2.0, 7 * math.sin(a)], target) for a in angles]


def test_sh_band_rotations_are_orthogonal_and_keep_every_colour() -> None:
    import torch

    from spaceport.train.model import sh_colors

    # GIVEN Gaussians with SH up to degree 3 and a camera
    cloud = synthetic_cloud(400, 3, seed=3)
    camera = np.array([5.0, 3.0, -2.0])

    # WHEN the Gaussians are carried into another frame
    moved = transform_cloud(cloud, SIMILARITY)

    def colours(gaussians: GaussianCloud, centre: np.ndarray) -> np.ndarray:
        params = {"means": torch.from_numpy(gaussians.means.astype(np.float64)),
                  "sh0": torch.from_numpy(gaussians.sh0.astype(np.float64))[:, None, :],
                  "shN": torch.from_numpy(gaussians.shN.astype(np.float64))}  # fmt: skip
        return sh_colors(params, 3, torch.tensor(centre)).numpy()

    # THEN each band's rotation is orthogonal (the basis is orthonormal) and the moved camera sees every
    # Gaussian in the colour the original camera saw, to float32 precision
    for matrix in sh_band_rotations(SIMILARITY.rotation, 3):
        assert np.allclose(matrix @ matrix.T, np.eye(len(matrix)), atol=1e-9)
    assert np.abs(colours(moved, SIMILARITY.apply(camera)) - colours(cloud, camera)).max() < 1e-5


def test_a_transformed_ply_renders_the_same_images_from_moved_cameras(tmp_path: Path) -> None:
    # GIVEN a scene-like PLY with view-dependent colour (SH degree 3), and the same carried into another frame
    original = synthetic_cloud(3000, 3, seed=1)
    write_ply(original, tmp_path / "original.ply")
    write_ply(transform_cloud(read_ply(tmp_path / "original.ply"), SIMILARITY), tmp_path / "moved.ply")
    # AND, to show the SH matter, the same move with the SH coefficients left as they were
    unrotated_sh = read_ply(tmp_path / "moved.ply")
    unrotated_sh.shN = original.shN
    write_ply(unrotated_sh, tmp_path / "unrotated_sh.ply")

    for viewmat in orbit_viewmats():
        # WHEN each is rendered from a camera and from that camera moved the same way
        reference = render_ply(tmp_path / "original.ply", viewmat)
        moved = render_ply(tmp_path / "moved.ply", moved_viewmat(viewmat, SIMILARITY))
        without_sh = render_ply(tmp_path / "unrotated_sh.ply", moved_viewmat(viewmat, SIMILARITY))

        # THEN the moved PLY renders the same image (PSNR at least 45 dB), and only with its SH rotated too
        assert reference.std() > 0.05  # the scene is in view
        assert psnr(reference, moved) >= 45.0
        assert psnr(reference, without_sh) < psnr(reference, moved) - 10


def fake_run(out: Path, sfm_from_world: Similarity) -> dict:
    """A finished run's folder for the drone capture, left in an arbitrary SfM frame (no georef.json).

    The photos are tiny renders (only their EXIF GPS is read); the model holds the true cameras and ground
    points, and the splat is a synthetic cloud around the scene, all moved into that frame.
    """
    import pycolmap

    from spaceport.compress.sog import encode_files, encode_sog, write_bundle
    from spaceport.scene.generator import render_sample_scene
    from spaceport.scene.layouts import SceneConfig

    scene = render_sample_scene(out / "capture", SceneConfig(layout="drone", width=32, height=24, supersampling=1))
    shutil.copytree(scene.images_dir, out / "work" / "sfm" / "processing" / "input" / "images")
    model = pycolmap.Reconstruction()
    model.add_camera_with_trivial_rig(pycolmap.Camera.create_from_model_name(1, "PINHOLE", 30.0, 32, 24))
    for image_id, pose in enumerate(scene.poses, start=1):
        rotation = np.asarray(pose.rotation) @ sfm_from_world.rotation.T
        centre = sfm_from_world.apply(np.asarray(pose.center))
        cam_from_world = pycolmap.Rigid3d(pycolmap.Rotation3d(rotation), -rotation @ centre)
        model.add_image_with_trivial_frame(pycolmap.Image(name=pose.name, camera_id=1, image_id=image_id),
                                           cam_from_world)  # fmt: skip
    ground = np.random.default_rng(0).uniform([-3, -3, 0], [3, 3, 1], (200, 3))
    for point in sfm_from_world.apply(ground):
        model.add_point3D(point, pycolmap.Track(), np.array([128, 128, 128], dtype=np.uint8))
    (out / "sfm" / "sparse" / "0").mkdir(parents=True)
    model.write(out / "sfm" / "sparse" / "0")
    world_cloud = synthetic_cloud(2000, 3, seed=4)
    cloud = transform_cloud(world_cloud, sfm_from_world)
    write_ply(cloud, out / "scene.ply")
    write_bundle(encode_files(encode_sog(cloud)), out / "scene.sog")
    (out / "report.json").write_text(json.dumps({"status": "succeeded", "outputs": {}}))
    return {"truth": json.loads(scene.ground_truth_file.read_text()), "world_cloud": world_cloud}


def world_to_georef(points: np.ndarray, truth: dict, origin: dict) -> np.ndarray:
    """World points of the drone capture in georef.json's frame, through the capture's true place on Earth."""
    from spaceport.scene.gps import GPS_SURVEY, enu_to_geodetic

    survey_origin = (truth["gps"]["origin"]["latitude"], truth["gps"]["origin"]["longitude"],
                     truth["gps"]["origin"]["altitude_m"])  # fmt: skip
    return truth_in_georef_frame(enu_to_geodetic(GPS_SURVEY.world_to_enu(points), survey_origin), origin)


@pytest.fixture(scope="module")
def registered_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, int]:
    out = tmp_path_factory.mktemp("run")
    made = fake_run(out, random_similarity(11))
    return out, made, main(["georef", str(out)])


def test_georef_command_puts_a_finished_run_on_earth(registered_run: tuple[Path, dict, int]) -> None:
    import pycolmap

    # GIVEN a finished run of the drone capture in SfM's frame, re-registered by `spaceport georef DIR`
    out, made, exit_code = registered_run
    truth = made["truth"]

    # THEN it succeeded and wrote georef.json with the wrong fix named
    assert exit_code == 0
    georef = json.loads((out / "georef.json").read_text())
    assert georef["method"] == "gps"
    assert [item["name"] for item in georef["photos"]["rejected"]] == [truth["gps"]["wrong_fix"]]
    # AND sfm/sparse/0 holds the cameras where they really were, within 1 % of the orbit's extent
    model = pycolmap.Reconstruction(out / "sfm" / "sparse" / "0")
    centres = {image.name: image.projection_center() for image in model.images.values()}
    expected = world_to_georef(np.array([item["center"] for item in truth["images"]]), truth, georef["origin"])
    errors = np.linalg.norm(np.array([centres[item["name"]] for item in truth["images"]]) - expected, axis=1)
    assert errors.max() < 0.01 * np.ptp(expected, axis=0).max()
    # AND scene.ply's Gaussians moved with them: each where its world position lies on Earth
    cloud = read_ply(out / "scene.ply")
    expected_means = world_to_georef(made["world_cloud"].means.astype(np.float64), truth, georef["origin"])
    assert np.abs(cloud.means - expected_means).max() < 0.01 * np.ptp(expected, axis=0).max()
    # AND the report and the viewer page know the frame: z up, a scale bar and a north arrow
    assert json.loads((out / "report.json").read_text())["georef"]["method"] == "gps"
    page = (out / "index.html").read_text()
    config = json.loads(page.split('id="spaceport-config">')[1].split("</script>")[0])
    assert config["frame"]["georeferenced"] and config["camera"]["up"] == [0.0, 0.0, 1.0]
    # AND the scene is exported on the globe, its tileset's Gaussians where scene.ply now has them
    _, tiles = read_tileset(out / "tiles")
    leaves = concatenate([tile for meta, tile in tiles if meta["geometricError"] == 0])
    assert len(leaves) == len(cloud) and (out / "scene.glb").is_file() and (out / "scene.spz").is_file()
    np.testing.assert_allclose(np.sort(leaves.means, axis=0), np.sort(cloud.means, axis=0), atol=1e-3)


def test_splat_transform_still_reads_the_georeferenced_sog(
    registered_run: tuple[Path, dict, int], tmp_path: Path
) -> None:
    # GIVEN the re-encoded scene.sog of a re-registered run
    out, _, _ = registered_run
    ply = read_ply(out / "scene.ply")

    # WHEN splat-transform decodes it
    decoded = splat_transform_decode(out / "scene.sog", tmp_path / "decoded.ply")

    # THEN it holds every Gaussian, where the PLY has it (SOG reorders them and log-encodes positions in 16 bits)
    assert len(decoded) == len(ply)
    for axis in range(3):
        assert np.abs(np.sort(decoded.means[:, axis]) - np.sort(ply.means[:, axis])).max() < 0.05


def test_georef_again_changes_almost_nothing(registered_run: tuple[Path, dict, int]) -> None:
    # GIVEN a run already registered
    out, _, _ = registered_run
    first = json.loads((out / "georef.json").read_text())
    means = read_ply(out / "scene.ply").means

    # WHEN it is registered again
    assert main(["georef", str(out)]) == 0

    # THEN the Gaussians hardly move, and georef.json still measures its transform from SfM's frame
    second = json.loads((out / "georef.json").read_text())
    assert np.abs(read_ply(out / "scene.ply").means - means).max() < 1e-3
    assert second["origin"] == first["origin"]
    assert Similarity.from_json(second["transform"]).scale == pytest.approx(first["transform"]["scale"], rel=1e-6)


def test_georef_command_says_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # WHEN pointed at a folder that holds no run
    exit_code = main(["georef", str(tmp_path)])

    # THEN it fails cleanly and says what to pass
    assert exit_code == 2
    assert "scene.ply is missing" in capsys.readouterr().err


def test_no_georef_reaches_the_sfm_stage_and_its_fingerprint(tmp_path: Path) -> None:
    from spaceport.local.pipeline import RunLayout, RunOptions, stage_arguments, stage_fingerprint

    # GIVEN a run's layout with photos in place, and the same run asked for with and without georeferencing
    layout = RunLayout(tmp_path / "out")
    photos = layout.sfm.input_dir("images")
    photos.mkdir(parents=True)
    (photos / "a.jpg").write_bytes(b"photo")
    default = RunOptions(tmp_path, layout.out_dir)
    kept = RunOptions(tmp_path, layout.out_dir, georef=False)

    # THEN only --no-georef passes the flag to the sfm stage, and the two cannot reuse each other's sfm output
    assert "--no-georef" in stage_arguments("sfm", kept, layout)
    assert "--no-georef" not in stage_arguments("sfm", default, layout)
    assert stage_fingerprint("sfm", kept, layout) != stage_fingerprint("sfm", default, layout)
    # AND the command line sets it
    from spaceport.cli import build_parser

    args = build_parser(only="run").parse_args(["run", str(tmp_path), "--out", str(layout.out_dir), "--no-georef"])
    assert args.georef is False
