"""The EXIF each photo carries: the camera's focal length, Make and Model, and on request a GPS position."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from spaceport.scene.layouts import SceneConfig, focal_length_px

# A camera sensor that does not exist: only the EXIF ratios matter (focal in pixels = f_35mm / 43.27 * diagonal).
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
CAMERA_MAKE = "Spaceport"
CAMERA_MODEL = "Synthetic Orbit Camera"
SENSOR_WIDTH_MM = 6.17
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
TAG_MAKE, TAG_MODEL = 0x010F, 0x0110
TAG_FOCAL_LENGTH, TAG_FOCAL_35MM = 0x920A, 0xA405


def _dms(degrees: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """EXIF degrees, minutes, seconds of an absolute angle; seconds to 1e-4 (3 mm on the ground)."""
    tenth_milliseconds = round(abs(degrees) * 3600 * 10000)
    whole_degrees, remainder = divmod(tenth_milliseconds, 3600 * 10000)
    minutes, seconds = divmod(remainder, 60 * 10000)
    return IFDRational(whole_degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 10000)


def exif_with_gps(config: SceneConfig, fix: np.ndarray) -> Image.Exif:
    """The camera's EXIF plus a GPS block as drones write it: WGS 84 position, altitude above sea level."""
    exif = camera_exif(config)
    latitude, longitude, altitude = (float(value) for value in fix)
    gps = exif.get_ifd(GPS_IFD)
    gps[0] = b"\x02\x03\x00\x00"  # GPSVersionID 2.3
    gps[1], gps[2] = ("N" if latitude >= 0 else "S"), _dms(latitude)
    gps[3], gps[4] = ("E" if longitude >= 0 else "W"), _dms(longitude)
    gps[5], gps[6] = (b"\x00" if altitude >= 0 else b"\x01"), IFDRational(round(abs(altitude) * 1000), 1000)
    gps[18] = "WGS-84"  # GPSMapDatum
    return exif


def camera_exif(config: SceneConfig) -> Image.Exif:
    """EXIF that lets SfM start from the true focal length: 35 mm equivalent plus Make / Model."""
    focal = focal_length_px(config)
    exif = Image.Exif()
    exif[TAG_MAKE] = CAMERA_MAKE
    exif[TAG_MODEL] = CAMERA_MODEL
    exif_ifd = exif.get_ifd(EXIF_IFD)
    exif_ifd[TAG_FOCAL_LENGTH] = round(focal / config.width * SENSOR_WIDTH_MM, 3)
    # The 35 mm equivalent is defined on the diagonal (43.27 mm), which is also how COLMAP reads it back.
    diagonal_px = math.hypot(config.width, config.height)
    exif_ifd[TAG_FOCAL_35MM] = int(round(focal / diagonal_px * FULL_FRAME_DIAGONAL_MM))
    return exif
