"""Niantic's SPZ, format version 2: what ``KHR_gaussian_splatting_compression_spz_2`` carries, and ``scene.spz``.

A gzip stream of a 16-byte header (``NGSP`` magic, version 2, point count, SH degree, fractional bits, flags,
a zero byte) followed by one array per attribute, all points' values of an attribute together:

- positions: 24-bit signed fixed point, ``fractional_bits`` of them after the binary point (12 unless the scene
  reaches past 2048 m from its origin, see :func:`fractional_bits_for`);
- opacities: ``sigmoid(opacity)`` in 8 bits;
- colours: the DC coefficients as ``f_dc * 0.15 * 255 + 127.5`` in 8 bits (0.15, not SH_C0, leaves room for
  colours a little outside [0, 1] that higher bands bring back);
- scales: the log-scales as ``(log + 10) * 16`` in 8 bits;
- rotations: x, y, z of the unit quaternion with w made non-negative, as ``v * 127.5 + 127.5`` (w is implied);
- higher SH: per point, coefficient after coefficient, red, green, blue inside, as ``round(v * 128) + 128``
  snapped to 5 significant bits for degree 1 and 4 for degrees 2 and 3 (the library's defaults for version 2).

Values are written in whatever frame the Gaussians are in: the format's readers in CesiumJS (``@spz-loader/core``
with ``coordinateSystem: UNSPECIFIED``) and splat-transform decode the stored numbers as they are.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass

import numpy as np

from spaceport.gaussians import GaussianCloud, sh_degree_for_coefficients

MAGIC = 0x5053474E  # "NGSP"
VERSION = 2
HEADER = struct.Struct("<IIIBBBB")
COLOUR_SCALE = 0.15
MAX_FRACTIONAL_BITS = 12
# SH quantisation buckets (256 >> bits): degree 1 keeps 5 bits, higher degrees 4.
SH1_BUCKET, SH_REST_BUCKET = 8, 16
DEGREE_ONE_COEFFICIENTS = 3


@dataclass(frozen=True)
class SpzHeader:
    points: int
    sh_degree: int
    fractional_bits: int
    antialiased: bool


def fractional_bits_for(means: np.ndarray) -> int:
    """The most fractional bits (at most 12: a quarter of a millimetre) that keep every coordinate inside 24 bits.

    Raises:
        ValueError: a coordinate is too far out even with none (8.4 km from the origin).
    """
    reach = float(np.max(np.abs(means))) if len(means) else 0.0
    for bits in range(MAX_FRACTIONAL_BITS, -1, -1):
        if round(reach * (1 << bits)) < (1 << 23):
            return bits
    raise ValueError(f"a Gaussian lies {reach:.0f} m from the origin: SPZ positions reach {1 << 23} m at most")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def _quantise_sh(sh_rest: np.ndarray) -> np.ndarray:
    """(N, K, 3) coefficients to bytes, each degree snapped to its bucket (degree 1: the first three)."""
    levels = np.round(sh_rest.astype(np.float64) * 128.0) + 128.0
    buckets = np.full(sh_rest.shape[1], SH_REST_BUCKET, dtype=np.float64)
    buckets[:DEGREE_ONE_COEFFICIENTS] = SH1_BUCKET
    buckets = buckets[None, :, None]
    snapped = np.floor((levels + buckets // 2) / buckets) * buckets
    return np.clip(snapped, 0, 255).astype(np.uint8)


def _quaternion_bytes(quats_wxyz: np.ndarray) -> np.ndarray:
    quats = quats_wxyz.astype(np.float64)
    quats = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    quats *= np.where(quats[:, :1] < 0, -1.0, 1.0)  # q and -q are one rotation: keep w >= 0, implied on reading
    return _to_uint8(quats[:, 1:] * 127.5 + 127.5)


def _fixed24(values: np.ndarray, bits: int) -> np.ndarray:
    fixed = np.round(values.astype(np.float64) * (1 << bits)).astype(np.int64).reshape(-1)
    little = fixed.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
    return little.reshape(-1)


def encode(cloud: GaussianCloud) -> bytes:
    """The SPZ (version 2, gzip) of ``cloud``, in the cloud's own frame; the same bytes for the same cloud."""
    bits = fractional_bits_for(cloud.means)
    header = HEADER.pack(MAGIC, VERSION, len(cloud), cloud.sh_degree, bits, 0, 0)
    sigmoid = 1.0 / (1.0 + np.exp(-cloud.opacities.astype(np.float64)))
    parts = [
        _fixed24(cloud.means, bits),
        _to_uint8(sigmoid * 255.0),
        _to_uint8(cloud.sh0.astype(np.float64) * (COLOUR_SCALE * 255.0) + 127.5).reshape(-1),
        _to_uint8((cloud.log_scales.astype(np.float64) + 10.0) * 16.0).reshape(-1),
        _quaternion_bytes(cloud.quats).reshape(-1),
        _quantise_sh(cloud.shN).reshape(-1),
    ]
    payload = header + b"".join(part.tobytes() for part in parts)
    return gzip.compress(payload, compresslevel=9, mtime=0)


def read_header(data: bytes) -> tuple[SpzHeader, bytes]:
    """The header and the decompressed body of an SPZ of format version 2.

    Raises:
        ValueError: not gzip, not SPZ, or another format version.
    """
    try:
        raw = gzip.decompress(data)
    except (OSError, EOFError) as error:
        raise ValueError(f"not a gzip stream: {error}") from error
    if len(raw) < HEADER.size:
        raise ValueError("too short for an SPZ header")
    magic, version, points, degree, bits, flags, _ = HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ValueError(f"not SPZ: magic {magic:#x}")
    if version != VERSION:
        raise ValueError(f"SPZ format version {version}; this reader takes version {VERSION}")
    return SpzHeader(points, degree, bits, bool(flags & 1)), raw[HEADER.size :]


def decode(data: bytes) -> GaussianCloud:
    """The Gaussians in an SPZ of format version 2, as its readers see them (opacities and scales as logits and
    logs, quaternions w first).

    Raises:
        ValueError: not an SPZ of version 2, or its arrays are cut short.
    """
    header, body = read_header(data)
    count, rest = header.points, (header.sh_degree + 1) ** 2 - 1
    sh_degree_for_coefficients(rest)
    sizes = [count * 9, count, count * 3, count * 3, count * 3, count * rest * 3]
    if len(body) < sum(sizes):
        raise ValueError(f"SPZ body holds {len(body)} bytes, {count} points need {sum(sizes)}")
    offsets = np.cumsum([0, *sizes])
    arrays = [np.frombuffer(body, np.uint8, size, int(start)) for start, size in zip(offsets, sizes, strict=False)]
    positions, alphas, colours, scales, rotations, sh = arrays
    triples = positions.reshape(-1, 3).astype(np.int32)
    fixed = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    xyz = rotations.reshape(count, 3).astype(np.float64) / 127.5 - 1.0
    w = np.sqrt(np.clip(1.0 - np.sum(xyz**2, axis=1), 0.0, None))
    alpha = np.clip(alphas.astype(np.float64) / 255.0, 1e-6, 1 - 1e-6)
    return GaussianCloud(
        means=(fixed.astype(np.float64) / (1 << header.fractional_bits)).reshape(count, 3),
        sh0=((colours.reshape(count, 3).astype(np.float64) / 255.0) - 0.5) / COLOUR_SCALE,
        shN=(sh.reshape(count, rest, 3).astype(np.float64) - 128.0) / 128.0,
        opacities=np.log(alpha / (1.0 - alpha)),
        log_scales=scales.reshape(count, 3).astype(np.float64) / 16.0 - 10.0,
        quats=np.concatenate([w[:, None], xyz], axis=1),
    )
