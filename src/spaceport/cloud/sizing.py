"""Will the job's training run fit the configured GPU? Asked in the validate step, so a job too large fails there.

The train stage refuses a run its GPU cannot hold before any image loads (``spaceport.train.memory``), but that is
after SfM and a wait for a training instance. This module asks the same memory model as soon as the photos are
accepted: from the job's options and preset (what the train stage will run), the photo count and each photo's size
(scaled as SfM and training scale them), and the GPU memory of the ``TrainInstanceType`` parameter's instance. A
refusal names what to change: the job's ``max_gaussians``, fewer or smaller photos, or ``TrainInstanceType``.

The memory model is derived from what training allocates, not fitted to CUDA measurements (see its docstring):
its answer is an estimate, and the train stage's own check, with the GPU's real total memory, still runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from spaceport.train.config import TrainConfig, apply_overrides, preset_config, scaled_size
from spaceport.train.memory import GIB, HEADROOM, STORED_BYTES_PER_PIXEL, RunSize, estimate_bytes

logger = Logger(child=True)

# The longest side SfM's intake leaves a photo (``SfmConfig.max_image_size``): the COLMAP cameras, and so the
# held-out photos that training scores at "full size", are at most this large. The cloud's sfm job keeps the default.
SFM_MAX_IMAGE_SIZE = 1600
# What the driver offers is less than the marketed memory (an A10G's 24 GB shows as about 22 GiB to PyTorch, a
# T4's 16 GB as about 14.7 GiB): the check counts this fraction of the table's figure.
USABLE_FRACTION = 0.92
# Job options that override the preset in the training job (``sagemaker_requests.hyperparameters``).
TRAIN_OPTIONS = ("iterations", "sh_degree", "max_gaussians")


@dataclass(frozen=True)
class Gpu:
    """One GPU of an instance type: a job trains on one, whatever the instance holds."""

    name: str
    memory_gib: int
    per_instance: int

    @property
    def usable_bytes(self) -> int:
        return int(self.memory_gib * GIB * USABLE_FRACTION)


def _family(prefix: str, gpu: str, memory_gib: int, sizes: dict[str, int]) -> dict[str, Gpu]:
    return {f"ml.{prefix}.{size}": Gpu(gpu, memory_gib, count) for size, count in sizes.items()}


# SageMaker training instance types and their GPUs, from AWS's instance type pages (Amazon EC2 accelerated
# computing instances; SageMaker AI pricing). Memory is per GPU; the sizes map to how many GPUs they hold.
G_SIZES = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1, "12xlarge": 4, "24xlarge": 4,
           "48xlarge": 8}  # fmt: skip
GPUS: dict[str, Gpu] = (
    _family("g4dn", "NVIDIA T4", 16, {size: G_SIZES[size] for size in ("xlarge", "2xlarge", "4xlarge", "8xlarge",
                                                                       "16xlarge", "12xlarge")})
    | _family("g5", "NVIDIA A10G", 24, G_SIZES)
    | _family("g6", "NVIDIA L4", 24, G_SIZES)
    | _family("g6e", "NVIDIA L40S", 48, G_SIZES)
    | _family("p3", "NVIDIA V100", 16, {"2xlarge": 1, "8xlarge": 4, "16xlarge": 8})
    | _family("p3dn", "NVIDIA V100", 32, {"24xlarge": 8})
    | _family("p4d", "NVIDIA A100", 40, {"24xlarge": 8})
    | _family("p4de", "NVIDIA A100", 80, {"24xlarge": 8})
    | _family("p5", "NVIDIA H100", 80, {"48xlarge": 8})
)  # fmt: skip
# What a refusal suggests, in order of GPU memory: the smallest one-GPU instance of each GPU, then the eight-GPU
# instances of the largest GPUs as a last resort (a job trains on one GPU; the other seven would sit idle).
SUGGESTED = ("ml.g4dn.xlarge", "ml.g5.xlarge", "ml.g6e.xlarge", "ml.p4de.24xlarge", "ml.p5.48xlarge")


@dataclass(frozen=True)
class Photo:
    """An accepted photo's size in pixels (and in bytes), as the validator read it."""

    width: int
    height: int
    bytes: int = 0


def train_hyperparameters(options: dict[str, Any], default_preset: str) -> dict[str, str]:
    """The job's preset and the options that override it, as the training job's hyperparameters (strings)."""
    values = {"preset": str(options.get("preset") or default_preset)}
    for key in TRAIN_OPTIONS:
        if options.get(key) is not None:
            values[key] = str(int(options[key]))
    return values


def train_config(options: dict[str, Any], default_preset: str, device: str = "cuda") -> TrainConfig:
    """The configuration the train stage will build for this job on ``device`` (a deployment's: the GPU)."""
    hyperparameters = train_hyperparameters(options, default_preset)
    return apply_overrides(preset_config(hyperparameters["preset"], device), hyperparameters)


def run_size(config: TrainConfig, photos: Sequence[Photo]) -> RunSize:
    """The run's size if every photo is registered: each is scaled by SfM's intake, then by ``resolution``.

    SfM's points are not known yet; the Gaussian count is the run's cap, ``max_gaussians``.
    """
    longest, step, stored, full = 0, 0, 0, 0
    for photo in photos:
        camera = scaled_size(photo.width, photo.height, SFM_MAX_IMAGE_SIZE)
        width, height = scaled_size(*camera, config.resolution)
        longest, step = max(longest, width, height), max(step, width * height)
        stored += width * height
        full = max(full, camera[0] * camera[1])
    return RunSize(config.max_gaussians, config.sh_degree, longest, step, stored, full)


def refusal_reason(
    options: dict[str, Any], default_preset: str, photos: Sequence[Photo], instance_type: str
) -> str | None:
    """Why this job's training cannot fit ``instance_type``'s GPU, naming what to change; None when it fits.

    An instance type the table does not know never blocks a job: the train stage's own check still runs there.
    """
    gpu = GPUS.get(instance_type)
    if gpu is None:
        logger.warning("training instance type not in the GPU table; job size not checked",
                       extra={"instance_type": instance_type})  # fmt: skip
        return None
    config = train_config(options, default_preset)
    size = run_size(config, photos)
    estimate = estimate_bytes(size, "cuda")
    if estimate.total_bytes <= gpu.usable_bytes:
        return None
    return (
        f"the job is too large for the training instance {instance_type} (TrainInstanceType): "
        f"{len(photos)} photos of up to {size.longest_side} px and up to {size.gaussians:,} Gaussians at "
        f"SH {size.sh_degree} need about {estimate.total_bytes / GIB:.1f} GiB of GPU memory by the memory model "
        f"(derived, not fitted on CUDA), and its {gpu.name} offers about {gpu.usable_bytes / GIB:.1f} GiB. "
        "Change one: " + "; or ".join(_changes(size, len(photos), estimate.parts, estimate.per_gaussian_bytes, gpu))
    )


def _changes(size: RunSize, count: int, parts: dict[str, int], per_gaussian: float, gpu: Gpu) -> list[str]:
    """What would make the run fit ``gpu``: fewer Gaussians, fewer or smaller photos, a larger instance."""
    budget = gpu.usable_bytes / HEADROOM
    changes = []
    fitting_gaussians = (budget - (sum(parts.values()) - parts["gaussians"])) / per_gaussian
    if 1000 <= fitting_gaussians < size.gaussians:
        changes.append(f"set the job option max_gaussians to at most {int(fitting_gaussians) // 1000 * 1000:,}")
    # Every photo is held on the GPU for the whole run: without the stored views the rest must fit first.
    room = budget - parts["gaussians"] - parts["constant"] - parts["full-size scoring"] - parts["step pixels"]
    per_photo = STORED_BYTES_PER_PIXEL * size.stored_pixels / max(1, count)
    fitting_photos = int(room // per_photo) if per_photo > 0 and room > 0 else 0
    if 0 < fitting_photos < count:
        changes.append(f"send at most {fitting_photos} photos of this size")
    # The stored views and the step's buffers scale with the square of the longest side.
    scalable, room = parts["stored views"] + parts["step pixels"], room + parts["step pixels"]
    side = int(size.longest_side * math.sqrt(room / scalable)) if scalable > 0 and room > 0 else 0
    if 0 < side < size.longest_side:
        changes.append(f"send photos of at most {side} px on the longest side")
    larger = next((name for name in SUGGESTED if GPUS[name].usable_bytes >= HEADROOM * sum(parts.values())), None)
    if larger is not None:
        changes.append(f"deploy with the TrainInstanceType parameter set to {larger} "
                       f"({GPUS[larger].name}, {GPUS[larger].memory_gib} GiB)")  # fmt: skip
    elif not changes:
        changes.append("no GPU in the table holds it: lower max_gaussians and send fewer photos")
    return changes
