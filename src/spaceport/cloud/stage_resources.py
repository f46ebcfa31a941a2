"""Which instance, disk and time each Processing stage of a job gets, from the job's size.

The validate step measures what each stage needs (``StageNeeds``: memory by the stage's memory model, and disk) and
keeps it in the job record (``resources``); a job that the deployment's instances cannot hold, or whose SfM is
expected to run past ``SfmMaxRuntimeSeconds``, is refused there, naming what to change. The stage's start sizes the
instance again from the recorded needs and the settings deployed then, so a retry after a redeploy uses the new
instances (the time is checked at validate only).

``SfmInstanceType`` and ``CompressInstanceType`` are the smallest instances a job gets. A stage that needs more than
half the instance's memory gets the smallest larger size of the same family that holds it, up to
``SfmLargestInstanceType`` / ``CompressLargestInstanceType`` (by default the same instances: every larger size has its
own SageMaker processing quota, often small, so a deployment opts in). The volume is the configured one, or more when
the photos need it.

The memory models are fitted to ``benchmarks/RESULTS.md``'s measurements (SfM: "Scaling: structure from motion";
compression: "Scaling: compression and training against the Gaussian count"), each step's peak resident memory:

- SfM's extraction holds each thread's photo pyramid (SIFT upsamples the first octave): 0.6 GB per thread for a
  1600x1200 photo, in proportion to its pixels, and the stage runs a thread per vCPU (1.28 GB measured with two).
  Its mapping holds every photo's features and the points they see: 12 MB per 1600x1200 photo, in proportion again
  (1.57 GB measured for 128 photos of the GPS grid). The peak is the larger.
- Compression: 0.58 GiB per million Gaussians at SH 3 (1.74 GiB at 3 M), plus 0.1 GiB.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from spaceport.cloud.cost import StageTimes, vcpus
from spaceport.cloud.models import Stage
from spaceport.cloud.sizing import SFM_MAX_IMAGE_SIZE, Photo
from spaceport.train.config import scaled_size

if TYPE_CHECKING:
    from spaceport.cloud.settings import ProcessingSizes

logger = Logger(child=True)

GIB = 1024**3
GB = 1000**3
# A stage may use at most half its instance's memory: the models are fitted on two cores, and the operating
# system, the container and SageMaker's agents share the instance.
HEADROOM = 2.0
REFERENCE_PIXELS = 1600 * 1200
SFM_BASE_BYTES = int(0.15 * GB)
SFM_EXTRACTION_BYTES_PER_THREAD = int(0.6 * GB)  # at REFERENCE_PIXELS
SFM_MAPPING_BYTES_PER_PHOTO = 12 * 1000**2  # at REFERENCE_PIXELS
COMPRESS_BASE_BYTES = int(0.1 * GIB)
COMPRESS_BYTES_PER_GAUSSIAN = 0.58 * GIB / 1e6
# Disk per photo besides the upload: its scaled copy, its features and matches in the database, its undistorted
# image in the output.
SFM_DISK_BYTES_PER_PHOTO = 8 * 1000**2
SFM_DISK_BASE_BYTES = 2 * GB

# Memory (GiB) of every processing instance size SageMaker offers in the families a CPU stage would use (the sizes of
# ProcessingClusterConfig.InstanceType in the API reference; Processing has no ml.c5.large), smallest first.
FAMILY_MEMORY_GIB: dict[str, dict[str, int]] = {
    "c5": {"xlarge": 8, "2xlarge": 16, "4xlarge": 32, "9xlarge": 72, "18xlarge": 144},
    "m5": {"large": 8, "xlarge": 16, "2xlarge": 32, "4xlarge": 64, "12xlarge": 192, "24xlarge": 384},
    "r5": {"large": 16, "xlarge": 32, "2xlarge": 64, "4xlarge": 128, "8xlarge": 256, "12xlarge": 384,
           "16xlarge": 512, "24xlarge": 768},
}  # fmt: skip


class StageTooLargeError(ValueError):
    """No instance the deployment allows holds the stage, or it would run past its time limit; the message says
    what to change."""


@dataclass(frozen=True)
class StageNeeds:
    """What one Processing stage of a job needs, whatever instance it runs on: memory as ``base`` plus the larger of
    ``per_thread`` times the threads that have work (at most ``parallel``) and ``shared``; and disk."""

    base_bytes: int
    per_thread_bytes: int
    parallel: int
    shared_bytes: int
    disk_gb: int

    def bytes_on(self, instance_type: str) -> int:
        threads = min(vcpus(instance_type), self.parallel)
        return self.base_bytes + max(self.per_thread_bytes * threads, self.shared_bytes)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StageNeeds:
        return cls(**{name: int(record[name]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class StageLimits:
    """What the deployment allows a stage: its instance types (smallest, largest), its volume, the parameters'
    names for a refusal."""

    smallest: str
    largest: str
    volume_gb: int
    parameter: str  # e.g. "SfmInstanceType"; the largest is "<Stage>LargestInstanceType"


def stage_limits(settings: ProcessingSizes, stage: Stage) -> StageLimits:
    """The deployment's instance range and volume for the ``sfm`` or ``compress`` stage."""
    name = stage.value
    return StageLimits(
        smallest=getattr(settings, f"{name}_instance_type"),
        largest=getattr(settings, f"{name}_largest_instance_type"),
        volume_gb=getattr(settings, f"{name}_volume_gb"),
        parameter=f"{name.title()}InstanceType",
    )


def sfm_needs(photos: Sequence[Photo]) -> StageNeeds:
    """SfM's needs for these photos, each scaled to SfM's 1600 px."""
    scaled = [scaled_size(photo.width, photo.height, SFM_MAX_IMAGE_SIZE) for photo in photos]
    largest = max((width * height for width, height in scaled), default=0) / REFERENCE_PIXELS
    total = sum(width * height for width, height in scaled) / REFERENCE_PIXELS
    disk = SFM_DISK_BASE_BYTES + sum(photo.bytes + SFM_DISK_BYTES_PER_PHOTO for photo in photos)
    return StageNeeds(
        base_bytes=SFM_BASE_BYTES,
        per_thread_bytes=int(SFM_EXTRACTION_BYTES_PER_THREAD * largest),
        parallel=max(1, len(photos)),
        shared_bytes=int(SFM_MAPPING_BYTES_PER_PHOTO * total),
        disk_gb=math.ceil(1.5 * disk / GB),
    )


def compress_needs(max_gaussians: int) -> StageNeeds:
    return StageNeeds(COMPRESS_BASE_BYTES, 0, 1, int(COMPRESS_BYTES_PER_GAUSSIAN * max_gaussians), 0)


def _ladder(limits: StageLimits) -> list[tuple[str, int]] | None:
    """The sizes of the smallest instance's family from it up to the largest allowed, with their memory (GiB); None
    for a family the table does not know. A largest of another family, or smaller, allows the smallest only."""
    parts, top = limits.smallest.split("."), limits.largest.split(".")
    family = FAMILY_MEMORY_GIB.get(parts[1]) if len(parts) == 3 else None
    if family is None or parts[2] not in family:
        return None
    floor = family[parts[2]]
    ceiling = max(floor, family.get(top[2], floor) if len(top) == 3 and top[1] == parts[1] else floor)
    return [(f"ml.{parts[1]}.{size}", memory) for size, memory in family.items() if floor <= memory <= ceiling]


def choose(stage: Stage, needs: StageNeeds, limits: StageLimits, advice: str) -> dict[str, Any]:
    """The smallest allowed size whose memory holds the stage's needs twice over, with the volume it needs."""
    volume = max(limits.volume_gb, needs.disk_gb)

    def chosen(instance_type: str) -> dict[str, Any]:
        return {"instance_type": instance_type, "volume_gb": volume,
                "memory_needed_gib": round(needs.bytes_on(instance_type) / GIB, 2)}  # fmt: skip

    ladder = _ladder(limits)
    if ladder is None:
        logger.warning("processing instance type not in the table; job size not checked",
                       extra={"stage": stage.value, "instance_type": limits.smallest})  # fmt: skip
        return chosen(limits.smallest)
    for instance_type, memory_gib in ladder:
        if HEADROOM * needs.bytes_on(instance_type) <= memory_gib * GIB:
            return chosen(instance_type)
    largest, memory_gib = ladder[-1]
    title = stage.value.title()
    raise StageTooLargeError(
        f"the job is too large for the {stage} stage: it needs about {needs.bytes_on(largest) / GIB:.1f} GiB of "
        f"memory by the stage's memory model, more than half of {largest} ({memory_gib} GiB), the largest instance "
        f"{title}LargestInstanceType allows. Change one: {advice}; or deploy with {title}LargestInstanceType set to a "
        f"larger size of the same family (mind its processing quota), or {limits.parameter} and "
        f"{title}LargestInstanceType to a family with more memory per vCPU (ml.r5)"
    )


def sfm_seconds(photos: Sequence[Photo], instance_type: str, times: StageTimes | None = None) -> float:
    """SfM's expected seconds for these photos (in 1600x1200 photos' worth) on ``instance_type``."""
    scaled = (scaled_size(photo.width, photo.height, SFM_MAX_IMAGE_SIZE) for photo in photos)
    equivalent = sum(width * height for width, height in scaled) / REFERENCE_PIXELS
    return (times or StageTimes()).sfm_seconds(equivalent, vcpus(instance_type))


def _check_sfm_time(photos: Sequence[Photo], instance_type: str, max_runtime_s: int) -> None:
    expected = sfm_seconds(photos, instance_type)
    if expected <= max_runtime_s:
        return
    fitting, too_many = 0, len(photos)  # the most photos that fit lies in [fitting, too_many)
    while too_many - fitting > 1:
        middle = (fitting + too_many) // 2
        fitting, too_many = (middle, too_many) if sfm_seconds(photos[:middle], instance_type) <= max_runtime_s else (
            fitting, middle)  # fmt: skip
    raise StageTooLargeError(
        f"the sfm stage is expected to take about {expected / 3600:.1f} h for {len(photos)} photos on "
        f"{instance_type} (the time model of our benchmarks, the slower layout's growth), more than "
        f"SfmMaxRuntimeSeconds ({max_runtime_s} s), where SageMaker would stop it. Change one: send at most about "
        f"{fitting} photos; or deploy with SfmMaxRuntimeSeconds raised (at most 432000)"
    )


def plan(
    sfm: StageLimits, compress: StageLimits, sfm_max_runtime_s: int, photos: Sequence[Photo], max_gaussians: int
) -> dict[str, dict[str, Any]]:
    """Each Processing stage's needs and, for the deployment as it is, instance type and volume: the job record's
    ``resources``.

    Raises:
        StageTooLargeError: no allowed instance holds a stage, or SfM would run past its time limit.
    """
    needs = {Stage.SFM: sfm_needs(photos), Stage.COMPRESS: compress_needs(max_gaussians)}
    resources = {
        Stage.SFM: choose(Stage.SFM, needs[Stage.SFM], sfm, f"send fewer photos than {len(photos)}, or smaller ones"),
        Stage.COMPRESS: choose(Stage.COMPRESS, needs[Stage.COMPRESS], compress, _fewer_gaussians(compress)),
    }
    _check_sfm_time(photos, resources[Stage.SFM]["instance_type"], sfm_max_runtime_s)
    return {stage.value: {**resources[stage], "needs": asdict(needs[stage])} for stage in resources}


def _fewer_gaussians(limits: StageLimits) -> str:
    ladder = _ladder(limits) or [(limits.smallest, 0)]
    room = ladder[-1][1] * GIB / HEADROOM - COMPRESS_BASE_BYTES
    fitting = int(room / COMPRESS_BYTES_PER_GAUSSIAN) // 100_000 * 100_000
    return f"set the job option max_gaussians to at most {fitting:,}" if fitting > 0 else "lower max_gaussians"


def at_start(stage: Stage, recorded: dict[str, Any] | None, limits: StageLimits) -> dict[str, Any] | None:
    """The instance and volume for a stage starting now: sized again from the needs the validate step recorded and
    the limits deployed now (a retry after a redeploy gets the new instances); None for a job recorded without
    needs (the configured instance and volume apply).

    Raises:
        StageTooLargeError: the deployment no longer allows an instance that holds the stage.
    """
    if not recorded or "needs" not in recorded:
        return None
    return choose(stage, StageNeeds.from_record(recorded["needs"]), limits, "retry after changing the deployment")
