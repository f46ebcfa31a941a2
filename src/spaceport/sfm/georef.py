"""Upright, metric and georeferenced: the frame a reconstruction is delivered in (pycolmap 4.2.1).

Structure from motion leaves a model in an arbitrary frame: arbitrary orientation, arbitrary scale, nowhere on
Earth. This module chooses the frame the sfm stage writes, so that ``sparse/0`` and everything trained from it
share it:

- **gps**: when at least 3 registered photos carry EXIF GPS whose positions are not all in one spot or on one
  line, a similarity transform from the SfM camera centres to a local east-north-up frame in metres is fitted
  robustly (LO-RANSAC, as ``pycolmap.align_reconstruction_to_locations`` does, then least squares on the
  inliers). Fixes farther than a threshold from the fit are named and left out. The origin is a point near the
  scene, rounded so that it is easy to quote. A fit whose RMS residual is too large is reported and not applied.
- **upright**: otherwise the vertical is estimated from the cameras (photos are mostly taken level, so their x
  axes are horizontal whatever their pitch; an orbit's path is level too) and the model is rotated so z is up,
  with the scale left as SfM made it.
- **none**: ``--no-georef`` keeps the frame SfM chose.

``georef.json`` (``Registration.document``) says which, with the origin, the scale, the residuals and the photos
used and rejected; its ``transform`` maps the SfM mapper's frame to the delivered one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.contract import write_json_atomic
from spaceport.transform import Similarity, rotation_between

logger = logging.getLogger("spaceport.sfm")

GEOREF_FILE = "georef.json"
GEOREF_VERSION = 1
METHODS = ("gps", "upright", "none")
GPS_IFD = 0x8825
TAG_LATITUDE_REF, TAG_LATITUDE, TAG_LONGITUDE_REF, TAG_LONGITUDE = 1, 2, 3, 4
TAG_ALTITUDE_REF, TAG_ALTITUDE = 5, 6
# Upright photos' x axes are horizontal; they pin the vertical when the second-smallest spread of those axes is
# clearly above the smallest (the photos face several ways, or at least turn a little).
RIGHT_AXES_SEPARATION = 4.0
# ... and when that second spread shows a real turn (about a degree RMS): x axes that all lie along one line, as in
# a lawn-mower flight whose strips face opposite ways, differ only by reconstruction noise, which points anywhere.
RIGHT_AXES_MIN_SECOND_SPREAD = 1e-4
# An orbit-like path: centres spread in two directions (not a line) and much less in the third.
PATH_MIN_SECOND_SPREAD, PATH_MAX_FLATNESS = 0.05, 0.25
# Beyond this angle from the photos' vertical, a camera path is not level (a slope, a stair) and is left out.
PATH_MAX_TILT_DEG = 10.0
# Cameras look down at a scene more often than up: the forward axes' weight in choosing the sign of up.
FORWARD_SIGN_WEIGHT = 0.5
# The manifest (and so the cloud's job record, a DynamoDB item under 400 KB) keeps at most this many names.
MANIFEST_NAME_LIMIT = 20
# Photos named in one warning; georef.json lists every one.
WARNING_NAME_LIMIT = 5
ALTITUDE_REFERENCE = (
    "EXIF GPSAltitude: metres above mean sea level as EXIF defines it; the local frame treats it as the "
    "ellipsoidal height, which moves points inside a scene by less than 1e-5 of their distance from the origin"
)
# What the origin's height is measured from, said plainly: EXIF altitudes are above mean sea level (the geoid), the
# globe (ECEF, 3D Tiles) wants heights above the WGS 84 ellipsoid, and no geoid model is applied here (none can be
# fetched offline), so the ellipsoidal height stays unknown (ellipsoidal_height_m: null).
HEIGHT_REFERENCE = "mean sea level"
HEIGHT_NOTE = (
    "altitude_m is metres above mean sea level (EXIF GPSAltitude); no geoid model is applied, so the height above "
    "the WGS 84 ellipsoid is not known. Placed on the globe with altitude_m as its ellipsoidal height, the scene "
    "sits off vertically by the local geoid undulation (between -106 and +85 m on Earth); spaceport export "
    "--geoid-undulation N places it at altitude_m + N above the ellipsoid"
)


@dataclass(frozen=True)
class GeorefConfig:
    """How to choose the frame.

    Attributes:
        enabled: False keeps the frame SfM chose (``--no-georef``).
        outlier_threshold_m: a photo whose GPS fix lies farther than this from the fit is named and left out.
        max_rms_m: a fit whose RMS residual (over the fixes used) exceeds this is reported and not applied.
        max_rms_fraction: likewise above this fraction of the fixes' spread (RMS distance from their centroid):
            on a small walk, metres of GPS noise make scale and heading meaningless.
        min_fixes: registered photos with GPS needed for a fit.
        min_spread_m: fixes all within this distance of one another (a phone indoors), or this close to one
            line, cannot fix an orientation.
        min_off_line_per_rms: nor can fixes whose distance from their best line (RMS) is under this many times
            the fit's RMS residual: the noise would tilt the scene about that line (a walk along a street).
        origin_decimals: decimal places of the origin's latitude and longitude (4: about 11 m).
        seed: RANSAC's random seed, for repeatable fits.
    """

    enabled: bool = True
    outlier_threshold_m: float = 5.0
    max_rms_m: float = 3.0
    max_rms_fraction: float = 0.1
    min_fixes: int = 3
    min_spread_m: float = 1.0
    min_off_line_per_rms: float = 3.0
    origin_decimals: int = 4
    seed: int = 0


@dataclass(frozen=True)
class GpsFix:
    """One photo's EXIF position: WGS 84 latitude and longitude in degrees, altitude in metres."""

    latitude: float
    longitude: float
    altitude: float


@dataclass
class Cameras:
    """What the estimators need from a model: registered photos' names, rotations and centres.

    Attributes:
        names: image names, in the model's name order.
        rotations: (N, 3, 3) ``cam_from_world`` rotations; rows are the camera's x (right), y (down) and z
            (forward) axes in the world.
        centres: (N, 3) camera centres.
    """

    names: list[str]
    rotations: np.ndarray
    centres: np.ndarray

    @classmethod
    def from_reconstruction(cls, reconstruction: Any) -> Cameras:
        images = sorted((image for image in reconstruction.images.values() if image.has_pose), key=lambda i: i.name)
        rotations = np.array([image.cam_from_world().rotation.matrix() for image in images]).reshape(-1, 3, 3)
        centres = np.array([image.projection_center() for image in images]).reshape(-1, 3)
        return cls([image.name for image in images], rotations, centres)


@dataclass
class UpEstimate:
    """The vertical seen by the cameras, in their frame, and which cues gave it."""

    up: np.ndarray
    cues: list[str]
    warnings: list[str] = field(default_factory=list)


class GpsUnusableError(Exception):
    """The photos' GPS cannot place the model; the message says why, ``figures`` what was measured."""

    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures = figures or {}


@dataclass
class GpsFit:
    """A similarity from the SfM frame to east-north-up metres around ``origin``, and how well it fits."""

    similarity: Similarity
    origin: GpsFix
    used: list[str]
    rejected: dict[str, float]
    residuals: dict[str, float]
    rms_m: float
    spread_m: float


@dataclass
class Registration:
    """The frame chosen for a model: the transform from the model's frame and ``georef.json``'s content."""

    method: str
    similarity: Similarity
    document: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """The figures for the stage manifest (and the cloud's job record): small, and no NaN."""
        keys = ("method", "georeferenced", "metric", "origin", "scale", "rms_m", "max_residual_m",
                "vertical_disagreement_deg", "warnings")  # fmt: skip
        summary = {key: self.document.get(key) for key in keys}
        photos = self.document.get("photos", {})
        rejected = photos.get("rejected", [])
        summary |= {
            "photos_with_gps": photos.get("with_gps"),
            "photos_used": photos.get("used"),
            "photos_rejected": len(rejected),
            "rejected": [item["name"] for item in rejected[:MANIFEST_NAME_LIMIT]],
        }
        return summary


# --------------------------------------------------------------------------------------------------
# EXIF GPS
# --------------------------------------------------------------------------------------------------


def _degrees(value: Any) -> float | None:
    """EXIF degrees, minutes, seconds (three rationals) as decimal degrees; None when malformed."""
    try:
        parts = [float(part) for part in value]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if len(parts) != 3 or not all(math.isfinite(part) for part in parts):
        return None
    return parts[0] + parts[1] / 60.0 + parts[2] / 3600.0


def _reference(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="ignore")
    return str(value or "").strip("\x00 ").upper()


def read_gps_fix(path: Path) -> GpsFix | None:
    """The photo's EXIF GPS position, or None when it has none, or only part of one (no altitude, say)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            gps = image.getexif().get_ifd(GPS_IFD)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return None
    latitude, longitude = _degrees(gps.get(TAG_LATITUDE)), _degrees(gps.get(TAG_LONGITUDE))
    try:
        altitude = float(gps[TAG_ALTITUDE]) if TAG_ALTITUDE in gps else None
    except (TypeError, ValueError, ZeroDivisionError):
        altitude = None
    if latitude is None or longitude is None or altitude is None or not math.isfinite(altitude):
        return None
    # A receiver without a fix writes zeros; no survey happens at 0 N 0 E.
    if latitude == 0.0 and longitude == 0.0:
        return None
    if _reference(gps.get(TAG_LATITUDE_REF)) == "S":
        latitude = -latitude
    if _reference(gps.get(TAG_LONGITUDE_REF)) == "W":
        longitude = -longitude
    below_sea_level = gps.get(TAG_ALTITUDE_REF) in (1, b"\x01", "\x01")
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        return None
    return GpsFix(latitude, longitude, -altitude if below_sea_level else altitude)


def read_gps_fixes(images_dir: Path, names: list[str]) -> dict[str, GpsFix]:
    """The GPS fixes of the photos ``names`` (paths relative to ``images_dir``) that carry one."""
    fixes = {}
    for name in names:
        fix = read_gps_fix(images_dir / name)
        if fix is not None:
            fixes[name] = fix
    return fixes


def _gps_transform() -> Any:
    import pycolmap

    # pycolmap's default ellipsoid is GRS80; GPS reports WGS 84.
    return pycolmap.GPSTransform(pycolmap.GPSTransformEllipsoid.WGS84)


def to_enu(fixes: list[GpsFix], origin: GpsFix) -> np.ndarray:
    """(N, 3) east, north, up metres of ``fixes`` around ``origin``."""
    lat_lon_alt = np.array([[fix.latitude, fix.longitude, fix.altitude] for fix in fixes], dtype=np.float64)
    return _gps_transform().ellipsoid_to_enu(lat_lon_alt, origin.latitude, origin.longitude, origin.altitude)


def from_enu(points: np.ndarray, origin: GpsFix) -> list[GpsFix]:
    """The WGS 84 positions of east, north, up points around ``origin``."""
    lat_lon_alt = _gps_transform().enu_to_ellipsoid(np.asarray(points, dtype=np.float64).reshape(-1, 3),
                                                    origin.latitude, origin.longitude, origin.altitude)  # fmt: skip
    return [GpsFix(*map(float, row)) for row in lat_lon_alt]


# --------------------------------------------------------------------------------------------------
# The vertical from the cameras
# --------------------------------------------------------------------------------------------------


def _angle_deg(first: np.ndarray, second: np.ndarray) -> float:
    cosine = float(first @ second / (np.linalg.norm(first) * np.linalg.norm(second)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def _line_angle_deg(first: np.ndarray, second: np.ndarray) -> float:
    """Angle between two lines (directions without sign), 0 to 90 degrees."""
    angle = _angle_deg(first, second)
    return min(angle, 180.0 - angle)


def _level_path_normal(centres: np.ndarray) -> np.ndarray | None:
    """The normal of an orbit-like camera path (centres spread over a plane), or None for a line or a cloud."""
    if len(centres) < 4:
        return None
    centred = centres - centres.mean(axis=0)
    spreads, axes = np.linalg.eigh(centred.T @ centred / len(centres))
    if spreads[2] <= 0 or spreads[1] < PATH_MIN_SECOND_SPREAD * spreads[2]:
        return None
    if spreads[0] > PATH_MAX_FLATNESS * spreads[1]:
        return None
    return axes[:, 0]


def estimate_up(cameras: Cameras) -> UpEstimate:
    """The world's up direction in the cameras' frame, from how photos are usually taken.

    Photos are mostly taken level: a camera's x axis is horizontal whatever its pitch, so up is the direction
    most nearly perpendicular to every x axis (the least eigenvector of their scatter). An orbit's camera path is
    level as well; when it agrees with the x axes (within ``PATH_MAX_TILT_DEG``) both are used. The sign comes
    from the image-up vectors, helped by the forward axes (cameras look down more often than up), so nadir
    drone photos, whose image-up vectors are horizontal, get it right too.
    """
    rights, image_ups, forwards = cameras.rotations[:, 0], -cameras.rotations[:, 1], cameras.rotations[:, 2]
    count = len(rights)
    spreads, axes = np.linalg.eigh(rights.T @ rights / count)
    turned = spreads[1] > max(RIGHT_AXES_SEPARATION * spreads[0], RIGHT_AXES_MIN_SECOND_SPREAD * spreads[2])
    from_rights = axes[:, 0] if turned else None
    path_normal = _level_path_normal(cameras.centres)
    warnings: list[str] = []
    if from_rights is not None and path_normal is not None:
        tilt = _line_angle_deg(from_rights, path_normal)
        if tilt <= PATH_MAX_TILT_DEG:
            # Equal say: the x axes' scatter scaled so its second direction weighs 1, like the path's plane.
            combined = rights.T @ rights / count / spreads[1] + (np.eye(3) - np.outer(path_normal, path_normal))
            up, cues = np.linalg.eigh(combined)[1][:, 0], ["level photos (camera x axes)", "level camera path"]
        else:
            up, cues = from_rights, ["level photos (camera x axes)"]
            warnings.append(f"the camera path is tilted {tilt:.1f} deg from the photos' vertical; it was left out")
    elif from_rights is not None:
        up, cues = from_rights, ["level photos (camera x axes)"]
    elif path_normal is not None:
        up, cues = path_normal, ["level camera path"]
    else:
        up, cues = image_ups.mean(axis=0), ["mean image up"]
        warnings.append("the photos give no reliable vertical (all face one way); it is a rough guess")
    up = up / np.linalg.norm(up)
    if (image_ups @ up).sum() - FORWARD_SIGN_WEIGHT * (forwards @ up).sum() < 0:
        up = -up
    return UpEstimate(up, cues, warnings)


def upright_similarity(up: np.ndarray, centre: np.ndarray) -> Similarity:
    """Turns ``up`` onto +z (the smallest rotation) and puts ``centre`` at the origin; scale unchanged."""
    rotation = rotation_between(up, np.array([0.0, 0.0, 1.0]))
    return Similarity(1.0, rotation, -(rotation @ np.asarray(centre, dtype=np.float64)))


# --------------------------------------------------------------------------------------------------
# The GPS fit
# --------------------------------------------------------------------------------------------------


def _line_spread(points: np.ndarray) -> tuple[float, float]:
    """RMS distance of points from their centroid, and from their best-fitting line."""
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    count = len(points)
    total = math.sqrt(float((singular**2).sum()) / count)
    off_line = math.sqrt(float((singular[1:] ** 2).sum()) / count)
    return total, off_line


def _check_geometry(enu: np.ndarray, config: GeorefConfig, which: str, noise_m: float = 0.0) -> None:
    """Fixes in one spot, or along one line (against their noise ``noise_m``), leave the rotation undetermined."""
    if np.linalg.norm(enu - np.median(enu, axis=0), axis=1).max() < config.min_spread_m:
        raise GpsUnusableError(f"all {len(enu)} {which} GPS fixes lie within {config.min_spread_m:g} m of one "
                               "another (as from a phone indoors): they cannot orient the scene")  # fmt: skip
    off_line = _line_spread(enu)[1]
    if off_line < max(config.min_spread_m, config.min_off_line_per_rms * noise_m):
        noise = f" against {noise_m:.2f} m of noise" if noise_m else ""
        raise GpsUnusableError(f"the {len(enu)} {which} GPS fixes lie on a line ({off_line:.2f} m RMS off it{noise}): "
                               "they cannot fix the rotation about it")  # fmt: skip


def _robust_similarity(centres: np.ndarray, enu: np.ndarray, config: GeorefConfig) -> Similarity:
    """LO-RANSAC over the camera centres, inliers within ``outlier_threshold_m`` of their fix (metres)."""
    import pycolmap

    options = pycolmap.RANSACOptions()
    options.max_error = config.outlier_threshold_m
    options.random_seed = config.seed
    # pycolmap 4.2.1 returns {tgt_from_src, num_inliers, inlier_mask} (its docstring says a Sim3d), or None.
    report = pycolmap.estimate_sim3d_robust(centres, enu, options)
    if not report:
        raise GpsUnusableError(f"no similarity transform maps the cameras onto their {len(enu)} GPS fixes "
                               f"within {config.outlier_threshold_m:g} m")  # fmt: skip
    return Similarity.from_pycolmap(report["tgt_from_src"])


def _refine(centres: np.ndarray, enu: np.ndarray, similarity: Similarity, config: GeorefConfig) -> Similarity:
    """Least squares on the inliers, repeated until the inlier set settles."""
    import pycolmap

    inliers = np.linalg.norm(similarity.apply(centres) - enu, axis=1) <= config.outlier_threshold_m
    for _ in range(5):
        if inliers.sum() < config.min_fixes:
            break
        refined = pycolmap.estimate_sim3d(centres[inliers], enu[inliers])
        if refined is None:  # a degenerate inlier set: keep the robust estimate, the checks that follow judge it
            break
        similarity = Similarity.from_pycolmap(refined)
        updated = np.linalg.norm(similarity.apply(centres) - enu, axis=1) <= config.outlier_threshold_m
        if np.array_equal(updated, inliers):
            break
        inliers = updated
    return similarity


def quotable_origin(position: GpsFix, config: GeorefConfig) -> GpsFix:
    """The position rounded so that it is easy to quote: ``origin_decimals`` degrees and whole metres."""
    return GpsFix(round(position.latitude, config.origin_decimals), round(position.longitude, config.origin_decimals),
                  float(round(position.altitude)))  # fmt: skip


def fit_gps(cameras: Cameras, fixes: dict[str, GpsFix], scene_centre: np.ndarray, config: GeorefConfig) -> GpsFit:
    """Fit the similarity from the SfM frame to east-north-up metres around a quotable origin near the scene.

    Args:
        cameras: the registered photos.
        fixes: GPS fixes by photo name (photos missing from ``cameras`` are ignored).
        scene_centre: a point at the heart of the scene in the SfM frame (the origin is put near it).
        config: thresholds.

    Raises:
        GpsUnusableError: too few fixes, fixes in one spot or on a line, no fit, or a fit too poor to apply.
    """
    names = [name for name in cameras.names if name in fixes]
    if len(names) < config.min_fixes:
        raise GpsUnusableError(f"{len(names)} registered photo(s) carry GPS; at least {config.min_fixes} are needed")
    index = {name: position for position, name in enumerate(cameras.names)}
    centres = cameras.centres[[index[name] for name in names]]
    located = [fixes[name] for name in names]
    # A provisional origin at the fixes' median: robust to a wrong fix, close enough for the tangent plane.
    median = GpsFix(*np.median([[f.latitude, f.longitude, f.altitude] for f in located], axis=0).tolist())
    enu = to_enu(located, median)
    _check_geometry(enu, config, "registered")
    similarity = _refine(centres, enu, _robust_similarity(centres, enu, config), config)
    # The origin: the scene's centre on Earth, rounded; then the fit again, in that origin's tangent frame.
    origin = quotable_origin(from_enu(similarity.apply(scene_centre), median)[0], config)
    enu = to_enu(located, origin)
    similarity = _refine(centres, enu, similarity.then(_offset(median, origin)), config)
    distances = np.linalg.norm(similarity.apply(centres) - enu, axis=1)
    inliers = distances <= config.outlier_threshold_m
    residuals = {name: round(float(d), 4) for name, d in zip(names, distances, strict=True)}
    rejected = {name: residuals[name] for name, inlier in zip(names, inliers, strict=True) if not inlier}
    used = [name for name, inlier in zip(names, inliers, strict=True) if inlier]
    rms = math.sqrt(float((distances[inliers] ** 2).mean())) if inliers.any() else math.inf
    spread = _line_spread(enu[inliers])[0] if inliers.sum() >= 2 else 0.0
    figures = {"rms_m": round(rms, 4) if math.isfinite(rms) else None, "photos_used": len(used),
               "rejected": sorted(rejected)}  # fmt: skip
    if len(used) < config.min_fixes:
        reason = (f"only {len(used)} GPS fixes agree with the reconstruction within {config.outlier_threshold_m:g} m; "
                  f"at least {config.min_fixes} are needed")  # fmt: skip
        raise GpsUnusableError(reason, figures)
    _check_geometry(enu[inliers], config, "agreeing", rms)
    limit = min(config.max_rms_m, config.max_rms_fraction * spread)
    if rms > limit:
        raise GpsUnusableError(f"the GPS fit's RMS residual is {rms:.2f} m, above the {limit:.2f} m allowed "
                               f"({config.max_rms_m:g} m, or {config.max_rms_fraction:.0%} of the fixes' "
                               f"{spread:.1f} m spread): not applied", figures)  # fmt: skip
    return GpsFit(similarity, origin, used, rejected, residuals, rms, spread)


def _offset(old: GpsFix, new: GpsFix) -> Similarity:
    """East-north-up around ``old`` to east-north-up around ``new``: a rigid motion (the tangent planes differ)."""
    import pycolmap

    probes = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [0.0, 100.0, 0.0], [0.0, 0.0, 100.0]])
    moved = to_enu(from_enu(probes, old), new)
    return Similarity.from_pycolmap(pycolmap.estimate_sim3d(probes, moved))


# --------------------------------------------------------------------------------------------------
# The registration and georef.json
# --------------------------------------------------------------------------------------------------


def scene_centre(reconstruction: Any, cameras: Cameras) -> np.ndarray:
    """The median of the sparse points (robust to stray ones), or of the camera centres without points."""
    points = np.array([point.xyz for point in reconstruction.points3D.values()], dtype=np.float64).reshape(-1, 3)
    return np.median(points if len(points) else cameras.centres, axis=0)


def _frame(method: str, origin: GpsFix | None) -> dict[str, Any]:
    if method == "gps" and origin is not None:
        proj = (f"+proj=pipeline +step +proj=cart +ellps=WGS84 +step +proj=topocentric +ellps=WGS84 "
                f"+lat_0={origin.latitude} +lon_0={origin.longitude} +h_0={origin.altitude:g}")  # fmt: skip
        return {
            "axes": "x east, y north, z up",
            "units": "metres",
            "definition": "local east-north-up (topocentric) frame at the origin on the WGS 84 ellipsoid "
            "(EPSG method 9837, Geographic/topocentric conversions; origin in EPSG:4326 degrees)",
            "proj_pipeline": proj,
            "proj_pipeline_input": "longitude, latitude (degrees, as cct and pyproj take them), height (metres)",
        }
    if method == "upright":
        return {"axes": "z up; x and y horizontal, heading arbitrary", "units": "arbitrary (the SfM model's own)",
                "definition": "the SfM frame rotated so that the cameras' vertical is +z, the median of the sparse "
                "points at the origin"}  # fmt: skip
    return {"axes": "as structure from motion left them (arbitrary)", "units": "arbitrary (the SfM model's own)",
            "definition": "the SfM mapper's frame, unchanged (--no-georef)"}  # fmt: skip


def _origin_json(origin: GpsFix) -> dict[str, Any]:
    return {"latitude": origin.latitude, "longitude": origin.longitude, "altitude_m": origin.altitude,
            "datum": "WGS 84", "altitude_reference": ALTITUDE_REFERENCE, "height_reference": HEIGHT_REFERENCE,
            "ellipsoidal_height_m": None, "geoid_model": None, "height_note": HEIGHT_NOTE}  # fmt: skip


def _document(method: str, similarity: Similarity, photos: dict[str, Any], warnings: list[str],
              **extra: Any) -> dict[str, Any]:  # fmt: skip
    origin = extra.pop("origin", None)
    return {
        "version": GEOREF_VERSION,
        "method": method,
        "georeferenced": method == "gps",
        "metric": method == "gps",
        "frame": _frame(method, origin),
        "origin": None if origin is None else _origin_json(origin),
        "scale": None,
        "rms_m": None,
        "max_residual_m": None,
        "vertical_disagreement_deg": None,
        **extra,
        "photos": photos,
        "transform": similarity.to_json(),
        "warnings": warnings,
    }


def register(reconstruction: Any, images_dir: Path, config: GeorefConfig) -> Registration:
    """Choose the frame for ``reconstruction`` (not applied: see ``apply_registration``).

    Args:
        reconstruction: a ``pycolmap.Reconstruction`` in any frame.
        images_dir: the photos, under the model's image names (their EXIF GPS is read from there).
        config: options and thresholds.

    Returns:
        The method, the transform from the model's frame, and ``georef.json``'s content.
    """
    if not config.enabled:
        return Registration("none", Similarity.identity(),
                            _document("none", Similarity.identity(), {}, []))  # fmt: skip
    cameras = Cameras.from_reconstruction(reconstruction)
    fixes = read_gps_fixes(images_dir, cameras.names)
    return choose_frame(cameras, fixes, scene_centre(reconstruction, cameras), config)


def choose_frame(cameras: Cameras, fixes: dict[str, GpsFix], centre: np.ndarray, config: GeorefConfig) -> Registration:
    """GPS when the fixes allow a fit good enough to apply, else upright (the reasons become warnings).

    Args:
        cameras: the registered photos.
        fixes: their GPS fixes by name (any subset of them).
        centre: a point at the heart of the scene, in the cameras' frame (the new origin goes near it).
        config: thresholds.
    """
    upright = estimate_up(cameras)
    photos: dict[str, Any] = {"registered": len(cameras.names), "with_gps": len(fixes), "used": 0, "rejected": []}
    warnings = list(upright.warnings)
    if fixes:
        try:
            fit = fit_gps(cameras, fixes, centre, config)
        except GpsUnusableError as error:
            warnings.insert(0, f"GPS not used: {error}; the scene is upright only, its scale arbitrary")
            if error.figures:
                photos["gps_fit_not_applied"] = error.figures
        else:
            return _gps_registration(fit, upright, photos, warnings, config)
    similarity = upright_similarity(upright.up, centre)
    document = _document("upright", similarity, photos, warnings, up_cues=upright.cues)
    return Registration("upright", similarity, document)


def _gps_registration(fit: GpsFit, upright: UpEstimate, photos: dict[str, Any], warnings: list[str],
                      config: GeorefConfig) -> Registration:  # fmt: skip
    photos |= {
        "used": len(fit.used),
        "rejected": [{"name": name, "residual_m": residual} for name, residual in sorted(fit.rejected.items())],
        "residuals_m": fit.residuals,
    }
    if fit.rejected:
        # One warning however many: a whole flight's worth of names would drown the report.
        named = sorted(fit.rejected.items(), key=lambda item: -item[1])
        listed = ", ".join(f"{name} ({residual:.1f} m)" for name, residual in named[:WARNING_NAME_LIMIT])
        more = f" and {len(named) - WARNING_NAME_LIMIT} more" if len(named) > WARNING_NAME_LIMIT else ""
        warnings.append(f"GPS fixes over {config.outlier_threshold_m:g} m from where the photos were taken, left "
                        f"out of the fit: {listed}{more}")  # fmt: skip
    disagreement = _angle_deg(fit.similarity.rotation @ upright.up, np.array([0.0, 0.0, 1.0]))
    if disagreement > PATH_MAX_TILT_DEG:
        warnings.append(f"the GPS fit's vertical is {disagreement:.1f} deg from the cameras' (poor GPS altitudes?)")
    distances = [fit.residuals[name] for name in fit.used]
    document = _document(
        "gps", fit.similarity, photos, warnings,
        origin=fit.origin,
        scale=round(fit.similarity.scale, 6),
        rms_m=round(fit.rms_m, 4),
        max_residual_m=round(max(distances), 4),
        vertical_disagreement_deg=round(disagreement, 3),
        outlier_threshold_m=config.outlier_threshold_m,
        spread_m=round(fit.spread_m, 3),
        up_cues=upright.cues,
    )  # fmt: skip
    return Registration("gps", fit.similarity, document)


def apply_registration(reconstruction: Any, registration: Registration) -> None:
    """Carry ``reconstruction`` (cameras and points) into the registration's frame, in place."""
    if registration.method != "none":
        reconstruction.transform(registration.similarity.to_pycolmap())


def composed(registration: Registration, earlier: dict[str, Any] | None) -> Registration:
    """The registration with its ``transform`` measured from the SfM mapper's frame, given the earlier georef.json
    of the model it was fitted to (``spaceport georef`` on a run that was already registered)."""
    if not earlier or "transform" not in earlier:
        return registration
    total = Similarity.from_json(earlier["transform"]).then(registration.similarity)
    document = registration.document | {"transform": total.to_json()}
    return Registration(registration.method, registration.similarity, document)


def write_georef(path: Path, registration: Registration) -> None:
    write_json_atomic(path, registration.document)


def read_georef(path: Path) -> dict[str, Any] | None:
    """``georef.json``'s content, or None when there is none (a run made before georeferencing existed)."""
    import json

    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
