"""Georeferencing: the frame the sfm stage delivers (GPS east-north-up metres, else z up), and how bad GPS is met.

The fast tests feed the estimators the generator's true poses, moved into an arbitrary frame as SfM would leave
them; the slow one runs the sfm stage on the drone capture, whose photos carry EXIF GPS with one wrong fix.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from spaceport.contract import verify_manifest
from spaceport.scene.generator import render_sample_scene
from spaceport.scene.gps import gps_fixes
from spaceport.scene.layouts import SceneConfig, camera_poses
from spaceport.sfm.georef import (
    GEOREF_FILE,
    Cameras,
    GeorefConfig,
    GpsFix,
    choose_frame,
    estimate_up,
    read_gps_fixes,
)
from spaceport.transform import Similarity

UP = np.array([0.0, 0.0, 1.0])


def random_similarity(seed: int) -> Similarity:
    """An arbitrary frame, as structure from motion picks one: any rotation, scale and offset."""
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    rotation *= np.sign(np.linalg.det(rotation))
    return Similarity(float(rng.uniform(0.2, 3.0)), rotation, rng.normal(0, 5, 3))


def cameras_in_sfm_frame(config: SceneConfig, sfm_from_world: Similarity) -> Cameras:
    """The layout's true cameras as a model in another frame would hold them."""
    poses = camera_poses(config)
    rotations = np.array([pose.rotation for pose in poses]) @ sfm_from_world.rotation.T
    centres = sfm_from_world.apply(np.array([pose.center for pose in poses]))
    return Cameras([pose.name for pose in poses], rotations, centres)


def tilt_deg(new_from_world_rotation: np.ndarray) -> float:
    """How far the delivered frame's z lies from the true vertical."""
    up = new_from_world_rotation @ UP
    return math.degrees(math.acos(min(1.0, float(up[2]))))


def truth_in_georef_frame(true_lat_lon_alt: np.ndarray, origin: dict) -> np.ndarray:
    """True positions in east-north-up metres around georef.json's origin (pycolmap's converter, not ours)."""
    import pycolmap

    converter = pycolmap.GPSTransform(pycolmap.GPSTransformEllipsoid.WGS84)
    return converter.ellipsoid_to_enu(true_lat_lon_alt, origin["latitude"], origin["longitude"], origin["altitude_m"])


def test_drone_gps_registers_the_cameras_and_names_the_wrong_fix() -> None:
    # GIVEN the drone capture's true cameras in an arbitrary frame, and the fixes its photos carry (one wrong)
    config = SceneConfig(layout="drone")
    sfm_from_world = random_similarity(1)
    cameras = cameras_in_sfm_frame(config, sfm_from_world)
    fixes = gps_fixes(config, camera_poses(config))
    by_name = {name: GpsFix(*fix) for name, fix in zip(cameras.names, fixes.written, strict=True)}

    # WHEN the frame is chosen
    registration = choose_frame(cameras, by_name, sfm_from_world.apply(np.zeros(3)), GeorefConfig())

    # THEN it is east-north-up metres: every camera within 1 % of the orbit's extent of where it really was
    document = registration.document
    assert registration.method == "gps" and document["georeferenced"] and document["metric"]
    truth = truth_in_georef_frame(fixes.true, document["origin"])
    errors = np.linalg.norm(registration.similarity.apply(cameras.centres) - truth, axis=1)
    extent = np.ptp(truth, axis=0).max()
    assert errors.max() < 0.01 * extent, (errors.max(), extent)
    # AND z within 1 degree of the true vertical
    assert tilt_deg(registration.similarity.rotation @ sfm_from_world.rotation) < 1.0
    # AND the wrong fix is named and left out, the others used
    wrong = camera_poses(config)[fixes.wrong_index].name
    assert [item["name"] for item in document["photos"]["rejected"]] == [wrong]
    assert document["photos"]["used"] == len(cameras.names) - 1
    assert any(wrong in warning for warning in document["warnings"])
    # AND the RMS is about the receiver's noise, the scale is metres per SfM unit
    assert 0.3 < document["rms_m"] < 1.5
    assert document["scale"] == pytest.approx(4.0 / sfm_from_world.scale, rel=0.01)


def test_origin_is_near_the_scene_and_easy_to_quote() -> None:
    # GIVEN the drone capture registered by GPS
    config = SceneConfig(layout="drone")
    sfm_from_world = random_similarity(2)
    cameras = cameras_in_sfm_frame(config, sfm_from_world)
    fixes = gps_fixes(config, camera_poses(config))
    by_name = {name: GpsFix(*fix) for name, fix in zip(cameras.names, fixes.written, strict=True)}
    scene_centre = np.array([0.0, 0.0, 0.4])

    # WHEN the frame is chosen around the scene's centre
    registration = choose_frame(cameras, by_name, sfm_from_world.apply(scene_centre), GeorefConfig())

    # THEN the origin has 4 decimals of latitude and longitude and whole metres, and lies within 10 m of the scene
    origin = registration.document["origin"]
    assert origin["latitude"] == round(origin["latitude"], 4) and origin["longitude"] == round(origin["longitude"], 4)
    assert origin["altitude_m"] == round(origin["altitude_m"])
    assert np.linalg.norm(registration.similarity.apply(sfm_from_world.apply(scene_centre))) < 10.0
    # AND georef.json says which frame, which datum and which altitude
    assert "EPSG method 9837" in registration.document["frame"]["definition"]
    assert "+proj=topocentric" in registration.document["frame"]["proj_pipeline"]
    assert "sea level" in origin["altitude_reference"]


@pytest.mark.parametrize("layout", ["orbit", "drone", "facade", "object", "grid", "walk"])
def test_every_layout_comes_out_upright_without_gps(layout: str) -> None:
    # GIVEN a layout's true cameras in an arbitrary frame, and no GPS
    sfm_from_world = random_similarity(3)
    cameras = cameras_in_sfm_frame(SceneConfig(layout=layout), sfm_from_world)

    # WHEN the frame is chosen
    registration = choose_frame(cameras, {}, sfm_from_world.apply(np.zeros(3)), GeorefConfig())

    # THEN z is up within a tenth of a degree and georef.json says the scale is arbitrary
    assert registration.method == "upright"
    assert tilt_deg(registration.similarity.rotation @ sfm_from_world.rotation) < 0.1
    assert registration.similarity.scale == 1.0
    assert not registration.document["metric"] and "arbitrary" in registration.document["frame"]["units"]
    assert registration.document["warnings"] == []


def test_a_lawn_mower_grid_comes_out_upright_from_its_flight_plane() -> None:
    # GIVEN a mapping grid's cameras, their x axes all along one line (strips flown back and forth), each turned by
    # reconstruction noise of a few hundredths of a degree about its image's vertical (which tips its x axis
    # towards its optical axis, nearly the world's vertical), in an arbitrary frame and without GPS
    rng = np.random.default_rng(8)
    sfm_from_world = random_similarity(9)
    cameras = cameras_in_sfm_frame(SceneConfig(layout="grid", images=64), sfm_from_world)
    for index, angle in enumerate(np.radians(rng.normal(0, 0.03, len(cameras.names)))):
        turn = np.array([[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]])
        cameras.rotations[index] = turn @ cameras.rotations[index]

    # WHEN the frame is chosen
    registration = choose_frame(cameras, {}, sfm_from_world.apply(np.zeros(3)), GeorefConfig())

    # THEN the noise in the x axes is not taken for a vertical: the flight's level plane gives it, within a degree
    assert registration.method == "upright"
    assert tilt_deg(registration.similarity.rotation @ sfm_from_world.rotation) < 1.0


def test_upright_within_three_degrees_when_photos_roll_a_little() -> None:
    # GIVEN hand-held photos of an orbit, each rolled by a few degrees about its optical axis
    rng = np.random.default_rng(4)
    sfm_from_world = random_similarity(5)
    cameras = cameras_in_sfm_frame(SceneConfig(layout="object"), sfm_from_world)
    for index, roll in enumerate(np.radians(rng.normal(0, 3.0, len(cameras.names)))):
        turn = np.array([[math.cos(roll), -math.sin(roll), 0], [math.sin(roll), math.cos(roll), 0], [0, 0, 1]])
        cameras.rotations[index] = turn @ cameras.rotations[index]

    # WHEN the vertical is estimated
    estimate = estimate_up(cameras)

    # THEN it is within 3 degrees of the truth
    true_up = sfm_from_world.rotation @ UP
    assert math.degrees(math.acos(min(1.0, float(estimate.up @ true_up)))) < 3.0


def test_nadir_photos_get_the_sign_of_up_right() -> None:
    # GIVEN a drone grid of photos looking straight down (their image-up vectors are horizontal)
    centres = np.array([[x, y, 30.0] for x in range(0, 50, 10) for y in range(0, 40, 10)], dtype=float)
    heading = np.radians(np.arange(len(centres)) * 7.0)
    # Camera axes in the world: x right (horizontal), y down the image (horizontal), z forward (straight down).
    rotations = np.array([[[math.cos(a), math.sin(a), 0], [math.sin(a), -math.cos(a), 0], [0, 0, -1]] for a in heading])
    cameras = Cameras([f"{index:03d}.jpg" for index in range(len(centres))], rotations, centres)

    # WHEN the vertical is estimated THEN it points up, away from where the cameras look
    assert estimate_up(cameras).up @ UP > 0.999


def drone_cameras_and_fixes(seed: int = 6) -> tuple[Cameras, dict[str, GpsFix], Similarity]:
    config = SceneConfig(layout="drone")
    sfm_from_world = random_similarity(seed)
    cameras = cameras_in_sfm_frame(config, sfm_from_world)
    fixes = gps_fixes(config, camera_poses(config))
    return cameras, {n: GpsFix(*f) for n, f in zip(cameras.names, fixes.written, strict=True)}, sfm_from_world


def upright_fallback(cameras: Cameras, fixes: dict[str, GpsFix], sfm_from_world: Similarity) -> dict:
    registration = choose_frame(cameras, fixes, sfm_from_world.apply(np.zeros(3)), GeorefConfig())
    # Bad GPS never costs the scene its vertical.
    assert registration.method == "upright"
    assert tilt_deg(registration.similarity.rotation @ sfm_from_world.rotation) < 0.1
    return registration.document


def test_fewer_than_three_fixes_fall_back_to_upright_with_a_warning() -> None:
    # GIVEN only two photos with GPS
    cameras, fixes, sfm_from_world = drone_cameras_and_fixes()
    two = dict(list(fixes.items())[:2])

    # WHEN the frame is chosen THEN the scene is upright only, and the report says why
    document = upright_fallback(cameras, two, sfm_from_world)
    assert "2 registered photo(s) carry GPS; at least 3 are needed" in document["warnings"][0]
    assert document["photos"]["with_gps"] == 2


def test_identical_fixes_fall_back_to_upright_with_a_warning() -> None:
    # GIVEN every photo with the same fix (a phone indoors)
    cameras, fixes, sfm_from_world = drone_cameras_and_fixes()
    same = dict.fromkeys(fixes, next(iter(fixes.values())))

    # WHEN the frame is chosen THEN it falls back, naming the cause
    document = upright_fallback(cameras, same, sfm_from_world)
    assert "within 1 m of one another" in document["warnings"][0]


def test_collinear_fixes_fall_back_to_upright_with_a_warning() -> None:
    # GIVEN fixes that all lie on one line (a straight flight line), whatever the cameras did
    cameras, fixes, sfm_from_world = drone_cameras_and_fixes()
    start = next(iter(fixes.values()))
    on_line = {name: GpsFix(start.latitude + 1e-5 * i, start.longitude + 2e-5 * i, start.altitude + 0.1 * i)
               for i, name in enumerate(fixes)}  # fmt: skip

    # WHEN the frame is chosen THEN it falls back: a line cannot fix the rotation about itself
    document = upright_fallback(cameras, on_line, sfm_from_world)
    assert "lie on a line" in document["warnings"][0]


def test_a_poor_fit_is_reported_and_not_applied() -> None:
    # GIVEN fixes with metres of noise each, around a small scene
    cameras, fixes, sfm_from_world = drone_cameras_and_fixes()
    rng = np.random.default_rng(7)
    noisy = {name: GpsFix(fix.latitude + rng.normal(0, 2e-5), fix.longitude + rng.normal(0, 3e-5),
                          fix.altitude + rng.normal(0, 2.5)) for name, fix in fixes.items()}  # fmt: skip

    # WHEN the frame is chosen THEN the fit's RMS is reported as the reason it was not applied
    document = upright_fallback(cameras, noisy, sfm_from_world)
    assert "RMS residual" in document["warnings"][0] and "not applied" in document["warnings"][0]
    assert document["photos"]["gps_fit_not_applied"]["rms_m"] > 2.0


def test_georef_can_be_switched_off() -> None:
    # GIVEN the option off (--no-georef)
    from spaceport.sfm.georef import register

    # WHEN the frame is chosen THEN SfM's frame is kept, and georef.json says so
    registration = register(None, Path("unused"), GeorefConfig(enabled=False))
    assert registration.method == "none"
    assert registration.similarity.scale == 1.0 and np.array_equal(registration.similarity.rotation, np.eye(3))
    assert "--no-georef" in registration.document["frame"]["definition"]


def test_manifest_summary_is_small_and_has_no_nan() -> None:
    # GIVEN a registration that rejected every fix but three (many names)
    cameras, fixes, sfm_from_world = drone_cameras_and_fixes()
    rng = np.random.default_rng(8)
    wrong = {name: GpsFix(fix.latitude + rng.uniform(0.001, 0.002), fix.longitude, fix.altitude)
             for name, fix in list(fixes.items())[:30]}  # fmt: skip
    registration = choose_frame(cameras, fixes | wrong, sfm_from_world.apply(np.zeros(3)), GeorefConfig())

    # WHEN its manifest summary is made
    summary = registration.summary()

    # THEN it serialises as strict JSON (DynamoDB takes no NaN) and keeps at most 20 names
    json.dumps(summary, allow_nan=False)
    assert len(summary["rejected"]) <= 20


def test_gps_is_read_from_the_photos_exif(tmp_path: Path) -> None:
    # GIVEN a few drone photos with EXIF GPS, and one photo without
    scene = render_sample_scene(tmp_path, SceneConfig(layout="drone", images=4, width=64, height=48, supersampling=1))
    plain = render_sample_scene(tmp_path / "plain", SceneConfig(images=1, width=64, height=48, supersampling=1))
    written = {item["name"]: item["exif"] for item in json.loads(scene.ground_truth_file.read_text())["gps"]["images"]}

    # WHEN their fixes are read
    fixes = read_gps_fixes(scene.images_dir, sorted(written))

    # THEN each matches what was written, to EXIF's precision (1e-4 arc seconds, 1 mm)
    for name, (latitude, longitude, altitude) in written.items():
        assert fixes[name].latitude == pytest.approx(latitude, abs=1e-7)
        assert fixes[name].longitude == pytest.approx(longitude, abs=1e-7)
        assert fixes[name].altitude == pytest.approx(altitude, abs=1e-3)
    # AND a photo without GPS has no fix
    assert read_gps_fixes(plain.images_dir, ["frame_000.jpg"]) == {}


@pytest.fixture(scope="module")
def drone_sfm(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The sfm stage on the drone capture (36 photos of 320x240 with EXIF GPS, one fix wrong)."""
    from spaceport.sfm.stage import SfmConfig, run_sfm

    root = tmp_path_factory.mktemp("drone")
    # One sample per pixel: SIFT does not need the anti-aliasing, and rendering takes a quarter of the time.
    scene = render_sample_scene(root / "scene", SceneConfig(layout="drone", supersampling=1))
    run_sfm(scene.images_dir, root / "output", root / "work", SfmConfig())
    return root / "scene", root / "output"


def model_tilt_deg(model, truth: dict) -> float:
    """The angle between the model's +z and the true vertical, seen through every camera's orientation."""
    images = {image.name: image for image in model.images.values() if image.has_pose}
    true_ups = []
    for item in truth["images"]:
        true_up_in_camera = np.array(item["rotation"]) @ UP
        true_ups.append(images[item["name"]].cam_from_world().rotation.matrix().T @ true_up_in_camera)
    mean = np.mean(true_ups, axis=0)
    return math.degrees(math.acos(min(1.0, float(mean[2] / np.linalg.norm(mean)))))


@pytest.mark.slow
def test_sfm_stage_delivers_the_drone_capture_on_earth(drone_sfm: tuple[Path, Path]) -> None:
    import pycolmap

    # GIVEN the sfm stage's output for the drone capture and the capture's ground truth
    scene_dir, output = drone_sfm
    truth = json.loads((scene_dir / "ground_truth.json").read_text())
    georef = json.loads((output / GEOREF_FILE).read_text())
    model = pycolmap.Reconstruction(output / "sparse" / "0")

    # THEN sparse/0 is in east-north-up metres: every camera within 1 % of the orbit's extent of the truth
    assert georef["method"] == "gps"
    names = [item["name"] for item in truth["images"]]
    true_fixes = {item["name"]: item["true"] for item in truth["gps"]["images"]}
    expected = truth_in_georef_frame(np.array([true_fixes[name] for name in names]), georef["origin"])
    by_name = {image.name: image.projection_center() for image in model.images.values()}
    errors = np.linalg.norm(np.array([by_name[name] for name in names]) - expected, axis=1)
    extent = np.ptp(expected, axis=0).max()
    assert errors.max() < 0.01 * extent, (errors.max(), extent)
    # AND z within 1 degree of the true vertical
    assert model_tilt_deg(model, truth) < 1.0
    # AND the wrong fix is named in georef.json and in the manifest (which the cloud's job record copies)
    wrong = truth["gps"]["wrong_fix"]
    assert [item["name"] for item in georef["photos"]["rejected"]] == [wrong]
    manifest = verify_manifest(output)
    assert manifest is not None and manifest["georef"]["rejected"] == [wrong]
    assert manifest["georef"]["method"] == "gps" and manifest["georef"]["rms_m"] == georef["rms_m"]
    assert GEOREF_FILE in manifest["files"] and "georeferencing" in manifest["seconds"]
