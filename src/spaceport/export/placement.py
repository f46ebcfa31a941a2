"""Where a scene goes on the globe, and from what its height is counted.

``georef.json`` gives the origin's latitude and longitude (WGS 84) and its altitude above mean sea level, as EXIF
records GPS altitude. The globe (ECEF, a 3D Tiles root transform) needs the height above the WGS 84 ellipsoid,
which differs from it by the geoid undulation N (-106 to +85 m on Earth). No geoid model is available offline, so
unless the user gives N (``--geoid-undulation``), the mean-sea-level altitude is used as the ellipsoidal height and
the tileset's metadata says so; it never passes silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from spaceport.export.frames import enu_to_ecef_matrix


class NotOnEarthError(ValueError):
    """The scene's frame is not georeferenced (no GPS): it has no place on the globe."""


@dataclass(frozen=True)
class Placement:
    """The origin of the scene's east-north-up frame on the WGS 84 ellipsoid.

    Attributes:
        latitude, longitude: degrees.
        altitude_msl_m: the origin's altitude above mean sea level (georef.json's ``altitude_m``).
        geoid_undulation_m: N, the geoid's height above the ellipsoid there, when the user gave it; else None.
        rms_m: the GPS fit's RMS residual, for the metadata.
    """

    latitude: float
    longitude: float
    altitude_msl_m: float
    geoid_undulation_m: float | None = None
    rms_m: float | None = None

    @classmethod
    def from_georef(cls, georef: dict[str, Any] | None, geoid_undulation_m: float | None = None) -> Placement:
        """The placement of a ``georef.json`` of method ``gps``.

        Raises:
            NotOnEarthError: any other frame (upright, none) or no georef.json.
        """
        if not georef or georef.get("method") != "gps" or not georef.get("origin"):
            method = (georef or {}).get("method", "no georef.json")
            raise NotOnEarthError(f"the scene is not georeferenced (frame: {method}): it needs photos with GPS")
        origin = georef["origin"]
        return cls(float(origin["latitude"]), float(origin["longitude"]), float(origin["altitude_m"]),
                   geoid_undulation_m, georef.get("rms_m"))  # fmt: skip

    @property
    def ellipsoidal_height_m(self) -> float:
        """The height the globe places the origin at: the altitude plus N, or the altitude itself without N."""
        return self.altitude_msl_m + (self.geoid_undulation_m or 0.0)

    @property
    def height_reference(self) -> str:
        if self.geoid_undulation_m is None:
            return (f"the origin's altitude above mean sea level ({self.altitude_msl_m:g} m, EXIF GPS) is used as its "
                    "height above the WGS 84 ellipsoid: no geoid model was applied, so the scene sits off vertically "
                    "by the local geoid undulation (between -106 and +85 m on Earth)")  # fmt: skip
        return (f"the origin's height above the WGS 84 ellipsoid is its altitude above mean sea level "
                f"({self.altitude_msl_m:g} m, EXIF GPS) plus the geoid undulation given for it "
                f"({self.geoid_undulation_m:g} m)")  # fmt: skip

    def enu_to_ecef(self) -> np.ndarray:
        """(4, 4) the scene's east-north-up metres to ECEF metres."""
        return enu_to_ecef_matrix(self.latitude, self.longitude, self.ellipsoidal_height_m)

    def metadata(self) -> dict[str, Any]:
        """The tileset's metadata properties (3D Tiles 1.1 ``metadata`` of class ``scene``)."""
        values: dict[str, Any] = {
            "originLatitude": self.latitude,
            "originLongitude": self.longitude,
            "originEllipsoidalHeight": self.ellipsoidal_height_m,
            "originAltitudeAboveMeanSeaLevel": self.altitude_msl_m,
            "geoidUndulationApplied": self.geoid_undulation_m or 0.0,
            "heightReference": self.height_reference,
            "frame": "east-north-up metres at the origin; glTF content y-up (east, up, south)",
        }
        if self.rms_m is not None:
            values["gpsFitRmsMetres"] = float(self.rms_m)
        return values
