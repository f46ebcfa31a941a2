"""Validation limits. Each is a template parameter: the SAM template passes it to the validate Lambda as an
environment variable, and the CLI and the sfm stage read the same variables, so all three doors agree.

=========================  ================================  =============================================
Field                      Environment variable              Default and why
=========================  ================================  =============================================
min_images                 SPACEPORT_MIN_IMAGES              3: fewer views cannot triangulate a scene
max_images                 SPACEPORT_MAX_IMAGES              2000: bounds the sfm stage's matching time
max_files                  SPACEPORT_MAX_FILES               10000: bounds the validator's own time
max_archive_bytes          SPACEPORT_MAX_ARCHIVE_BYTES       4 GiB: the uploaded .zip itself
max_expanded_bytes         SPACEPORT_MAX_EXPANDED_BYTES      8 GiB: bytes written while extracting
max_compression_ratio      SPACEPORT_MAX_COMPRESSION_RATIO   100: photos barely compress; bombs do 1000:1
max_image_pixels           SPACEPORT_MAX_IMAGE_PIXELS        100 M pixels: larger is a decompression bomb
min_image_side             SPACEPORT_MIN_IMAGE_SIDE          64 px: smaller images yield too few features
=========================  ================================  =============================================
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_PREFIX = "SPACEPORT_"
GIB = 1 << 30
MIB = 1 << 20


class LimitsError(ValueError):
    """A limit given in the environment is not a positive integer."""


@dataclass(frozen=True)
class Limits:
    """What the validator accepts; see the module docstring for the environment variable of each field."""

    min_images: int = 3
    max_images: int = 2000
    max_files: int = 10_000
    max_archive_bytes: int = 4 * GIB
    max_expanded_bytes: int = 8 * GIB
    max_compression_ratio: int = 100
    max_image_pixels: int = 100_000_000
    min_image_side: int = 64
    # An archive may always expand to this much, whatever its ratio: small archives of flat synthetic images
    # compress far better than photos and are still harmless. SPACEPORT_EXPANSION_FLOOR_BYTES; not in the template.
    expansion_floor_bytes: int = 256 * MIB

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """Defaults overridden by any ``SPACEPORT_<FIELD>`` variable that is set.

        Raises:
            LimitsError: a variable is set but is not a positive integer.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for field in dataclasses.fields(cls):
            name = ENV_PREFIX + field.name.upper()
            if name in environ:
                values[field.name] = _positive_int(name, environ[name])
        return cls(**values)

    def expansion_cap(self, archive_bytes: int) -> int:
        """The most bytes an archive of this size may write when extracted."""
        by_ratio = max(self.expansion_floor_bytes, archive_bytes * self.max_compression_ratio)
        return min(self.max_expanded_bytes, by_ratio)


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError as error:
        raise LimitsError(f"{name} must be a positive integer, not {text!r}") from error
    if value <= 0:
        raise LimitsError(f"{name} must be a positive integer, not {text!r}")
    return value
