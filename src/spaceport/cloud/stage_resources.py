"""Which instance and disk each Processing stage of a job gets, from the job's size: decided in the validate step,
kept in the job record (``resources``), used by the stage's Create call.

The configured instance type (``SfmInstanceType``, ``CompressInstanceType``) is the smallest a job gets. A job whose
stage needs more than half that instance's memory by the stage's memory model gets the smallest larger size of the
same family that holds it; a larger size has its own SageMaker processing quota ("ml.c5.9xlarge for processing job
usage"), which a refusal (ResourceLimitExceeded) names. A job no size of the family holds is refused in the validate
step, naming what to change. The volume is the configured one, or more when the photos need it.

The memory models are fitted to ``benchmarks/RESULTS.md``'s measurements (SfM: "Scaling: structure from motion";
compression: "Scaling: compression and training against the Gaussian count"), each step's peak resident memory:

- SfM's extraction holds each thread's photo pyramid (SIFT upsamples the first octave): 0.6 GB per thread for a
  1600x1200 photo, in proportion to its pixels, and the stage runs a thread per vCPU. Its mapping holds every
  photo's features and the points they see: 10 MB per 1600x1200 photo, in proportion again. The peak is the larger.
- Compression: 0.58 GiB per million Gaussians at SH 3 (1.74 GiB at 3 M), plus 0.1 GiB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from spaceport.cloud.cost import vcpus
from spaceport.cloud.models import Stage
from spaceport.cloud.sizing import SFM_MAX_IMAGE_SIZE, Photo
from spaceport.train.config import scaled_size

logger = Logger(child=True)

GIB = 1024**3
GB = 1000**3
# A stage may use at most half its instance's memory: the models are fitted on two cores, and the operating
# system, the container and SageMaker's agents share the instance.
HEADROOM = 2.0
REFERENCE_PIXELS = 1600 * 1200
SFM_BASE_BYTES = int(0.15 * GB)
SFM_EXTRACTION_BYTES_PER_THREAD = int(0.6 * GB)  # at REFERENCE_PIXELS
SFM_MAPPING_BYTES_PER_PHOTO = 10 * 1000**2  # at REFERENCE_PIXELS
COMPRESS_BASE_BYTES = int(0.1 * GIB)
COMPRESS_BYTES_PER_GAUSSIAN = 0.58 * GIB / 1e6
# Disk per photo besides the upload: its scaled copy, its features and matches in the database, its undistorted
# image in the output.
SFM_DISK_BYTES_PER_PHOTO = 8 * 1000**2
SFM_DISK_BASE_BYTES = 2 * GB

# Memory (GiB) of the processing instance sizes SageMaker offers in the families a CPU stage would use.
FAMILY_MEMORY_GIB: dict[str, dict[str, int]] = {
    "c5": {"large": 4, "xlarge": 8, "2xlarge": 16, "4xlarge": 32, "9xlarge": 72, "18xlarge": 144},
    "m5": {"large": 8, "xlarge": 16, "2xlarge": 32, "4xlarge": 64, "12xlarge": 192, "24xlarge": 384},
    "r5": {"large": 16, "xlarge": 32, "2xlarge": 64, "4xlarge": 128, "12xlarge": 384, "24xlarge": 768},
}


class StageTooLargeError(ValueError):
    """No instance size of the configured family holds the stage; the message says what to change."""


@dataclass(frozen=True)
class StageResources:
    instance_type: str
    volume_gb: int
    memory_needed_gib: float

    def as_record(self) -> dict[str, Any]:
        return {"instance_type": self.instance_type, "volume_gb": self.volume_gb,
                "memory_needed_gib": round(self.memory_needed_gib, 2)}  # fmt: skip


def sfm_memory_bytes(photos: Sequence[Photo], threads: int) -> int:
    """SfM's peak memory for these photos (each scaled to SfM's 1600 px) with ``threads`` extraction threads."""
    scaled = [scaled_size(photo.width, photo.height, SFM_MAX_IMAGE_SIZE) for photo in photos]
    largest = max((width * height for width, height in scaled), default=0) / REFERENCE_PIXELS
    total = sum(width * height for width, height in scaled) / REFERENCE_PIXELS
    extraction = SFM_EXTRACTION_BYTES_PER_THREAD * largest * min(threads, max(1, len(photos)))
    mapping = SFM_MAPPING_BYTES_PER_PHOTO * total
    return int(SFM_BASE_BYTES + max(extraction, mapping))


def compress_memory_bytes(gaussians: int) -> int:
    return int(COMPRESS_BASE_BYTES + COMPRESS_BYTES_PER_GAUSSIAN * gaussians)


def sfm_volume(photos: Sequence[Photo], configured_gb: int) -> int:
    """The sfm job's volume (GB): the configured one, or what the photos need with a margin."""
    needed = SFM_DISK_BASE_BYTES + sum(photo.bytes + SFM_DISK_BYTES_PER_PHOTO for photo in photos)
    return max(configured_gb, math.ceil(1.5 * needed / GB))


def _sizes_from(instance_type: str) -> list[tuple[str, int]] | None:
    """The configured size and every larger one of its family, with their memory; None for an unknown family."""
    parts = instance_type.split(".")
    if len(parts) != 3 or parts[1] not in FAMILY_MEMORY_GIB or parts[2] not in FAMILY_MEMORY_GIB[parts[1]]:
        return None
    family = FAMILY_MEMORY_GIB[parts[1]]
    floor = family[parts[2]]
    return [(f"ml.{parts[1]}.{size}", memory) for size, memory in family.items() if memory >= floor]


def choose(stage: Stage, configured: str, parameter: str, needed: Any, volume_gb: int, advice: str) -> StageResources:
    """The smallest size from ``configured`` up whose memory holds ``needed(instance_type)`` bytes twice over."""
    sizes = _sizes_from(configured)
    if sizes is None:
        logger.warning("processing instance type not in the table; job size not checked",
                       extra={"stage": stage.value, "instance_type": configured})  # fmt: skip
        return StageResources(configured, volume_gb, needed(configured) / GIB)
    for instance_type, memory_gib in sizes:
        if HEADROOM * needed(instance_type) <= memory_gib * GIB:
            return StageResources(instance_type, volume_gb, needed(instance_type) / GIB)
    largest, memory_gib = sizes[-1]
    raise StageTooLargeError(
        f"the job is too large for the {stage} stage: it needs about {needed(largest) / GIB:.1f} GiB of memory by "
        f"the stage's memory model, more than half of the largest {configured.split('.')[1]} instance ({largest}, "
        f"{memory_gib} GiB). Change one: {advice}; or deploy with {parameter} set to an instance of a family with "
        "more memory per vCPU (ml.r5)"
    )


def plan(
    sfm_instance_type: str,
    sfm_volume_gb: int,
    compress_instance_type: str,
    compress_volume_gb: int,
    photos: Sequence[Photo],
    max_gaussians: int,
) -> dict[str, dict[str, Any]]:
    """Each Processing stage's instance type, volume and modelled memory, for the job's record.

    Raises:
        StageTooLargeError: no size of a configured instance's family holds the stage.
    """
    sfm = choose(
        Stage.SFM,
        sfm_instance_type,
        "SfmInstanceType",
        lambda instance: sfm_memory_bytes(photos, vcpus(instance)),
        sfm_volume(photos, sfm_volume_gb),
        f"send fewer photos than {len(photos)}, or smaller ones",
    )
    compress = choose(
        Stage.COMPRESS,
        compress_instance_type,
        "CompressInstanceType",
        lambda _: compress_memory_bytes(max_gaussians),
        compress_volume_gb,
        f"set the job option max_gaussians below {max_gaussians:,}",
    )
    return {Stage.SFM.value: sfm.as_record(), Stage.COMPRESS.value: compress.as_record()}
