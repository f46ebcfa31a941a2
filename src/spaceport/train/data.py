"""The training data: the sfm stage's COLMAP model and its undistorted images, read with pycolmap 4.2.

Layout of the ``sfm`` channel: ``sparse/0/{cameras,images,points3D}.bin`` (plus pycolmap 4's rigs and
frames) and ``images/<name>``. Cameras must be pinhole (the sfm stage undistorts); poses are COLMAP's
world-to-camera transforms (OpenCV axes: x right, y down, z forward), which is what the rasterisers take.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from spaceport.contract import StageError
from spaceport.train.config import scaled_size

if TYPE_CHECKING:
    import torch

# Every 8th image (in name order) is held out for evaluation: the Mip-NeRF 360 convention.
TEST_EVERY = 8
PINHOLE_MODELS = ("PINHOLE", "SIMPLE_PINHOLE")


@dataclass
class CameraView:
    """One posed photo at one resolution.

    Attributes:
        name: the image's name in the COLMAP model.
        image: (H, W, 3) float32 in [0, 1], on the training device.
        K: (3, 3) intrinsics for this resolution.
        viewmat: (4, 4) world-to-camera.
        width: image width in pixels.
        height: image height in pixels.
    """

    name: str
    image: torch.Tensor
    K: torch.Tensor
    viewmat: torch.Tensor
    width: int
    height: int

    @property
    def camera_center(self) -> torch.Tensor:
        rotation, translation = self.viewmat[:3, :3], self.viewmat[:3, 3]
        return -rotation.T @ translation


@dataclass(frozen=True)
class PosedImage:
    """A registered photo: where it is, its camera, and the SfM points it observed (for floater checks)."""

    name: str
    path: Path
    K: np.ndarray
    viewmat: np.ndarray
    width: int
    height: int
    observed_points: np.ndarray  # (M, 3) world positions of the 3D points this photo's features triangulated


def split_names(names: list[str]) -> tuple[list[str], list[str]]:
    """(train, test) names: sorted by name, index % 8 == 0 is a test view."""
    ordered = sorted(names)
    test = [name for index, name in enumerate(ordered) if index % TEST_EVERY == 0]
    train = [name for index, name in enumerate(ordered) if index % TEST_EVERY != 0]
    return train, test


def _read_model(sfm_dir: Path):  # noqa: ANN202 - pycolmap is imported lazily
    import pycolmap

    sparse = sfm_dir / "sparse" / "0"
    if not (sparse / "cameras.bin").is_file() and not (sparse / "cameras.txt").is_file():
        raise StageError(f"no COLMAP model in {sparse} (expected cameras.bin, images.bin, points3D.bin)")
    try:
        return pycolmap.Reconstruction(str(sparse))
    except Exception as error:  # pycolmap raises bare RuntimeErrors on corrupt files
        raise StageError(f"cannot read the COLMAP model in {sparse}: {error}") from error


def _intrinsics(camera, image_name: str) -> np.ndarray:  # noqa: ANN001
    model = camera.model.name
    if model not in PINHOLE_MODELS:
        raise StageError(
            f"camera {camera.camera_id} of {image_name} uses the {model} model; training needs undistorted "
            f"{' or '.join(PINHOLE_MODELS)} cameras (run COLMAP's image undistorter in the sfm stage)"
        )
    return np.asarray(camera.calibration_matrix(), dtype=np.float64)


def _posed_images(reconstruction, images_dir: Path) -> list[PosedImage]:  # noqa: ANN001
    posed = []
    for image in reconstruction.images.values():
        if not image.has_pose:
            continue
        camera = reconstruction.cameras[image.camera_id]
        path = images_dir / image.name
        if not path.is_file():
            raise StageError(f"image {image.name} of the COLMAP model is missing from {images_dir}")
        viewmat = np.eye(4)
        viewmat[:3, :] = image.cam_from_world().matrix()
        posed.append(PosedImage(image.name, path, _intrinsics(camera, image.name), viewmat, int(camera.width),
                                int(camera.height), _observed_points(reconstruction, image)))  # fmt: skip
    if len(posed) < 2:
        raise StageError(f"the COLMAP model has {len(posed)} posed image(s); training needs at least 2")
    return sorted(posed, key=lambda item: item.name)


@dataclass
class SceneData:
    """Train and test views at the training resolution, the SfM points, and the test photos' full-size sources.

    Held-out views are scored at the training resolution, as 3DGS does: a model trained at 480 px cannot be
    asked for detail at 4000 px. ``full_size_test`` lets a caller score the full-size photos as well, one view
    at a time (a 12 MP view is 144 MB as float32).
    """

    train_views: list[CameraView]
    test_views: list[CameraView]
    points: np.ndarray  # (P, 3) float32 world positions
    colors: np.ndarray  # (P, 3) float32 in [0, 1]
    extent: float  # radius that covers the training cameras' centres, the scene's length scale
    full_size_test: list[PosedImage] = field(default_factory=list)
    train_sources: list[PosedImage] = field(default_factory=list)


def _observed_points(reconstruction, image) -> np.ndarray:  # noqa: ANN001
    ids = [point.point3D_id for point in image.points2D if point.has_point3D()]
    return np.array([reconstruction.points3D[i].xyz for i in ids], dtype=np.float32).reshape(-1, 3)


def load_view(posed: PosedImage, resolution: int, device: str) -> CameraView:
    """One photo as a view whose longest side is at most ``resolution`` (0: full size)."""
    import torch

    with Image.open(posed.path) as opened:
        picture = opened.convert("RGB")
    if picture.size != (posed.width, posed.height):
        raise StageError(f"{posed.name} is {picture.size[0]}x{picture.size[1]} but its camera says "
                         f"{posed.width}x{posed.height}")  # fmt: skip
    width, height = scaled_size(posed.width, posed.height, resolution)
    K = posed.K.copy()
    if (width, height) != picture.size:
        # COLMAP's pixel coordinates put the image's corner at 0, so scaling fx, fy, cx, cy is exact.
        K[0] *= width / posed.width
        K[1] *= height / posed.height
        picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(picture, dtype=np.float32) / 255.0
    as_tensor = lambda array: torch.as_tensor(array, dtype=torch.float32, device=device)  # noqa: E731
    return CameraView(posed.name, as_tensor(pixels), as_tensor(K), as_tensor(posed.viewmat), width, height)


def camera_extent(viewmats: list[np.ndarray]) -> float:
    """1.1 x the largest distance of a camera centre from their mean (the 3DGS "cameras extent")."""
    centers = np.stack([-m[:3, :3].T @ m[:3, 3] for m in viewmats])
    radius = float(np.linalg.norm(centers - centers.mean(axis=0), axis=1).max())
    return 1.1 * radius if radius > 0 else 1.0


def load_scene(sfm_dir: Path, resolution: int, device: str) -> SceneData:
    """Read the model, split train / test, load both at ``resolution`` (0: full size).

    Raises:
        StageError: no model, non-pinhole cameras, missing images, or no 3D points.
    """
    reconstruction = _read_model(sfm_dir)
    posed = _posed_images(reconstruction, sfm_dir / "images")
    train_names, test_names = split_names([item.name for item in posed])
    by_name = {item.name: item for item in posed}
    points = [(point.xyz, point.color) for point in reconstruction.points3D.values()]
    if not points:
        raise StageError(f"the COLMAP model in {sfm_dir / 'sparse' / '0'} has no 3D points to start from")
    xyz = np.array([p[0] for p in points], dtype=np.float32)
    rgb = np.array([p[1] for p in points], dtype=np.float32) / 255.0
    return SceneData(
        train_views=[load_view(by_name[name], resolution, device) for name in train_names],
        test_views=[load_view(by_name[name], resolution, device) for name in test_names],
        points=xyz,
        colors=rgb,
        # The training cameras only, as 3DGS: held-out photos must not shape how the scene is trained.
        extent=camera_extent([by_name[name].viewmat for name in train_names]),
        full_size_test=[by_name[name] for name in test_names],
        train_sources=[by_name[name] for name in train_names],
    )
