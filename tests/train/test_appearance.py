"""Per-photo exposure compensation: EXIF exposure read, turned into starting gains, and trained per photo."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from spaceport.train.appearance import (
    EXIF_IFD,
    TAG_EXPOSURE_TIME,
    TAG_F_NUMBER,
    TAG_ISO,
    Appearance,
    exposure,
    initial_gains,
)
from spaceport.train.losses import colour_corrected, psnr


def _photo(path: Path, seconds: float | None, iso: int = 100, f_number: float = 2.8) -> Path:
    exif = Image.Exif()
    if seconds is not None:
        exif.get_ifd(EXIF_IFD).update({TAG_EXPOSURE_TIME: seconds, TAG_ISO: iso, TAG_F_NUMBER: f_number})
    Image.new("RGB", (8, 6), (120, 120, 120)).save(path, exif=exif)
    return path


def test_exposure_is_read_from_exif_and_gains_are_relative_to_the_median_photo(tmp_path: Path) -> None:
    # GIVEN three photos at 1/100 s, 1/50 s (a stop brighter) and 1/100 s at twice the ISO, and one without EXIF
    photos = [_photo(tmp_path / "a.jpg", 0.01), _photo(tmp_path / "b.jpg", 0.02),
              _photo(tmp_path / "c.jpg", 0.01, iso=200), _photo(tmp_path / "d.jpg", None)]  # fmt: skip

    # WHEN their exposures and starting gains are computed
    exposures = [exposure(path) for path in photos]
    gains = initial_gains(photos)

    # THEN exposure is t ISO / N^2; the median photo has gain 1, the brighter ones 2^(1/2.2), the unknown one 1
    assert exposures[0] == pytest.approx(0.01 * 100 / 2.8**2) and exposures[3] is None
    assert gains == pytest.approx([2 ** (-1 / 2.2), 1.0, 1.0, 1.0])


def test_a_photos_transform_learns_its_exposure_and_leaves_the_others_alone() -> None:
    # GIVEN a render and a photo of it taken 30 % brighter with a blue cast
    render = torch.rand((6, 8, 3), generator=torch.Generator().manual_seed(0)) * 0.7
    photo = render * torch.tensor([1.3, 1.3, 1.45]) + 0.02
    appearance = Appearance(["a.jpg", "b.jpg"], [1.0, 1.0], learning_rate=0.01, device="cpu")

    # WHEN photo a's transform is trained against it
    for _ in range(400):
        (appearance.apply(render, "a.jpg") - photo).abs().mean().backward()
        appearance.step()

    # THEN it reproduces the photo, and photo b's transform is still the identity
    assert psnr(appearance.apply(render, "a.jpg").detach(), photo) > 40.0
    assert torch.allclose(appearance.transforms[1].detach(), torch.eye(3, 4))


def test_colour_correction_forgives_exposure_and_white_balance_but_not_content() -> None:
    # GIVEN a photo, a render that is the photo with other exposure and balance, and one that is other content
    generator = torch.Generator().manual_seed(1)
    photo = torch.rand((6, 8, 3), generator=generator) * 0.8 + 0.1
    recoloured = photo * torch.tensor([0.8, 0.9, 1.1]) - 0.03
    other = torch.rand((6, 8, 3), generator=generator)

    # THEN the recoloured render scores perfectly once corrected, the other render does not
    assert psnr(colour_corrected(recoloured, photo), photo) > 60.0
    assert psnr(colour_corrected(other, photo), photo) < 20.0


def test_held_out_photos_are_scored_with_their_exif_gain_against_the_training_median(tmp_path: Path) -> None:
    # GIVEN training photos at 1/100 s and a held-out one at 1/50 s, with compensation on
    import dataclasses

    import numpy as np

    from spaceport.train.config import preset_config
    from spaceport.train.data import PosedImage
    from spaceport.train.trainer import held_out_gains, initial_state

    def source(name: str, seconds: float) -> PosedImage:
        return PosedImage(name, _photo(tmp_path / name, seconds), np.eye(3), np.eye(4), 8, 6, np.zeros((0, 3)))

    train = [source("a.jpg", 0.01), source("b.jpg", 0.01), source("c.jpg", 0.01)]
    test = [source("t.jpg", 0.02)]
    config = dataclasses.replace(preset_config("default", "cpu"), appearance=True)
    state = initial_state(np.zeros((2, 3), np.float32), np.full((2, 3), 0.5, np.float32), config, 1.0, train)

    # THEN the held-out photo, a stop brighter, is scored with the render brightened by 2^(1/2.2); without
    # compensation nothing is applied
    assert held_out_gains(state, train, test) == pytest.approx({"t.jpg": 2 ** (1 / 2.2)})
    state.appearance = None
    assert held_out_gains(state, train, test) is None
