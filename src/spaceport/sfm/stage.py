"""The sfm stage: photos to a COLMAP model with pinhole cameras and matching images (pycolmap 4.2.1, CPU).

Steps: intake (upright 8-bit RGB, downscaled), SIFT extraction, matching (exhaustive, or a bounded number of
pairs per photo chosen by GPS or by capture order with loop closure: ``pairing``), mapping (incremental or
global), georeferencing (``georef``: east-north-up metres from the photos' GPS, else z up from the cameras) and
undistortion to PINHOLE when the estimated camera has distortion.
Output: ``sparse/0`` (binary COLMAP model), ``images/<relative name>``, ``georef.json`` and ``manifest.json``.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from spaceport.contract import StageError, begin_output, timed, write_manifest
from spaceport.sfm.georef import GEOREF_FILE, GeorefConfig, apply_registration, register, write_georef
from spaceport.sfm.intake import IntakeResult, intake_folder
from spaceport.sfm.pairing import PairingConfig, choose_method, match_pairs
from spaceport.sfm.progress import SfmProgress

logger = logging.getLogger("spaceport.sfm")

MATCHERS = ("auto", "exhaustive", "sequential", "spatial")
MAPPERS = ("incremental", "global")
CAMERA_MODELS = ("SIMPLE_RADIAL", "RADIAL", "OPENCV", "SIMPLE_PINHOLE", "PINHOLE")


@dataclass(frozen=True)
class SfmConfig:
    """How to reconstruct.

    Attributes:
        max_image_size: longest side of the images after intake (also what training sees).
        matcher: ``auto`` picks exhaustive up to ``exhaustive_limit`` images, else spatial when photos carry GPS,
            else sequential with loop closure (``pairing``).
        mapper: ``incremental`` (COLMAP) or ``global`` (GLOMAP, built into COLMAP 4).
        min_registered_ratio: fail when fewer of the photos than this end up in the model.
        camera_model: COLMAP camera model to estimate.
        min_images: fewer accepted photos than this cannot make a model.
        exhaustive_limit: most photos for which ``auto`` matches every pair.
        pairing: how many pairs each photo gets beyond that (``PairingConfig``).
        max_num_features: SIFT features per image.
        num_threads: worker threads; 0 uses every core this process may run on.
        seed: COLMAP's random seed, for runs as repeatable as COLMAP allows.
        georef: deliver the model georeferenced (GPS) or at least upright; False keeps SfM's frame.
        fallback_to_global: when incremental mapping leaves more photos out than ``min_registered_ratio``
            allows, map again with the global mapper and keep whichever model holds more photos.
        ba_global_growth: how much the incremental model grows (in photos, and in points) between two global
            bundle adjustments: COLMAP's 1.1 up to ``exhaustive_limit`` photos.
        large_capture_ba_global_growth: the same beyond ``exhaustive_limit`` photos: 1.4, COLMAP's own setting for
            video. Measured on the 512-photo captures' databases, mapped both ways: 1.5x (grid) and 1.9x (walk)
            faster with the same photos registered, the same points and reprojection error, and camera centres as
            close to the truth (grid 0.021 % of the extent either way; walk 1.0 % instead of 2.0 %); in the
            scaling suite (benchmarks/RESULTS.md), the walk's mapping grows as photos^1.60 instead of ^1.89.
    """

    max_image_size: int = 1600
    matcher: str = "auto"
    mapper: str = "incremental"
    min_registered_ratio: float = 0.5
    camera_model: str = "SIMPLE_RADIAL"
    min_images: int = 3
    exhaustive_limit: int = 100
    pairing: PairingConfig = PairingConfig()
    max_num_features: int = 8192
    num_threads: int = 0
    seed: int = 0
    georef: bool = True
    fallback_to_global: bool = True
    ba_global_growth: float = 1.1
    large_capture_ba_global_growth: float = 1.4

    def __post_init__(self) -> None:
        if self.matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {MATCHERS}, not {self.matcher!r}")
        if self.mapper not in MAPPERS:
            raise ValueError(f"mapper must be one of {MAPPERS}, not {self.mapper!r}")
        if self.camera_model not in CAMERA_MODELS:
            raise ValueError(f"camera model must be one of {CAMERA_MODELS}, not {self.camera_model!r}")
        if not 0.0 <= self.min_registered_ratio <= 1.0:
            raise ValueError("min_registered_ratio must lie in [0, 1]")

    @property
    def threads(self) -> int:
        return self.num_threads if self.num_threads > 0 else len(os.sched_getaffinity(0))


@dataclass
class SfmResult:
    """What the stage produced; ``figures`` is what went into the manifest."""

    output_dir: Path
    figures: dict[str, Any]


def choose_matcher(config: SfmConfig, intake: IntakeResult) -> str:
    """Exhaustive for small sets (every pair, most robust); beyond that neighbours in space or in name order."""
    with_gps = sum(image.has_gps for image in intake.images)
    return choose_method(config.matcher, len(intake.images), with_gps, config.exhaustive_limit, config.pairing)


def extract_features(database: Path, images_dir: Path, intake: IntakeResult, config: SfmConfig) -> None:
    """SIFT on the CPU; COLMAP takes each camera's focal prior from EXIF itself when present."""
    import pycolmap

    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = config.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = config.threads
    extraction.max_image_size = config.max_image_size
    extraction.sift.max_num_features = config.max_num_features
    mode = pycolmap.CameraMode.SINGLE if intake.single_camera else pycolmap.CameraMode.AUTO
    pycolmap.extract_features(
        database,
        images_dir,
        image_names=[image.name for image in intake.images],
        camera_mode=mode,
        reader_options=reader,
        extraction_options=extraction,
        device=pycolmap.Device.cpu,
    )


def map_images(database: Path, images_dir: Path, models_dir: Path, config: SfmConfig,
               progress: SfmProgress | None = None):  # fmt: skip
    """Run the mapper and return the model with the most registered images (None when there is none); the
    incremental mapper reports each photo it registers to ``progress``."""
    import pycolmap

    pycolmap.set_random_seed(config.seed)
    models_dir.mkdir(parents=True, exist_ok=True)
    if config.mapper == "global":
        options = pycolmap.GlobalPipelineOptions()
        options.num_threads = config.threads
        options.random_seed = config.seed
        # The CPU wheel has no CUDA solvers; asking for them only produces warnings.
        options.mapper.global_positioning.use_gpu = False
        options.mapper.bundle_adjustment.ceres.use_gpu = False
        if focal_from_exif(database):
            # A forward-moving capture barely constrains the focal length, and bundle adjustment trades it for
            # distortion and depth: on OpenSfM's Lund walk it drifted from EXIF's 1035 px to 738 (a 70 degree
            # field of view instead of 53), so every render of the model was stretched. EXIF's is right to a few %.
            options.mapper.bundle_adjustment.refine_focal_length = False
            options.mapper.bundle_adjustment.refine_extra_params = False
        models = pycolmap.global_mapping(database, images_dir, models_dir, options)
    else:
        options = pycolmap.IncrementalPipelineOptions()
        options.num_threads = config.threads
        options.random_seed = config.seed
        options.ba_global_frames_ratio = config.ba_global_growth
        options.ba_global_points_ratio = config.ba_global_growth
        callbacks = {"initial_image_pair_callback": progress.initial_pair,
                     "next_image_callback": progress.next_image} if progress else {}  # fmt: skip
        models = pycolmap.incremental_mapping(database, images_dir, models_dir, options, **callbacks)
    if not models:
        return None
    return max(models.values(), key=lambda model: (model.num_reg_images(), model.num_points3D()))


def focal_from_exif(database: Path) -> bool:
    """Every camera in the database took its focal length from the photos' EXIF."""
    import pycolmap

    opened = pycolmap.Database.open(str(database))
    try:
        cameras = opened.read_all_cameras()
    finally:
        opened.close()
    return bool(cameras) and all(camera.has_prior_focal_length for camera in cameras)


def map_with_fallback(  # noqa: ANN201
    database: Path, images_dir: Path, work_dir: Path, config: SfmConfig, total: int, progress: SfmProgress | None = None
):
    """The configured mapper's model, or the global mapper's when the incremental one left too many photos out.

    Incremental mapping grows the model from one initial pair and can stall on a capture that moves mostly
    forward (measured: OpenSfM's 29-photo Lund street walk registered 2 or 3 photos in four runs out of five, its
    initial pair's focal length running off to 6,900 px); global mapping solves all rotations and positions at once
    and registered all 29 every time, with the focal length held at EXIF's when every camera has one. Returns the
    model (or None) and the mapper that made it.
    """
    if total > config.exhaustive_limit:
        config = replace(config, ba_global_growth=config.large_capture_ba_global_growth)
    model = map_images(database, images_dir, work_dir / "models", config, progress)
    registered = model.num_reg_images() if model is not None else 0
    enough = registered >= config.min_registered_ratio * total
    if enough or config.mapper != "incremental" or not config.fallback_to_global:
        return model, config.mapper
    logger.warning("incremental mapping registered %d of %d photos; trying the global mapper", registered, total)
    fallback = map_images(database, images_dir, work_dir / "models-global", replace(config, mapper="global"), progress)
    if fallback is not None and fallback.num_reg_images() > registered:
        return fallback, "global"
    return model, config.mapper


# The camera models training reads (spaceport.train.data refuses any other by name).
PINHOLE_MODELS = ("SIMPLE_PINHOLE", "PINHOLE")


def has_distortion(reconstruction) -> bool:
    for camera in reconstruction.cameras.values():
        if any(abs(camera.params[index]) > 0 for index in camera.extra_params_idxs()):
            return True
    return False


def pinhole_when_undistorted(reconstruction) -> None:
    """Rewrite, in place, a camera whose distortion model has every term at 0 as the pinhole camera it is.

    The global mapper can leave SIMPLE_RADIAL's k at exactly 0; COLMAP's undistorter copies such a camera as it is,
    and training refuses the model by name.
    """
    import pycolmap

    for camera in reconstruction.cameras.values():
        if camera.model.name in PINHOLE_MODELS or any(camera.params[i] != 0 for i in camera.extra_params_idxs()):
            continue
        fx, fy = camera.focal_length_x, camera.focal_length_y
        cx, cy = camera.principal_point_x, camera.principal_point_y
        if fx == fy:
            camera.model, camera.params = pycolmap.CameraModelId.SIMPLE_PINHOLE, [fx, cx, cy]
        else:
            camera.model, camera.params = pycolmap.CameraModelId.PINHOLE, [fx, fy, cx, cy]


def write_outputs(reconstruction, images_dir: Path, work_dir: Path, output_dir: Path) -> str:
    """Pinhole model in ``sparse/0`` and its images in ``images/`` (undistorted when the camera distorts); returns
    the camera model written."""
    import pycolmap

    sparse_dir = output_dir / "sparse" / "0"
    output_images = output_dir / "images"
    for stale in (output_dir / "sparse", output_images):
        shutil.rmtree(stale, ignore_errors=True)
    sparse_dir.mkdir(parents=True)
    pinhole_when_undistorted(reconstruction)
    if has_distortion(reconstruction):
        model_dir = work_dir / "model"
        model_dir.mkdir(parents=True, exist_ok=True)
        reconstruction.write(model_dir)
        undistorted = work_dir / "undistorted"
        pycolmap.undistort_images(undistorted, model_dir, images_dir, output_type="COLMAP")
        pinhole = pycolmap.Reconstruction(undistorted / "sparse")
        pinhole.write(sparse_dir)
        shutil.move(undistorted / "images", output_images)
        return "PINHOLE"
    reconstruction.write(sparse_dir)
    for image in reconstruction.images.values():
        if image.has_pose:
            target = output_images / image.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(images_dir / image.name, target)
    return next(iter(reconstruction.cameras.values())).model.name


def check_registration(registered: int, total: int, config: SfmConfig, skipped: int) -> None:
    ratio = registered / total if total else 0.0
    if ratio < config.min_registered_ratio:
        raise StageError(
            f"only {registered} of {total} images registered ({ratio:.0%}); at least "
            f"{config.min_registered_ratio:.0%} required: the photos need more overlap (each spot seen from "
            f"several nearby positions), steady exposure and textured surfaces"
            + (f"; {skipped} more files could not be read" if skipped else "")
        )


def validated_image_names(images_dir: Path) -> list[str]:
    """The photos the shared validator accepts (the same check as the CLI and the validate Lambda).

    Raises:
        StageError: the input is rejected; the reason names each problem.
    """
    from spaceport.validation import validate_path

    report = validate_path(images_dir)
    for issue in report.warnings:
        logger.warning("validation: %s %s: %s", issue.code, issue.path, issue.message)
    if not report.accepted:
        problems = "; ".join(f"{issue.code} {issue.path}: {issue.message}".strip() for issue in report.problems)
        raise StageError(f"the input was rejected: {problems}")
    return report.image_paths


def run_sfm(images_dir: Path, output_dir: Path, work_dir: Path, config: SfmConfig | None = None) -> SfmResult:
    """Reconstruct cameras and sparse points from the photos in ``images_dir``.

    Args:
        images_dir: the photos, in nested folders if need be; names in the model are paths relative to it.
        output_dir: receives ``sparse/0``, ``images/`` and, last, ``manifest.json``.
        work_dir: scratch space (database, intake copies, undistortion).
        config: options; defaults suit a few dozen to a few hundred phone or drone photos.

    Returns:
        The output folder and the manifest's figures.

    Raises:
        StageError: too few readable photos, no model, or too few photos registered (message for the user).
    """
    config = config or SfmConfig()
    seconds: dict[str, float] = {}
    begin_output(output_dir)
    intake_dir, database = work_dir / "images", work_dir / "database.db"
    # A reused work folder must not leak an earlier run's photos, matches or models into this one.
    for stale in ("images", "models", "models-global", "model", "undistorted"):
        shutil.rmtree(work_dir / stale, ignore_errors=True)
    for stale_file in (database, work_dir / "vocabulary.bin"):
        stale_file.unlink(missing_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    with timed(seconds, "validation"):
        usable = validated_image_names(images_dir)
    with timed(seconds, "intake"):
        intake = intake_folder(images_dir, intake_dir, config.max_image_size, usable, workers=config.threads)
    if len(intake.images) < config.min_images:
        raise StageError(
            f"found {len(intake.images)} readable images in the input; at least {config.min_images} are needed"
            + (f" ({len(intake.skipped)} files could not be read)" if intake.skipped else "")
        )
    progress = SfmProgress(len(intake.images))
    progress.phase("extraction")
    with timed(seconds, "extraction"):
        extract_features(database, intake_dir, intake, config)
    matcher = choose_matcher(config, intake)
    progress.phase("matching")
    with timed(seconds, "matching"):
        matching = match_pairs(database, matcher, work_dir, config.pairing, config.threads)
    progress.phase("mapping")
    with timed(seconds, "mapping"):
        model, mapper = map_with_fallback(database, intake_dir, work_dir, config, len(intake.images), progress)
    if model is None or model.num_reg_images() == 0:
        raise StageError(
            f"no model could be built from {len(intake.images)} images: too few features matched between "
            "photos; they need more overlap and textured surfaces"
        )
    progress.mapped(model.num_reg_images())
    check_registration(model.num_reg_images(), len(intake.images), config, len(intake.skipped))
    progress.phase("georeferencing")
    with timed(seconds, "georeferencing"):
        # Before undistortion, so sparse/0 and everything trained from it share the frame.
        registration = register(model, images_dir, GeorefConfig(enabled=config.georef))
        apply_registration(model, registration)
    for warning in registration.document["warnings"]:
        logger.warning("georef: %s", warning)
    estimated_model = next(iter(model.cameras.values())).model.name
    progress.phase("undistortion")
    with timed(seconds, "undistortion"):
        written_model = write_outputs(model, intake_dir, work_dir, output_dir)
    write_georef(output_dir / GEOREF_FILE, registration)
    figures = {
        "registered_images": model.num_reg_images(),
        "total_images": len(intake.images),
        "skipped_files": intake.skipped,
        "points": model.num_points3D(),
        "mean_reprojection_error_px": round(model.compute_mean_reprojection_error(), 4),
        "camera_model": written_model,
        "estimated_camera_model": estimated_model,
        "cameras": model.num_cameras(),
        "matcher": matcher,
        "matching": matching.to_dict(),
        "mapper": mapper,
        "max_image_size": config.max_image_size,
        "georef": registration.summary(),
        "seconds": seconds,
    }
    write_manifest(output_dir, "sfm", figures)
    logger.info("sfm: %d of %d images registered, %d points, frame: %s", figures["registered_images"],
                figures["total_images"], figures["points"], registration.method)  # fmt: skip
    return SfmResult(output_dir, figures)
