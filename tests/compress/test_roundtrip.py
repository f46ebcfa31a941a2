"""Round trips through splat-transform (the reference reader): every attribute within the format's quantisation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.compress.decode import read_sog
from spaceport.compress.evaluate import synthetic_cloud
from spaceport.compress.sog import SogConfig, log_transform, write_directory
from spaceport.gaussians import GaussianCloud

Encoded = Any  # conftest.Encoded: the cloud, its encoding, files and bundle path


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def _nearest_codebook_distance(values: np.ndarray, codebook: list[float]) -> np.ndarray:
    entries = np.asarray(codebook, np.float64)
    return np.min(np.abs(values.astype(np.float64)[..., None] - entries), axis=-1)


def test_positions_within_half_a_16_bit_log_step(sh3_encoded: Encoded, sh3_splat_transform: GaussianCloud) -> None:
    # GIVEN the original positions in texel order and splat-transform's decode of our .sog
    original, meta = sh3_encoded.reordered, sh3_encoded.encoding.meta["means"]
    # WHEN both are compared in the log domain the format quantises in
    error = np.abs(log_transform(sh3_splat_transform.means.astype(np.float64)) - log_transform(original.means))
    # THEN every axis is within half a 16-bit step (plus float32 rounding of the decoded PLY)
    step = (np.asarray(meta["maxs"]) - np.asarray(meta["mins"])) / 65535
    assert np.all(error <= 0.5 * step + 1e-6), (error / step).max()


def test_rotations_are_the_same_rotation(sh3_encoded: Encoded, sh3_splat_transform: GaussianCloud) -> None:
    # GIVEN unit quaternions of the original and the decode (q and -q are the same rotation)
    original = sh3_encoded.reordered.quats.astype(np.float64)
    original /= np.linalg.norm(original, axis=1, keepdims=True)
    decoded = sh3_splat_transform.quats.astype(np.float64)
    # WHEN the sign is aligned
    sign = np.sign(np.sum(original * decoded, axis=1, keepdims=True))
    # THEN each component is within the 8-bit smallest-three error and the angle is below 1 degree
    assert np.abs(original - sign * decoded).max() < 0.01
    angle = 2 * np.arccos(np.clip(np.abs(np.sum(original * decoded, axis=1)), 0, 1))
    assert np.degrees(angle).max() < 1.0
    np.testing.assert_allclose(np.linalg.norm(decoded, axis=1), 1.0, atol=1e-5)


def test_scales_and_colours_take_their_nearest_codebook_entry(
    sh3_encoded: Encoded, sh3_splat_transform: GaussianCloud
) -> None:
    # GIVEN the codebooks in meta.json
    meta, original = sh3_encoded.encoding.meta, sh3_encoded.reordered
    for name, before, after in [
        ("scales", original.log_scales, sh3_splat_transform.log_scales),
        ("sh0", original.sh0, sh3_splat_transform.sh0),
    ]:
        # WHEN each decoded value is compared with the best the codebook could do
        best = _nearest_codebook_distance(before, meta[name]["codebook"])
        error = np.abs(after.astype(np.float64) - before)
        # THEN it is that best entry (within float32), and the codebook is tight where the values are
        assert np.all(error <= best + 1e-5), name
        assert np.median(error) < 0.01, name


def test_opacity_within_half_of_one_255th(sh3_encoded: Encoded, sh3_splat_transform: GaussianCloud) -> None:
    # GIVEN opacities stored as round(255 sigmoid(logit))
    before, after = _sigmoid(sh3_encoded.reordered.opacities), _sigmoid(sh3_splat_transform.opacities)
    # THEN the decoded opacity is within half an 8-bit step (well inside 1/255)
    assert np.abs(after - before).max() <= 0.5 / 255 + 1e-5


def test_sh_rest_is_the_nearest_palette_entry(sh3_encoded: Encoded, sh3_splat_transform: GaussianCloud) -> None:
    # GIVEN the decoded palette (the distinct decoded SH-rest vectors)
    original = sh3_encoded.reordered.shN.reshape(len(sh3_encoded.cloud), -1).astype(np.float64)
    decoded = sh3_splat_transform.shN.reshape(len(original), -1).astype(np.float64)
    palette = np.unique(decoded, axis=0)
    meta = sh3_encoded.encoding.meta["shN"]
    assert len(palette) <= meta["count"]
    # WHEN each Gaussian's error is compared with its distance to the closest palette entry
    error = np.linalg.norm(original - decoded, axis=1)
    closest = np.sqrt(np.min(((original[:, None, :] - palette[None]) ** 2).sum(-1), axis=1))
    # THEN it is within the codebook's quantisation of that closest entry
    codebook = np.sort(np.asarray(meta["codebook"]))
    half_gap = np.max(np.diff(codebook)) / 2
    assert np.all(error <= closest + np.sqrt(original.shape[1]) * half_gap + 1e-6)
    # AND the palette explains a good part of the SH-rest energy (its spatially coherent part, not the noise)
    assert np.mean((original - decoded) ** 2) < 0.8 * np.mean(original**2)


def test_sh_rest_is_exact_to_the_codebook_with_one_entry_per_gaussian(
    tmp_path: Path, encode_to: Callable[..., Encoded], splat_transform_decode: Callable[..., GaussianCloud]
) -> None:
    # GIVEN as many palette entries as Gaussians, so clustering loses nothing
    cloud = synthetic_cloud(500, 2, seed=3)
    encoded = encode_to(cloud, tmp_path / "full.sog", SogConfig(sh_palette=len(cloud)))
    # WHEN splat-transform decodes it
    decoded = splat_transform_decode(encoded.bundle, tmp_path / "full.ply")
    # THEN each SH-rest coefficient is its nearest codebook entry
    best = _nearest_codebook_distance(encoded.reordered.shN, encoded.encoding.meta["shN"]["codebook"])
    assert np.all(np.abs(decoded.shN - encoded.reordered.shN) <= best + 1e-6)
    assert decoded.sh_degree == 2


def test_our_decoder_matches_splat_transform(sh3_encoded: Encoded, sh3_splat_transform: GaussianCloud) -> None:
    # GIVEN our decode of the same bundle
    ours = read_sog(sh3_encoded.bundle)
    # THEN every attribute equals splat-transform's, up to float32 rounding
    for name in ["means", "sh0", "shN", "opacities", "log_scales", "quats"]:
        np.testing.assert_allclose(getattr(ours, name), getattr(sh3_splat_transform, name), atol=2e-6, err_msg=name)


def test_sh_degree_0_has_no_palette_and_round_trips(
    tmp_path: Path, encode_to: Callable[..., Encoded], splat_transform_decode: Callable[..., GaussianCloud]
) -> None:
    # GIVEN a cloud without higher SH bands
    cloud = synthetic_cloud(700, 0, seed=4)
    # WHEN it is encoded and decoded by splat-transform
    encoded = encode_to(cloud, tmp_path / "sh0.sog")
    decoded = splat_transform_decode(encoded.bundle, tmp_path / "sh0.ply")
    # THEN there is no shN entry or image, and the DC colour and positions come back
    assert "shN" not in encoded.encoding.meta
    assert not any(name.startswith("shN") for name in encoded.files)
    assert decoded.sh_degree == 0 and len(decoded) == len(cloud)
    assert np.abs(decoded.sh0 - encoded.reordered.sh0).max() < 0.1
    np.testing.assert_allclose(read_sog(encoded.bundle).means, decoded.means, atol=2e-6)


def test_unbundled_meta_json_decodes_like_the_bundle(
    sh3_encoded: Encoded, tmp_path: Path, splat_transform_decode: Callable[..., GaussianCloud]
) -> None:
    # GIVEN the unbundled form written beside a meta.json
    write_directory(sh3_encoded.files, tmp_path / "sog")
    # WHEN splat-transform reads the meta.json
    decoded = splat_transform_decode(tmp_path / "sog" / "meta.json", tmp_path / "unbundled.ply")
    # THEN it decodes the same scene as the bundle, and the files named in meta.json are all there
    np.testing.assert_allclose(decoded.means, read_sog(sh3_encoded.bundle).means, atol=2e-6)
    meta = json.loads((tmp_path / "sog" / "meta.json").read_text())
    named = [name for key in ("means", "scales", "quats", "sh0", "shN") for name in meta[key]["files"]]
    assert sorted(named) == sorted(p.name for p in (tmp_path / "sog").glob("*.webp"))


def test_a_scene_with_its_sky_shell_round_trips_through_splat_transform(
    tmp_path: Path, encode_to: Callable[..., Encoded], splat_transform_decode: Callable[..., GaussianCloud]
) -> None:
    # GIVEN a trained-looking cloud with its sky baked behind it as a shell 40 times farther out
    import torch

    from spaceport.gaussians import concatenate
    from spaceport.train.background import SkyModel, bake_sky_shell

    scene = synthetic_cloud(700, 1, seed=5)
    sky = SkyModel(degree=2, learning_rate=0.01, device="cpu")
    with torch.no_grad():
        sky.coefficients[0] = torch.tensor([0.5, 0.8, 1.2])
        sky.coefficients[2] = torch.tensor([0.3, 0.2, 0.1])
    radius = 40 * float(np.abs(scene.means).max())
    cloud = concatenate([scene, bake_sky_shell(sky, np.zeros(3), radius, sh_rest=3)])

    # WHEN our encoder writes it and splat-transform reads it back
    encoded = encode_to(cloud, tmp_path / "sky.sog")
    decoded = splat_transform_decode(encoded.bundle, tmp_path / "sky.ply")

    # THEN every Gaussian comes back, the shell still on its sphere and the scene's positions within a small step
    assert len(decoded) == len(cloud)
    distances = np.linalg.norm(decoded.means.astype(np.float64), axis=1)
    assert np.isclose(distances, radius, rtol=2e-3).sum() == 4096
    near = distances < radius / 2
    np.testing.assert_allclose(np.sort(decoded.means[near], axis=0), np.sort(scene.means, axis=0), atol=5e-3)
