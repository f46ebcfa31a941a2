"""The viewer of a run's output folder: a static page that renders ``scene.sog`` with the PlayCanvas engine.

``write_viewer`` puts everything the page needs next to the scene, so the folder is self-contained and
works offline from any static server (``spaceport view DIR``, ``python -m http.server``, an S3 bucket)::

    DIR/scene.sog                   written by the compress step
    DIR/index.html                  this page, with the initial camera inlined
    DIR/static/viewer.js            the page's code: loading, orbit controls, state for tests
    DIR/static/playcanvas.min.mjs   the pinned PlayCanvas engine (copied from npm by ``make setup``)

The page orbits about the initial camera's up vector, which ``lookAt`` receives instead of the data being
re-oriented. A run delivers its scene upright (``georef.json``: z up) and the page then orbits about world up;
with ``--no-georef`` the scene stays in the frame SfM chose and the page orbits about the first held-out
camera's up. A georeferenced scene (x east, y north, z up, metres) also gets a scale bar and a north arrow.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

STATIC_DIR = Path(__file__).resolve().parent / "static"
ENGINE_FILE = "playcanvas.min.mjs"
VIEWER_SCRIPT = "viewer.js"
PAGE_TEMPLATE = "index.html"
SCENE_FILE = "scene.sog"
# The static files a page needs, relative to the output folder (the page imports them from there).
STATIC_FILES = (VIEWER_SCRIPT, ENGINE_FILE)
# Linear RGB in 0..1; tests compare screenshots against it.
BACKGROUND = (0.08, 0.09, 0.11)
_CONFIG_MARKER = "__SPACEPORT_CONFIG__"

Vector3 = tuple[float, float, float]


class EngineMissingError(FileNotFoundError):
    """The PlayCanvas engine was not copied into the package: ``make setup`` does that."""


class ViewerCamera(BaseModel):
    """The initial camera, in the scene's frame.

    Attributes:
        position: where the camera is.
        target: the point it looks at and orbits around.
        up: the image's up direction in the world, which the page orbits about (world up, +z, for an upright
            scene; for a COLMAP camera in SfM's own frame: minus its y axis).
        fov: vertical field of view in degrees.
    """

    model_config = ConfigDict(extra="forbid")

    position: Vector3
    target: Vector3
    up: Vector3
    fov: float = Field(gt=0.0, lt=180.0)

    @model_validator(mode="after")
    def _check_geometry(self) -> ViewerCamera:
        values = np.array([self.position, self.target, self.up], dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise ValueError("camera vectors must be finite")
        view = values[1] - values[0]
        if np.linalg.norm(view) < 1e-9:
            raise ValueError("camera position and target coincide")
        # lookAt cannot build a frame from an up vector along the view direction.
        if np.linalg.norm(np.cross(view / np.linalg.norm(view), values[2])) < 1e-6:
            raise ValueError("camera up vector is zero or parallel to the view direction")
        return self


def camera_from_pose(
    cam_from_world_rotation: np.ndarray,
    cam_from_world_translation: np.ndarray,
    focal_y: float,
    image_height: int,
    target_distance: float,
) -> dict:
    """The viewer camera that sees what a COLMAP training camera saw.

    Args:
        cam_from_world_rotation: (3, 3) rotation R of ``x_cam = R x_world + t`` (pycolmap ``cam_from_world()``).
        cam_from_world_translation: (3,) translation t of the same transform.
        focal_y: vertical focal length in pixels.
        image_height: image height in pixels.
        target_distance: how far along the optical axis the orbit target lies (e.g. the distance to the
            scene centre, or the median depth of the camera's points).

    Returns:
        A camera dict for ``write_viewer``: ``{"position", "target", "up", "fov"}``.
    """
    rotation = np.asarray(cam_from_world_rotation, dtype=np.float64).reshape(3, 3)
    translation = np.asarray(cam_from_world_translation, dtype=np.float64).reshape(3)
    centre = -rotation.T @ translation
    # Rows of R are the camera axes in world coordinates: x right, y down, z forward (COLMAP/OpenCV).
    forward, down = rotation[2], rotation[1]
    fov = math.degrees(2.0 * math.atan(0.5 * image_height / focal_y))
    camera = ViewerCamera(
        position=tuple(centre.tolist()),
        target=tuple((centre + target_distance * forward).tolist()),
        up=tuple((0.0 - down).tolist()),  # 0 - x, not -x: no negative zeros in the JSON
        fov=fov,
    )
    return camera.model_dump(mode="json")


def engine_path() -> Path:
    """The pinned PlayCanvas engine build inside the package.

    Raises:
        EngineMissingError: ``make setup`` has not copied it from ``node_modules`` yet.
    """
    path = STATIC_DIR / ENGINE_FILE
    if not path.is_file():
        raise EngineMissingError(
            f"{path} is missing: run `make setup` (it copies node_modules/playcanvas/build/{ENGINE_FILE})"
        )
    return path


def viewer_frame(georef: dict | None) -> dict | None:
    """What the page needs from ``georef.json``: that z is up and, when georeferenced, that a unit is a metre
    and north is +y (for the scale bar and the north arrow). None for SfM's own frame or a run without one."""
    if not georef or georef.get("method") not in ("gps", "upright"):
        return None
    georeferenced = georef["method"] == "gps"
    return {
        "up": [0.0, 0.0, 1.0],
        "georeferenced": georeferenced,
        "metres_per_unit": 1.0 if georeferenced else None,
        "north": [0.0, 1.0, 0.0] if georeferenced else None,
    }


def render_index(camera: dict | None, scene_url: str = SCENE_FILE, georef: dict | None = None,
                 sky_shell: bool = False) -> str:  # fmt: skip
    """The viewer page with its configuration inlined.

    Args:
        camera: initial camera (see ``ViewerCamera``), or None to frame the scene's bounds: obliquely from
            above for an upright scene, else from the COLMAP convention's default direction (looking along
            +z with -y up).
        scene_url: the scene's URL relative to the page.
        georef: the run's ``georef.json`` content, or None (the scene's frame is SfM's own).
        sky_shell: the scene carries its sky as a shell of far Gaussians (the train stage's ``sky_shell``): the page
            keeps the camera well inside it.

    Returns:
        The HTML text of ``index.html``.

    Raises:
        pydantic.ValidationError: the camera is malformed.
    """
    config = {
        "scene": scene_url,
        "camera": ViewerCamera.model_validate(camera).model_dump(mode="json") if camera is not None else None,
        "background": list(BACKGROUND),
        "frame": viewer_frame(georef),
        "skyShell": sky_shell,
    }
    # "</" inside a <script> element would end it early.
    config_json = json.dumps(config).replace("</", "<\\/")
    template = (STATIC_DIR / PAGE_TEMPLATE).read_text(encoding="utf-8")
    return template.replace(_CONFIG_MARKER, config_json)


def write_viewer(out_dir: Path, camera: dict | None, georef: dict | None = None, sky_shell: bool = False) -> Path:
    """Write the viewer page and its static files next to ``out_dir/scene.sog``.

    Args:
        out_dir: the run's output folder (``scene.sog`` need not exist yet).
        camera: initial camera ``{"position": [x, y, z], "target": [x, y, z], "up": [x, y, z],
            "fov": vertical_degrees}`` in the scene's frame (see ``camera_from_pose``), or None to frame the
            scene's bounds.
        georef: the run's ``georef.json`` content (z up, metres, north), or None for SfM's own frame.
        sky_shell: the scene carries its sky as a shell of far Gaussians (see ``render_index``).

    Returns:
        The path of the written ``index.html``.

    Raises:
        EngineMissingError: the engine was not copied into the package (run ``make setup``).
        pydantic.ValidationError: the camera is malformed.
    """
    engine = engine_path()
    page = render_index(camera, georef=georef, sky_shell=sky_shell)
    static_out = out_dir / "static"
    static_out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(engine, static_out / ENGINE_FILE)
    shutil.copyfile(STATIC_DIR / VIEWER_SCRIPT, static_out / VIEWER_SCRIPT)
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
