"""Small, photo-like synthetic scenes with exact camera poses, in one of several capture layouts.

The scene is ray cast in pure numpy with analytic intersections: a textured ground disc, a handful of
boxes, spheres and cylinders with solid (3D) procedural textures, a sky gradient (or a textured backdrop
wall around the scene), a sun with hard shadows plus sky ambient, and supersampling. Solid textures are a
function of the world position only, so every photo sees the same surface detail from a new angle, which
is what SIFT needs to match them.

This module renders a capture and writes its ground truth; the parts live beside it: ``layouts`` (``SceneConfig``
and what each layout puts where), ``growing_layouts`` (the grid and the walk), ``cameras``, ``shapes``,
``textures``, ``raytrace``, ``gps`` and ``exif``.

World frame: z up, the ground is ``z = 0``. Poses follow COLMAP / OpenCV: ``x_cam = R x_world + t`` with
the camera looking along +z, x to the right and y down.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from spaceport.scene.cameras import CameraPose
from spaceport.scene.exif import camera_exif, exif_with_gps
from spaceport.scene.gps import GpsFixes, gps_fixes
from spaceport.scene.layouts import SceneConfig, build_world, camera_poses, focal_length_px
from spaceport.scene.novel_views import NOVEL_VIEWS_DIR, NovelView, sweep
from spaceport.scene.raytrace import camera_directions, render_image
from spaceport.scene.textures import NoiseField


@dataclass
class SampleScene:
    """Where a rendered sample scene lies, and its ground truth.

    Attributes:
        root: the output folder.
        images_dir: ``root/images``, the photos.
        ground_truth_file: ``root/ground_truth.json``.
        width, height: image size in pixels.
        focal_px: focal length in pixels (fx = fy); the principal point is the image centre.
        poses: one pose per photo, in photo order.
    """

    root: Path
    images_dir: Path
    ground_truth_file: Path
    width: int
    height: int
    focal_px: float
    poses: list[CameraPose] = field(default_factory=list)

    @property
    def image_paths(self) -> list[Path]:
        return [self.images_dir / pose.name for pose in self.poses]

    def camera_centers(self) -> np.ndarray:
        """(N, 3) camera centres in world coordinates, in photo order."""
        return np.array([pose.center for pose in self.poses], dtype=np.float64)


def render_sample_scene(out_dir: Path, config: SceneConfig | None = None, workers: int = 1,
                        novel_views: bool = False) -> SampleScene:  # fmt: skip
    """Render a sample scene's photos (in the config's layout) and write its ground truth.

    Writes ``out_dir/images/frame_000.jpg ...`` (JPEG with EXIF focal length, Make and Model) and
    ``out_dir/ground_truth.json`` (intrinsics and, per photo, the world-to-camera rotation and
    translation in the OpenCV / COLMAP convention plus the camera centre). The same config always
    produces the same bytes.

    Args:
        out_dir: folder to write into (created if missing).
        config: what to render; the defaults give the orbit layout's 32 photos of 320x240.
        workers: photos rendered at once, on threads (numpy releases the GIL in its array loops); the bytes are
            the same whatever the count.
        novel_views: also render the novel-view sweep (:mod:`spaceport.scene.novel_views`) into
            ``out_dir/novel_views/`` and list its poses in the ground truth's ``novel_views``.

    Returns:
        The scene's paths and ground truth.
    """
    config = config or SceneConfig()
    if config.images < 1 or config.width < 16 or config.height < 16 or config.supersampling < 1:
        raise ValueError(f"cannot render {config.images} images of {config.width}x{config.height}")
    out_dir = Path(out_dir)
    images_dir = out_dir / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    world = build_world(config.layout, config)
    noise = NoiseField(config.seed)
    poses = camera_poses(config)
    exif = camera_exif(config)
    gps = gps_fixes(config, poses) if config.gps else None
    rays = camera_directions(config)

    def render_photo(index: int) -> None:
        pose = poses[index]
        image = render_image(config, pose, world, noise, rays)
        photo_exif = exif if gps is None else exif_with_gps(config, gps.written[index])
        image.save(images_dir / pose.name, quality=config.jpeg_quality, exif=photo_exif, subsampling=0)

    sweep_views = sweep(poses, world) if novel_views else []

    def render_novel_view(index: int) -> None:
        pose = sweep_views[index].pose
        render_image(config, pose, world, noise, rays).save(out_dir / NOVEL_VIEWS_DIR / pose.name)

    if sweep_views:
        (out_dir / NOVEL_VIEWS_DIR).mkdir(exist_ok=True)
    _run_each(render_photo, len(poses), workers)
    _run_each(render_novel_view, len(sweep_views), workers)
    scene = SampleScene(out_dir, images_dir, out_dir / "ground_truth.json", config.width, config.height,
                        focal_length_px(config), poses)  # fmt: skip
    write_ground_truth(scene, config, gps, sweep_views)
    return scene


def _run_each(task: Callable[[int], None], count: int, workers: int) -> None:
    if workers <= 1:
        for index in range(count):
            task(index)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(task, range(count)))


def write_ground_truth(scene: SampleScene, config: SceneConfig, gps: GpsFixes | None = None,
                       novel_views: list[NovelView] | None = None) -> None:  # fmt: skip
    payload = {
        "convention": "x_cam = R @ x_world + t; camera looks along +z, x right, y down (OpenCV / COLMAP)",
        "world_up": [0.0, 0.0, 1.0],
        "camera": {
            "model": "PINHOLE",
            "width": scene.width,
            "height": scene.height,
            "fx": scene.focal_px,
            "fy": scene.focal_px,
            "cx": scene.width / 2,
            "cy": scene.height / 2,
        },
        "config": asdict(config),
        "images": [asdict(pose) for pose in scene.poses],
    }
    if gps is not None:
        payload["gps"] = gps.ground_truth(scene.poses)
    if novel_views:
        payload["novel_views"] = [{"kind": view.kind, **asdict(view.pose)} for view in novel_views]
    scene.ground_truth_file.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def load_sample_scene(root: Path) -> SampleScene:
    """Read back a rendered scene from its ``ground_truth.json``."""
    root = Path(root)
    payload = json.loads((root / "ground_truth.json").read_text(encoding="utf-8"))
    camera = payload["camera"]
    poses = [CameraPose(**item) for item in payload["images"]]
    return SampleScene(root, root / "images", root / "ground_truth.json", camera["width"], camera["height"],
                       camera["fx"], poses)  # fmt: skip
