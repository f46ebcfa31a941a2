"""Decode SOG version 2 back to a GaussianCloud: for tests, the viewer's preview and benchmarks.

The inverse of ``sog.py``, written from the format (see its docstring), the same arithmetic the PlayCanvas
engine and splat-transform use, so all three decoders agree.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from spaceport.compress.sog import META_NAME, PALETTE_ROW
from spaceport.gaussians import GaussianCloud, sh_coefficients_for_degree

# splat-transform clamps alpha before the logit so 0 and 255 stay finite.
_ALPHA_EPSILON = 1e-6


def read_sog_files(path: Path) -> dict[str, bytes]:
    """The files of a SOG: a ``.sog`` bundle, a folder holding ``meta.json``, or the ``meta.json`` itself."""
    path = Path(path)
    if path.is_dir():
        path = path / META_NAME
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as bundle:
            return {name: bundle.read(name) for name in bundle.namelist()}
    meta = json.loads(path.read_bytes())
    names = [name for key in ("means", "scales", "quats", "sh0", "shN") for name in meta.get(key, {}).get("files", [])]
    return {META_NAME: path.read_bytes(), **{name: (path.parent / name).read_bytes() for name in names}}


def _texels(data: bytes, count: int) -> np.ndarray:
    """The first ``count`` texels of a WebP image, row-major, as (count, 4) uint8."""
    with Image.open(io.BytesIO(data)) as image:
        rgba = np.asarray(image.convert("RGBA"))
    flat = rgba.reshape(-1, 4)
    if len(flat) < count:
        raise ValueError(f"image of {len(flat)} texels is too small for {count} Gaussians")
    return flat[:count]


def decode_means(low: np.ndarray, high: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    mins, maxs = np.asarray(meta["mins"], np.float64), np.asarray(meta["maxs"], np.float64)
    quantised = low[:, :3].astype(np.float64) + 256.0 * high[:, :3]
    logs = mins + (maxs - mins) * quantised / 65535.0
    return np.sign(logs) * np.expm1(np.abs(logs))


def decode_quats(texels: np.ndarray) -> np.ndarray:
    """(w, x, y, z) from smallest-three texels; an invalid tag decodes as the identity, as splat-transform does."""
    kept = (texels[:, :3].astype(np.float64) / 255.0 * 2.0 - 1.0) / math.sqrt(2)
    largest = texels[:, 3].astype(np.int64) - 252
    valid = (largest >= 0) & (largest <= 3)
    largest = np.where(valid, largest, 0)
    quats = np.zeros((len(texels), 4))
    keep_index = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    np.put_along_axis(quats, keep_index, kept, axis=1)
    quats[np.arange(len(texels)), largest] = np.sqrt(np.maximum(0.0, 1.0 - np.sum(kept**2, axis=1)))
    quats[~valid] = [1.0, 0.0, 0.0, 0.0]
    return quats


def decode_opacity(alpha: np.ndarray) -> np.ndarray:
    probability = np.clip(alpha.astype(np.float64) / 255.0, _ALPHA_EPSILON, 1 - _ALPHA_EPSILON)
    return np.log(probability / (1 - probability))


def decode_sh_rest(files: dict[str, bytes], meta: dict[str, Any], count: int) -> np.ndarray:
    """(N, K, 3) SH-rest from the palette; a label beyond the palette decodes as zeros."""
    coefficients = sh_coefficients_for_degree(int(meta["bands"]))
    codebook = np.asarray(meta["codebook"], np.float32)
    labels_texels = _texels(files[meta["files"][1]], count)
    labels = labels_texels[:, 0].astype(np.int64) + (labels_texels[:, 1].astype(np.int64) << 8)
    with Image.open(io.BytesIO(files[meta["files"][0]])) as image:
        centroid_image = np.asarray(image.convert("RGBA"))
    rows = centroid_image.shape[0]
    if centroid_image.shape[1] != PALETTE_ROW * coefficients:
        raise ValueError(f"shN centroids are {centroid_image.shape[1]} wide, expected {PALETTE_ROW * coefficients}")
    palette = codebook[centroid_image[:, :, :3].reshape(rows * PALETTE_ROW, coefficients, 3)]
    valid = labels < min(int(meta["count"]), len(palette))
    result = np.zeros((count, coefficients, 3), np.float32)
    result[valid] = palette[labels[valid]]
    return result


def read_sog(path: Path) -> GaussianCloud:
    """Decode a SOG v2 scene (``.sog`` bundle, folder or ``meta.json``) in texel order.

    Raises:
        ValueError: not SOG version 2, or an image is too small for the count.
    """
    files = read_sog_files(path)
    meta = json.loads(files[META_NAME])
    if meta.get("version") != 2:
        raise ValueError(f"{path}: only SOG version 2 is supported, got version {meta.get('version')}")
    count = int(meta["count"])
    low, high = (_texels(files[name], count) for name in meta["means"]["files"])
    scales = _texels(files[meta["scales"]["files"][0]], count)
    colour = _texels(files[meta["sh0"]["files"][0]], count)
    has_sh = "shN" in meta and int(meta["shN"].get("bands", 0)) > 0
    return GaussianCloud(
        means=decode_means(low, high, meta["means"]),
        sh0=np.asarray(meta["sh0"]["codebook"], np.float32)[colour[:, :3]],
        shN=decode_sh_rest(files, meta["shN"], count) if has_sh else np.zeros((count, 0, 3)),
        opacities=decode_opacity(colour[:, 3]),
        log_scales=np.asarray(meta["scales"]["codebook"], np.float32)[scales[:, :3]],
        quats=decode_quats(_texels(files[meta["quats"]["files"][0]], count)),
    )
