"""How much memory a training run needs, ``bytes ≈ a·N + b·pixels + c·stored pixels + constant``, to refuse early.

A run that cannot fit should fail before the images load, with a reason that names what to change, not with an
out-of-memory error an hour into a GPU job. The model counts what training holds:

- ``a`` per Gaussian: parameters, their gradients and Adam's two moments (4 x 4 bytes per float, 59 floats at
  SH 3), the densification statistics, the SH colour graph autograd keeps for the backward pass, and the
  rasteriser's per-Gaussian buffers (gsplat's projection outputs, their gradients, and its tile intersections;
  on the CPU our projection graph and tile pairs).
- ``b`` per pixel of the view a step renders: the render and its gradient, and the L1 + SSIM loss graph; or, when
  larger, the forward-only buffers of scoring the held-out photos at full size once training ends.
- ``c`` per stored pixel: every train and test view sits on the training device as float32 RGB (``data.py``),
  12 bytes a pixel, for the whole run: with hundreds of photos at 1600 px this is the largest term.
- a constant: the CUDA context and libraries (not in torch's counters), or the CPU process's imports.

**Derived, not fitted on CUDA.** The torch-side terms (SH colour graph, loss graph) are counted from the tensors
autograd saves (``tests/train/test_memory.py`` counts them on CPU, so the figures cannot drift from the code).
gsplat's buffers are counted from its 1.5 sources: (C, N) projection outputs and gradients, and 24 bytes per tile
intersection (64-bit key, 32-bit id, and the radix sort's second buffer) at an assumed 8 tiles of 16x16 per
Gaussian. ``benchmarks/gpu_check.py`` records peak GPU memory against N and pixels when a GPU is lent, and the
Scaling section of ``benchmarks/RESULTS.md`` fits ``a`` and ``b`` to it; replace the constants with the fit then.
The CPU figures were checked against the peak RSS of CPU training steps (same section).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spaceport.contract import StageError
from spaceport.gaussians import sh_coefficients_for_degree

if TYPE_CHECKING:
    from spaceport.train.config import TrainConfig

FLOAT = 4
GIB = 2**30
# gsplat's tile intersections per Gaussian (16x16 tiles), and the bytes of each: an int64 key, an int32 id, and
# the radix sort's double buffer of both. Assumed, not measured: small Gaussians touch 1 to 4 tiles, large ones more.
GSPLAT_TILES_PER_GAUSSIAN = 8
GSPLAT_BYTES_PER_INTERSECTION = 24
# Our CPU rasteriser's 8x8 tile pairs per Gaussian and their bytes (9 packed floats, their gradient, the id).
CPU_PAIRS_PER_GAUSSIAN = 8
CPU_BYTES_PER_PAIR = 76
# The caching allocator holds more than the tensors it serves (reserved > allocated) as N changes.
HEADROOM = 1.2
# What the CUDA context, cuBLAS/cuDNN workspaces and gsplat's module take outside torch's counters.
CUDA_CONSTANT = 1 * GIB
# A CPU training process before its data: Python, torch, numba and the compiled kernels (measured ~0.4 GB).
CPU_CONSTANT = int(0.5 * GIB)


@dataclass(frozen=True)
class RunSize:
    """What a run's memory grows with.

    Attributes:
        gaussians: the most Gaussians it can hold (its ``max_gaussians``, or the SfM points if more).
        sh_degree: SH degree of the parameters (allocated for the final degree from the start).
        longest_side: the longest side of the largest training view, in pixels (what ``resolution`` caps).
        step_pixels: pixels of the largest training view (a step renders one).
        stored_pixels: pixels of every train and test view at the training resolution (all held on the device).
        eval_pixels: pixels of the largest held-out photo at full size (scored once, without gradients).
    """

    gaussians: int
    sh_degree: int
    longest_side: int
    step_pixels: int
    stored_pixels: int
    eval_pixels: int


@dataclass(frozen=True)
class MemoryEstimate:
    """The model's answer: the total with headroom, and each term in bytes (without headroom)."""

    device: str
    total_bytes: int
    parts: dict[str, int]
    per_gaussian_bytes: float
    per_pixel_bytes: float

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "total_bytes": self.total_bytes, "parts": dict(self.parts),
                "per_gaussian_bytes": self.per_gaussian_bytes, "per_pixel_bytes": self.per_pixel_bytes}  # fmt: skip


def per_gaussian_bytes(sh_degree: int, device: str) -> dict[str, float]:
    """Bytes per Gaussian by what holds them (``a`` is their sum)."""
    rest = sh_coefficients_for_degree(sh_degree)
    floats = 3 + 4 + 3 + 1 + 3 + 3 * rest  # means, quats, log-scales, opacity, sh0, shN
    parts = {
        "parameters, gradients and Adam's two moments": 4.0 * floats * FLOAT,
        # grad_sum, count, max_screen, and the screen-space means' retained gradient (2 floats).
        "densification statistics": 5.0 * FLOAT,
        # Saved by autograd (counted: 28 + 9.6 per SH coefficient at degree 1 and 3), plus the (N, K, 3) product of
        # basis and coefficients and its gradient while they exist.
        "SH colour graph": 28.0 + 12.0 * rest + 2 * 3 * rest * FLOAT,
    }
    if device == "cuda":
        parts |= {
            # radii (2 int32), means2d (2), depths, conics (3), opacities, colours (3), tiles per Gaussian, their
            # int64 cumulative sum; then gradients of means2d, conics, colours, opacities, means, quats, scales.
            "gsplat projection and its gradients": (2 + 2 + 1 + 3 + 1 + 3 + 1 + 2) * FLOAT + 19 * FLOAT,
            "screen radii for densification": 12.0 * FLOAT,
            "gsplat tile intersections": float(GSPLAT_TILES_PER_GAUSSIAN * GSPLAT_BYTES_PER_INTERSECTION),
        }
    else:
        parts |= {
            # Saved by autograd in rasterize_cpu._project (counted: 221 bytes), its gradients about half again.
            "projection graph and its gradients": 221.0 + 110.0,
            "radii, extents and depth order": 12.0 * FLOAT,
            "tile pairs": float(CPU_PAIRS_PER_GAUSSIAN * CPU_BYTES_PER_PAIR),
        }
    return parts


def per_pixel_bytes(device: str) -> dict[str, float]:
    """Bytes per pixel of one training step's view by what holds them (``b`` is their sum)."""
    # Image and alpha and their gradients, plus two per-pixel buffers of the rasteriser (gsplat: its alphas and last
    # ids; ours: final transmittance and contributor counts).
    render = (3 + 1 + 3 + 1 + 2) * FLOAT
    # The L1 + SSIM graph: autograd saves 276 bytes a pixel (counted), and the backward pass holds about as
    # many again in gradients while it runs.
    return {"render and its gradient": float(render), "L1 + SSIM loss graph and its backward": 2 * 276.0}


# Forward-only scoring of a full-size photo: the photo, the render, the clamped copy and SSIM's blurred moments.
EVAL_BYTES_PER_PIXEL = (3 + 3 + 3 + 1 + 15 * 3 + 5 * 3) * FLOAT
STORED_BYTES_PER_PIXEL = 3 * FLOAT


def estimate_bytes(size: RunSize, device: str) -> MemoryEstimate:
    """The memory a run of ``size`` needs on ``device`` (``cuda``: GPU memory; ``cpu``: resident memory)."""
    gaussian_parts = per_gaussian_bytes(size.sh_degree, device)
    pixel_parts = per_pixel_bytes(device)
    a, b = sum(gaussian_parts.values()), sum(pixel_parts.values())
    parts = {
        "gaussians": int(a * size.gaussians),
        "step pixels": int(b * size.step_pixels),
        # Scoring at full size comes after training, when the step's buffers are gone: the larger of the two counts.
        "full-size scoring": int(max(0.0, EVAL_BYTES_PER_PIXEL * size.eval_pixels - b * size.step_pixels)),
        "stored views": int(STORED_BYTES_PER_PIXEL * size.stored_pixels),
        "constant": CUDA_CONSTANT if device == "cuda" else CPU_CONSTANT,
    }
    return MemoryEstimate(device, int(HEADROOM * sum(parts.values())), parts, a, b)


def run_size(config: TrainConfig, sfm_dir: Path) -> RunSize:
    """The run's size from its configuration and the sfm channel's COLMAP model (no image is read)."""
    from spaceport.train.config import scaled_size
    from spaceport.train.data import _read_model

    reconstruction = _read_model(sfm_dir)
    longest, step, stored, full = 0, 0, 0, 0
    for image in reconstruction.images.values():
        if not image.has_pose:
            continue
        camera = reconstruction.cameras[image.camera_id]
        width, height = scaled_size(int(camera.width), int(camera.height), config.resolution)
        longest, step = max(longest, width, height), max(step, width * height)
        stored += width * height
        full = max(full, int(camera.width) * int(camera.height))
    gaussians = max(config.max_gaussians, reconstruction.num_points3D())
    return RunSize(gaussians, config.sh_degree, longest, step, stored, full)


def device_memory_bytes(device: str) -> int:
    """What the device offers: the GPU's total memory, or this machine's physical memory."""
    if device == "cuda":
        import torch

        return int(torch.cuda.get_device_properties(0).total_memory)
    import os

    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def refusal_reason(size: RunSize, device: str, available: int) -> str | None:
    """Why a run of ``size`` cannot fit in ``available`` bytes of ``device``, naming what to change; None if it fits."""
    estimate = estimate_bytes(size, device)
    if estimate.total_bytes <= available:
        return None
    parts, budget = estimate.parts, available / HEADROOM
    changes = []
    fitting_gaussians = (budget - (sum(parts.values()) - parts["gaussians"])) / estimate.per_gaussian_bytes
    if 1000 <= fitting_gaussians < size.gaussians:
        changes.append(f"set max_gaussians to at most {int(fitting_gaussians) // 1000 * 1000}")
    # The stored views and the step's buffers scale with the square of the longest side; full-size scoring does not.
    scalable = parts["stored views"] + parts["step pixels"]
    room = budget - parts["gaussians"] - parts["constant"] - parts["full-size scoring"]
    if scalable > 0 and room > 0:
        side = int(size.longest_side * math.sqrt(room / scalable))
        if 0 < side < size.longest_side:
            changes.append(f"set resolution to at most {side} (px, longest side; now {size.longest_side})")
    memory = "GPU memory" if device == "cuda" else "memory"
    changes.append(f"use an instance with at least {estimate.total_bytes / GIB:.0f} GiB of {memory}")
    largest = max(("gaussians", "stored views", "step pixels", "full-size scoring"), key=lambda name: parts[name])
    cause = {"gaussians": f"{size.gaussians:,} Gaussians at SH {size.sh_degree} (max_gaussians)",
             "stored views": f"the views held on the device ({size.stored_pixels / 1e6:,.0f} MP as float32)",
             "step pixels": f"one step's render and loss at {size.step_pixels / 1e6:.1f} MP",
             "full-size scoring": f"scoring held-out photos of {size.eval_pixels / 1e6:.1f} MP"}[largest]  # fmt: skip
    return (f"this run needs about {estimate.total_bytes / GIB:.1f} GiB of {memory} and the {device} device has "
            f"{available / GIB:.1f} GiB; the largest share is {cause}: " + ", or ".join(changes))  # fmt: skip


def check_fits(config: TrainConfig, sfm_dir: Path) -> MemoryEstimate:
    """Refuse a run the configured device cannot hold, before any image is loaded.

    Raises:
        StageError: the model's estimate exceeds the device's memory; the message names what to change.
    """
    size = run_size(config, sfm_dir)
    reason = refusal_reason(size, config.device, device_memory_bytes(config.device))
    if reason is not None:
        raise StageError(reason)
    return estimate_bytes(size, config.device)
