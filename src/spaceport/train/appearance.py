"""Per-photo exposure compensation: an affine colour transform per training photo, between the render and its loss.

A phone or drone sets exposure and white balance per photo; the scene does not change with them. Without
compensation the Gaussians (and the sky) must average the photos' brightness, and a view-dependent colour can mimic
the difference, which then shows from new viewpoints as blotches. With it, each training photo ``i`` is compared
with ``A_i @ render + b_i``, and the splat learns one canonical look, the look of the photo of median exposure.

``A_i`` starts as ``g_i I`` with ``g_i`` from EXIF: a photo exposed ``E_i = t_i ISO_i / N_i^2`` (exposure time,
ISO speed, f-number) records ``E_i / E_median`` times the light of the median photo, linearly, so about that ratio to
the power 1/2.2 in its gamma-encoded values. Photos without those tags start at 1. A held-out photo is scored with
its EXIF gain alone (metadata known before any pixel is compared, never fitted to it); ``Evaluation.cc_psnr``
reports the score once colour is forgiven entirely.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    import torch

EXIF_IFD = 0x8769
TAG_EXPOSURE_TIME, TAG_F_NUMBER, TAG_ISO = 0x829A, 0x829D, 0x8827
DISPLAY_GAMMA = 2.2


def exposure(path: Path) -> float | None:
    """``t ISO / N^2`` from the photo's EXIF, or None when a tag is missing or not positive."""
    try:
        with Image.open(path) as photo:
            tags = photo.getexif().get_ifd(EXIF_IFD)
        iso = tags.get(TAG_ISO)
        iso = iso[0] if isinstance(iso, tuple) else iso
        values = [float(tags[TAG_EXPOSURE_TIME]), float(iso), float(tags[TAG_F_NUMBER])]
    except (OSError, KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    if not all(math.isfinite(value) and value > 0 for value in values):
        return None
    return values[0] * values[1] / values[2] ** 2


def median_exposure(paths: list[Path]) -> float | None:
    """The exposure of the training photos' median photo: the canonical look (None: no photo says)."""
    known = sorted(value for value in (exposure(path) for path in paths) if value is not None)
    return known[len(known) // 2] if known else None


def exposure_gains(paths: list[Path], reference: float | None) -> list[float]:
    """Each photo's gain relative to the ``reference`` exposure (1 where EXIF or the reference does not say)."""
    gains = []
    for path in paths:
        value = exposure(path)
        gains.append(1.0 if value is None or reference is None else (value / reference) ** (1.0 / DISPLAY_GAMMA))
    return gains


def initial_gains(paths: list[Path]) -> list[float]:
    """Each training photo's starting gain relative to the photo of median exposure."""
    return exposure_gains(paths, median_exposure(paths))


class Appearance:
    """The training photos' affine colour transforms (V, 3, 4), trained with their own Adam."""

    def __init__(self, names: list[str], gains: list[float], learning_rate: float, device: str) -> None:
        import torch

        self.index = {name: position for position, name in enumerate(names)}
        initial = torch.zeros((len(names), 3, 4), device=device)
        initial[:, :3, :3] = torch.eye(3, device=device) * torch.tensor(gains, device=device)[:, None, None]
        self.transforms = initial.requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.transforms], lr=learning_rate, eps=1e-15)

    def apply(self, image: torch.Tensor, name: str) -> torch.Tensor:
        """(H, W, 3) ``image`` as photo ``name`` would record it."""
        transform = self.transforms[self.index[name]]
        return image @ transform[:, :3].T + transform[:, 3]

    def step(self) -> None:
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"transforms": self.transforms.detach().cpu(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, payload: dict) -> None:
        import torch

        with torch.no_grad():
            self.transforms.copy_(payload["transforms"].to(self.transforms.device))
        self.optimizer.load_state_dict(payload["optimizer"])
