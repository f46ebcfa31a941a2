"""On the globe: the 3D Tiles export in CesiumJS 1.145, offline, in headless Chromium (SwiftShader, no GPU).

- **Marked scene** (4,149 Gaussians, red, green and blue balls 10 m east, north and up of the origin, exported with
  at most 2,500 Gaussians a tile): where each ball lands against its pinhole projection from the same
  east-north-up pose, SSIM against our own render of the PLY, which tiles drew the first frame.
- **Drone sample scene with GPS** (``spaceport run`` on the generator's drone double orbit, fast preset): the
  run's own ``tiles/`` and ``scene.glb``; the glTF validator on every GLB; the root transform against pyproj; the
  tileset in CesiumJS from a training camera's pose against our render; sizes against SOG and PLY.
- **Levels of detail**: a 3 M Gaussian scene (the marked scene's ground, 0.231 m apart over 400 m, SH degree 3):
  export time and peak memory; in the browser, the first frame from far away (the coarse level alone) and how long
  a single tile of 50 k, 200 k and 800 k Gaussians takes to draw its first frame, and how many frames a second it
  draws after, the measurement behind ``TILE_LIMIT``.

Screenshots are described in ``LOOKED_AT`` by the bytes kept in plots/; after describing a new run's,
``python -m benchmarks.globe`` writes the section again from results.json without measuring anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    SuiteResult,
    Table,
    Target,
    Workspace,
    described,
    fingerprint,
    fmt,
    fmt_bytes,
    folder_bytes,
)
from benchmarks.globe_browser import EnuCamera, cesium_version, save_image, view_globe
from benchmarks.report import rewrite_section

WIDTH, HEIGHT = 480, 360
MARKER_TOLERANCE_PX, MIN_SSIM = 2.0, 0.85
MARKED_CAMERAS = {
    "far": EnuCamera(position=(-120.0, -200.0, 160.0), target=(0.0, 0.0, 0.0)),
    "oblique": EnuCamera(position=(-18.0, -30.0, 22.0), target=(3.0, 3.0, 2.0)),
    "above": EnuCamera(position=(2.0, -6.0, 26.0), target=(2.0, 2.0, -1.5)),
}
BIG_GROUND_HALF_M, BIG_SPACING_M = 200.0, 0.231
SINGLE_TILE_SIZES = (50_000, 200_000, 800_000)
# About 370 m from the origin. CesiumJS 1.145's splat shader discards a splat under 2 px along both axes, so a
# level is drawn only where its Gaussians are that large: from 1.25 km (the pose first tried) every merged Gaussian
# of the 3 M scene's root (1.8 m voxels) was smaller, and frames were drawn with nothing on the canvas.
BIG_FAR = EnuCamera(position=(-150.0, -270.0, 210.0), target=(0.0, 0.0, 0.0))
# A single tile is timed from close by (about 45 m), where its Gaussians (0.231 m apart) are over 2 px, as a leaf
# is when a viewer has refined to it.
SINGLE_TILE_CAMERA = EnuCamera(position=(-18.0, -30.0, 22.0), target=(3.0, 3.0, 2.0))
PLOTS = (
    "globe_marked_far.png",
    "globe_marked_oblique.png",
    "globe_marked_above.png",
    "globe_drone.png",
    "globe_drone_ours.png",
    "globe_3m_far.png",
)
# TILE_LIMIT's rule: the largest tile size measured whose single tile draws its first frame within this many seconds
# in CesiumJS on SwiftShader here (about the limit for keeping a user's attention on a wait).
TILE_FIRST_FRAME_S = 10.0
# What a person saw in each kept screenshot, by the first 16 hex digits of the SHA-256 of its bytes in plots/.
LOOKED_AT: dict[str, tuple[str, str]] = {
    "globe_marked_far.png": (
        "15627df76c0e2c66",
        "480x360, black all round (no globe surface is drawn) but for the marked scene's checkered ground as a small "
        "grey diamond at the centre, about 50 px across, with three dots of two or three "
        "pixels: green on its left, red on its right, blue just above its far corner. The root tile alone, 280 m off.",
    ),
    "globe_marked_oblique.png": (
        "23e38dd3bc319044",
        "The checkered ground (grey and cream squares) seen obliquely from the south-west on black, its far and side "
        "corners in view, its near part running off the bottom edge; the red ball right of the centre (east), the "
        "green ball left of it (north) and the blue ball above them (up), each a sharp disc. Squares' edges soft.",
    ),
    "globe_marked_above.png": (
        "6690f3e54f9b5b7e",
        "From above and south of the origin: the ground fills the view but for two black corners beyond its far edge "
        "at the top; the blue ball large left of the middle (the closest, 10 m up), the green ball above it towards "
        "the far edge (north), the red ball to the right (east). Checker squares sharp.",
    ),
    "globe_drone.png": (
        "ee5e9abcd3a4dbfe",
        "The drone run's tileset from its first training photo's pose: the red-and-cream checkered box in the "
        "centre, the purple-and-yellow striped ball behind it to the right, a small red ball right of that, a blue "
        "speckled ball in front left of the box, a blue-and-white box front right, a dark grey shape on the left, "
        "on green grass with grey patches. Blurred all over (the fast preset: 300 steps at 160x120, 10,184 "
        "Gaussians trained); the top band is dark where the sky shell was left out. The same picture as our render "
        "below.",
    ),
    "globe_drone_ours.png": (
        "6f84e9497dfbf066",
        "Our render of the run's PLY without its sky shell from the same pose: the same boxes and balls in the same "
        "places, the same blur and dark top band; no difference that the eye finds side by side with the one above.",
    ),
    "globe_3m_far.png": (
        "052958b3d814572f",
        "The 3 M scene's root tile alone from about 370 m: the 400 m ground as a large grey quadrilateral filling "
        "the lower two thirds, its far corner near the top right, black above; the checker pattern at about a "
        "pixel a square, a moire over the whole; at the centre the three markers as dots of one or two pixels "
        "(green, blue, red, left to right).",
    ),
}
NOT_LOOKED_AT = "not looked at yet (a new run: describe it in LOOKED_AT, then `python -m benchmarks.globe`)"
MEASURED_EXPORT = (
    "import json, resource, sys, time\n"
    "from spaceport.cli import main\n"
    "started = time.monotonic()\n"
    "code = main(sys.argv[1:])\n"
    "print('MEASURED', json.dumps({'code': code, 'seconds': round(time.monotonic() - started, 2),\n"
    "      'peak_rss_mib': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))\n"
)


def origin_of(georef: dict[str, Any]) -> dict[str, float]:
    origin = georef["origin"]
    return {"latitude": origin["latitude"], "longitude": origin["longitude"], "height": origin["altitude_m"]}


def gps_georef(latitude: float = 46.5209, longitude: float = 6.5653, altitude_m: float = 413.0) -> dict[str, Any]:
    """A georef.json of method ``gps`` (the parts the export reads) for a synthetic splat."""
    return {"version": 1, "method": "gps", "georeferenced": True, "frame": {"axes": "x east, y north, z up"},
            "origin": {"latitude": latitude, "longitude": longitude, "altitude_m": altitude_m,
                       "height_reference": "mean sea level"}, "rms_m": 0.0, "warnings": []}  # fmt: skip


def splat_on_earth(folder: Path, cloud: Any) -> dict[str, Any]:
    """``folder/scene.ply`` and a GPS ``georef.json`` for it, as a run's folder has them; returns the georef."""
    from spaceport.gaussians import write_ply

    folder.mkdir(parents=True, exist_ok=True)
    write_ply(cloud, folder / "scene.ply")
    georef = gps_georef()
    (folder / "georef.json").write_text(json.dumps(georef))
    return georef


def measured_export(folder: Path, *options: str) -> dict[str, Any]:
    """``spaceport export FOLDER --format 3dtiles OPTIONS`` in its own process: seconds and peak memory."""
    command = [sys.executable, "-c", MEASURED_EXPORT, "export", str(folder), "--format", "3dtiles", *options]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("MEASURED "))
    figures = json.loads(line.removeprefix("MEASURED "))
    figures["tiles_bytes"] = folder_bytes(folder / "tiles")
    return figures


def marker_errors(image: np.ndarray, camera: EnuCamera) -> dict[str, float | None]:
    from benchmarks.globe_compare import marker_centroid
    from spaceport.scene.markers import MARKER_COLOURS, MARKER_OFFSETS

    expected = camera.project(np.array(list(MARKER_OFFSETS.values())), WIDTH, HEIGHT)
    errors: dict[str, float | None] = {}
    for (name, colour), where in zip(MARKER_COLOURS.items(), expected, strict=True):
        found, _ = marker_centroid(image, colour)
        errors[name] = None if found is None else round(float(np.linalg.norm(found - where)), 3)
    return errors


def measure_marked(workspace: Workspace) -> dict[str, Any]:
    """The marked scene on the globe from three poses: marker errors, SSIM, first frame."""
    from benchmarks.globe_compare import image_ssim, render_reference
    from spaceport.scene.markers import marked_scene

    folder = workspace.root / "globe" / "marked"
    scene = marked_scene()
    georef = splat_on_earth(folder, scene)
    export = measured_export(folder, "--tile-limit", "2500", "--sky-shell", "none")
    cameras = list(MARKED_CAMERAS.values())
    session = view_globe(folder / "tiles", origin_of(georef), cameras, WIDTH, HEIGHT, errors=[16.0, 1.0, 1.0])
    views = {}
    for (name, camera), frame in zip(MARKED_CAMERAS.items(), session.frames, strict=True):
        save_image(frame.image, workspace.plots_dir / f"globe_marked_{name}.png")
        reference = render_reference(scene, camera, WIDTH, HEIGHT)
        views[name] = {"markers_px": marker_errors(frame.image, camera), "ssim": round(image_ssim(frame.image,
                       reference), 4), "visible": frame.state["visible"], "splats": frame.state["splats"],
                       "seconds": frame.seconds}  # fmt: skip
    first = session.frames[0].state
    return {"gaussians": len(scene), "export": export, "views": views, "first_frame_ms": first["firstFrameMs"],
            "first_frame_tiles": first["firstFrameTiles"], "refused": session.refused,
            "console_errors": session.console_errors}  # fmt: skip


def training_camera(run_dir: Path) -> tuple[EnuCamera, str]:
    """The pose of the run's first registered photo (in georef.json's east-north-up frame) as an ``EnuCamera``,
    with the photo's vertical field of view."""
    import pycolmap

    model = pycolmap.Reconstruction(run_dir / "sfm" / "sparse" / "0")
    image = min((image for image in model.images.values() if image.has_pose), key=lambda image: image.name)
    camera = model.cameras[image.camera_id]
    rotation = image.cam_from_world().rotation.matrix()
    centre = image.projection_center()
    forward, down = rotation[2], rotation[1]
    fov = float(np.degrees(2 * np.arctan(camera.height / 2 / camera.focal_length_y)))
    pose = EnuCamera(tuple(centre), tuple(centre + 10 * forward), tuple(-down), fov)  # type: ignore[arg-type]
    return pose, image.name


def measure_drone(workspace: Workspace) -> dict[str, Any]:
    """``spaceport run`` on the drone capture; its tiles and GLB validated, placed and shown in CesiumJS."""
    from benchmarks.georef import scene_dir
    from benchmarks.globe_compare import image_ssim, render_reference
    from benchmarks.gltf_validation import findings, validate
    from spaceport.cli import main
    from spaceport.export.sky_shell import find_shell, scene_without_shell
    from spaceport.gaussians import read_ply

    capture = scene_dir(workspace, "drone")
    run_dir = workspace.root / "globe" / "drone-run"
    started = time.monotonic()
    if main(["run", str(capture / "images"), "--out", str(run_dir), "--preset", "fast", "--device", "cpu"]) != 0:
        raise RuntimeError(f"spaceport run failed: see {run_dir / 'report.json'}")
    run_seconds = round(time.monotonic() - started, 1)
    georef = json.loads((run_dir / "georef.json").read_text(encoding="utf-8"))
    glbs = [run_dir / "scene.glb", *sorted((run_dir / "tiles" / "content").glob("*.glb"))]
    reports = validate(glbs)
    problems = {path.name: findings(path, reports[str(path)]) for path in glbs}
    camera, photo = training_camera(run_dir)
    session = view_globe(run_dir / "tiles", origin_of(georef), [camera], WIDTH, HEIGHT, errors=[1.0])
    save_image(session.frames[0].image, workspace.plots_dir / "globe_drone.png")
    cloud = read_ply(run_dir / "scene.ply")
    scene = scene_without_shell(cloud, find_shell(cloud, run_dir / "scene.ply"))
    reference = render_reference(scene, camera, WIDTH, HEIGHT)
    save_image(reference, workspace.plots_dir / "globe_drone_ours.png")
    sizes = {name: (run_dir / name).stat().st_size for name in ("scene.ply", "scene.sog", "scene.glb", "scene.spz")}
    return {"run_seconds": run_seconds, "gaussians": len(scene), "trained_gaussians": len(cloud), "photo": photo,
            "origin": georef["origin"], "rms_m": georef.get("rms_m"), "root_transform": root_transform_error(run_dir),
            "validator_glbs": len(glbs), "validator_findings": {k: v for k, v in problems.items() if v},
            "ssim": round(image_ssim(session.frames[0].image, reference), 4), "sizes": sizes | {
                "tiles": folder_bytes(run_dir / "tiles")}, "refused": session.refused,
            "visible": session.frames[0].state["visible"], "first_frame_ms": session.frames[0].state["firstFrameMs"],
            "compress_exports": json.loads((run_dir / "report.json").read_text())["outputs"]}  # fmt: skip


def root_transform_error(run_dir: Path) -> dict[str, float]:
    """Metres between where the root transform puts the bounding box's centre and where pyproj's topocentric
    frame at georef.json's origin puts it (horizontal and vertical)."""
    import pyproj

    document = json.loads((run_dir / "tiles" / "tileset.json").read_text(encoding="utf-8"))
    origin = json.loads((run_dir / "georef.json").read_text(encoding="utf-8"))["origin"]
    box = document["root"]["boundingVolume"]["box"]
    ecef = np.array(document["root"]["transform"]).reshape(4, 4).T @ np.array([*box[:3], 1.0])
    lon, lat, height = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True).transform(*ecef[:3])
    topocentric = pyproj.Transformer.from_pipeline(
        "+proj=pipeline +step +proj=cart +ellps=WGS84 +step +proj=topocentric +ellps=WGS84 "
        f"+lat_0={origin['latitude']} +lon_0={origin['longitude']} +h_0={origin['altitude_m']}")  # fmt: skip
    true_lon, true_lat, true_height = topocentric.transform(*box[:3], direction="INVERSE")
    metres_per_degree = 111_320.0
    horizontal = np.hypot((lat - true_lat) * metres_per_degree,
                          (lon - true_lon) * metres_per_degree * np.cos(np.radians(lat)))  # fmt: skip
    return {"horizontal_m": round(float(horizontal), 5), "vertical_m": round(abs(height - true_height), 5)}


def big_scene() -> Any:
    """About 3 M Gaussians: the marked scene's ground over 400 m, with small seeded SH of degree 3 (as trained)."""
    from spaceport.gaussians import GaussianCloud
    from spaceport.scene.markers import marked_scene

    scene = marked_scene(BIG_GROUND_HALF_M, BIG_SPACING_M)
    rest = np.random.default_rng(0).normal(0.0, 0.05, (len(scene), 15, 3)).astype(np.float32)
    return GaussianCloud(scene.means, scene.sh0, rest, scene.opacities, scene.log_scales, scene.quats)


def measure_levels(workspace: Workspace) -> dict[str, Any]:
    """The 3 M scene: export time and memory, tile tree, its first frame from far away; single tiles' first frames."""
    root = workspace.root / "globe" / "big"
    scene = big_scene()
    georef = splat_on_earth(root, scene)
    export = measured_export(root, "--sky-shell", "none")
    tileset = json.loads((root / "tiles" / "tileset.json").read_text(encoding="utf-8"))
    session = view_globe(root / "tiles", origin_of(georef), [BIG_FAR], WIDTH, HEIGHT, timeout_s=600)
    save_image(session.frames[0].image, workspace.plots_dir / "globe_3m_far.png")
    state = session.frames[0].state
    levels = {"gaussians": len(scene), "export": export, "root_geometric_error": tileset["root"]["geometricError"],
              "ply_bytes": (root / "scene.ply").stat().st_size, "first_frame_ms": state["firstFrameMs"],
              "first_frame_tiles": state["firstFrameTiles"], "first_loaded": state["loaded"][:3],
              "refused": session.refused, "single_tiles": []}  # fmt: skip
    rng = np.random.default_rng(1)
    for count in SINGLE_TILE_SIZES:
        folder = workspace.root / "globe" / f"single-{count}"
        splat_on_earth(folder, scene.subset(np.sort(rng.choice(len(scene), count, replace=False))))
        measured_export(folder, "--sky-shell", "none", "--tile-limit", str(count))
        levels["single_tiles"].append({"gaussians": count, "bytes": folder_bytes(folder / "tiles")} |
                                      single_tile_frames(folder / "tiles", origin_of(georef)))  # fmt: skip
    return levels


def single_tile_frames(tiles: Path, origin: dict[str, float]) -> dict[str, Any]:
    """A one-tile tileset in CesiumJS from ``SINGLE_TILE_CAMERA``: its first frame (ms after the page opened) and
    the frames drawn in the ``WATCH_S`` after; a page that failed or timed out is recorded as such."""
    from benchmarks.globe_browser import WATCH_S

    try:
        state = view_globe(tiles, origin, [SINGLE_TILE_CAMERA], WIDTH, HEIGHT, timeout_s=300, settle=False)
    except Exception as error:  # noqa: BLE001 (a figure of the suite: what stopped the page is what is reported)
        return {"first_frame_ms": None, "error": f"{type(error).__name__}: {str(error).splitlines()[0]}"}
    state = state.frames[0].state
    return {"first_frame_ms": state["firstFrameMs"], "splats": state["splats"],
            "frames_per_s": round(state["framesAfterWatch"] / WATCH_S, 2)}  # fmt: skip


def targets(marked: dict[str, Any], drone: dict[str, Any], levels: dict[str, Any]) -> list[Target]:
    close = [marked["views"][name] for name in ("oblique", "above")]
    worst = max(error if error is not None else 99.0 for view in close for error in view["markers_px"].values())
    ssims = [view["ssim"] for view in close]
    listed = [
        Target("Marked scene: each marker within 2 px of its projection (oblique and from above)",
               f"{worst:.2f} px (worst of 6)", worst <= MARKER_TOLERANCE_PX),
        Target("Marked scene: SSIM >= 0.85 against our render", f"{min(ssims):.3f} (lowest of 2)",
               min(ssims) >= MIN_SSIM),
        Target("Nothing requested from another host", f"{len(marked['refused']) + len(drone['refused'])} refused",
               not marked["refused"] and not drone["refused"]),
        Target("Drone scene: glTF validator, only the allow-listed codes", f"{drone['validator_glbs']} GLBs, "
               f"{len(drone['validator_findings'])} with other findings", not drone["validator_findings"]),
        Target("Drone scene: bounding-box centre through the root transform within 1 cm of pyproj's",
               f"{drone['root_transform']['horizontal_m'] * 100:.3f} cm horizontal, "
               f"{drone['root_transform']['vertical_m'] * 100:.3f} cm vertical",
               max(drone["root_transform"].values()) < 0.01),
        Target("Drone scene: SSIM >= 0.85 against our render", f"{drone['ssim']:.3f}", drone["ssim"] >= MIN_SSIM),
        Target("3 M Gaussians: the coarse level alone draws the first frame", ", ".join(levels["first_frame_tiles"]),
               levels["first_frame_tiles"] == ["0.glb"]),
        tile_limit_target(levels["single_tiles"]),
    ]  # fmt: skip
    return listed


def _seconds(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else milliseconds / 1000


def tile_limit_target(single_tiles: list[dict[str, Any]]) -> Target:
    """Whether ``TILE_LIMIT`` is the largest size measured whose single tile drew its first frame within
    ``TILE_FIRST_FRAME_S``."""
    from spaceport.export.lod import TILE_LIMIT

    limit_ms = TILE_FIRST_FRAME_S * 1000
    within = [tile["gaussians"] for tile in single_tiles if (tile["first_frame_ms"] or limit_ms + 1) <= limit_ms]
    times = ", ".join(f"{tile['gaussians'] // 1000} k: {fmt(_seconds(tile['first_frame_ms']), 1, ' s')}"
                      for tile in single_tiles)  # fmt: skip
    return Target(f"TILE_LIMIT ({TILE_LIMIT:,}) is the largest tile measured that draws its first frame within "
                  f"{TILE_FIRST_FRAME_S:.0f} s", times, bool(within) and max(within) == TILE_LIMIT)  # fmt: skip


def tables(marked: dict[str, Any], drone: dict[str, Any], levels: dict[str, Any]) -> list[Table]:
    views = Table(
        "Marked scene in CesiumJS: marker centres against their pinhole projections, SSIM against our render",
        ["View", "East (red)", "North (green)", "Up (blue)", "SSIM", "Tiles drawn", "Splats"],
        [[name, *(fmt(error, 2, " px") for error in view["markers_px"].values()), f"{view['ssim']:.3f}",
          ", ".join(view["visible"]), f"{view['splats']:,}"] for name, view in marked["views"].items()],
    )  # fmt: skip
    sizes = drone["sizes"]
    size_table = Table(
        f"Drone sample scene: sizes ({drone['trained_gaussians']:,} Gaussians trained, {drone['gaussians']:,} "
        "without the sky shell)",
        ["PLY", "SOG", "3D Tiles (SPZ)", "glTF (float32)", "SPZ"],
        [[fmt_bytes(sizes["scene.ply"]), fmt_bytes(sizes["scene.sog"]), fmt_bytes(sizes["tiles"]),
          fmt_bytes(sizes["scene.glb"]), fmt_bytes(sizes["scene.spz"])]],
    )  # fmt: skip
    export = levels["export"]
    lod = Table(
        f"Levels of detail: {levels['gaussians']:,} Gaussians (SH degree 3)",
        ["Export", "Peak memory", "PLY", "3D Tiles (SPZ)", "First frame from far", "Drawn first"],
        [[f"{export['seconds']:.1f} s", f"{export['peak_rss_mib']:,} MiB", fmt_bytes(levels["ply_bytes"]),
          fmt_bytes(export["tiles_bytes"]), f"{levels['first_frame_ms'] / 1000:.1f} s",
          ", ".join(levels["first_frame_tiles"])]],
    )  # fmt: skip
    single = Table(
        "One tile in CesiumJS (SwiftShader) from about 45 m: its first frame, by the Gaussians in it",
        ["Gaussians", "Tile bytes", "First frame", "Frames a second after it"],
        [[f"{tile['gaussians']:,}", fmt_bytes(tile["bytes"]), fmt(_seconds(tile["first_frame_ms"]), 1, " s"),
          fmt(tile.get("frames_per_s"), 2) if "error" not in tile else tile["error"][:80]]
         for tile in levels["single_tiles"]],
    )  # fmt: skip
    return [views, size_table, lod, single]


def run(workspace: Workspace) -> SuiteResult:
    marked = measure_marked(workspace)
    drone = measure_drone(workspace)
    levels = measure_levels(workspace)
    kept = {plot: fingerprint(workspace.plots_dir / plot) for plot in PLOTS if (workspace.plots_dir / plot).is_file()}
    return report({"marked": marked, "drone": drone, "levels": levels, "screenshots": kept})


def report(figures: dict[str, Any]) -> SuiteResult:
    """The section from the suite's figures; a screenshot is described only while its kept bytes are the ones
    looked at (``LOOKED_AT``)."""
    marked, drone, levels = figures["marked"], figures["drone"], figures["levels"]
    kept: dict[str, str] = figures.get("screenshots", {})
    seen = {plot: text for plot in kept if (text := described(LOOKED_AT, plot, kept[plot]))}
    listed = [*targets(marked, drone, levels),
              Target("The screenshots are looked at", f"{len(seen)} of {len(PLOTS)} described below, as kept in "
                     "plots/", len(seen) == len(PLOTS))]  # fmt: skip
    notes = [
        f"CesiumJS {figures.get('cesium', cesium_version())} (npm, served from 127.0.0.1) in Debian's Chromium, "
        "headless on SwiftShader: first-frame times are a CPU renderer's on this machine, far slower than a GPU's. "
        "The page draws no globe surface (no imagery or terrain offline): black is empty space, and the scene's place "
        "on Earth shows in where it lands, the camera being placed by CesiumJS's own east-north-up frame at the "
        "georef origin, not by our root transform.",
        "",
        "Levels of detail: the 3 M scene is measured in full, its export in its own process (peak resident memory "
        "from getrusage). Its far view is from about 370 m: CesiumJS 1.145's shader discards a splat under 2 px "
        "along both axes, and from 1.25 km (the pose first tried) every merged Gaussian of the root was that small: "
        "frames were drawn, the canvas stayed black, and no first frame came in 600 s. A coarse level therefore "
        "vanishes from CesiumJS from far enough away rather than fading; we have not changed the merge for it.",
        "",
        "TILE_LIMIT: a tile's first frame is the wait before it shows at all, and with `REPLACE` refinement a "
        "viewer waits for it whenever it refines; a quarter of it (the root and every parent) is what draws first. "
        f"The rule is the largest size measured whose single tile draws within {TILE_FIRST_FRAME_S:.0f} s on the "
        "slowest renderer we test (SwiftShader, while other benchmarks loaded this machine's 2 cores: the seconds "
        "are pessimistic, their order holds); a GPU is many times faster, so the limit errs towards small tiles. "
        "The first frame is counted from the page's start, CesiumJS's own start-up included (the "
        f"{marked['gaussians']:,}-Gaussian marked scene's took {marked['first_frame_ms'] / 1000:.1f} s).",
        "",
        *(f"- ![{plot}](plots/{plot}) `{plot}`: {seen.get(plot, NOT_LOOKED_AT)}" for plot in PLOTS if plot in kept),
    ]  # fmt: skip
    return SuiteResult("globe", "On the globe: 3D Tiles in CesiumJS", figures, tables(marked, drone, levels), listed,
                       notes=notes)  # fmt: skip


def report_again() -> None:
    """Write the section again from results.json (after describing the kept screenshots in ``LOOKED_AT``)."""
    rewrite_section("globe", report)


if __name__ == "__main__":
    report_again()
