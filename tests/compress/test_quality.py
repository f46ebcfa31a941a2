"""Render quality: what a viewer shows from splat-transform's decode of our SOG, against the original PLY."""

from __future__ import annotations

from typing import Any

from spaceport.compress.evaluate import orbit_cameras, render_psnr
from spaceport.gaussians import GaussianCloud

Encoded = Any  # conftest.Encoded


def test_render_of_the_decoded_scene_stays_close_to_the_original(
    sh3_encoded: Encoded, sh3_splat_transform: GaussianCloud
) -> None:
    # GIVEN the SH-3 scene and splat-transform's decode of our bundle, rendered from three orbit cameras
    cameras = orbit_cameras(3, width=40, height=30)
    # WHEN the decode's renders are scored against the original's
    fidelity = render_psnr(sh3_encoded.reordered, sh3_splat_transform, cameras)
    # THEN they agree to at least 35 dB: against photos a trained scene matches at 20 to 30 dB, so this error
    # costs at most 10 log10(1 + 10^((30 - 35) / 10)) = 0.28 dB of that PSNR
    assert fidelity >= 35.0, fidelity
