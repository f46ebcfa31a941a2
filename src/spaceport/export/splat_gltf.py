"""Gaussians as a glTF 2.0 point primitive with ``KHR_gaussian_splatting``, plain or SPZ-compressed.

The layout follows what renders in the readers we checked, CesiumJS 1.145 (``GltfLoader``,
``GltfVertexBufferLoader``) and the PlayCanvas engine 2.23 (``khr-gaussian-splatting.js``), where the extension's
drafts disagreed with them:

- **plain** (``scene.glb``): ``POSITION``; ``KHR_gaussian_splatting:ROTATION`` (x, y, z, w), ``:SCALE`` (linear
  standard deviations: exp of the PLY's logs), ``:OPACITY`` (linear, sigmoid of the PLY's logit),
  ``:SH_DEGREE_0_COEF_0`` (the PLY's ``f_dc``) and ``:SH_DEGREE_l_COEF_n`` for each complete degree (the PLY's
  channel-major ``f_rest`` regrouped as one RGB triple per coefficient); ``COLOR_0`` as the fallback colour for
  readers without the extension. All float32 but ``COLOR_0``: exactly the PLY's numbers.
- **SPZ** (3D Tiles content): the same primitive whose accessors have no buffer view; the data is the SPZ
  (format version 2) in the buffer view that ``KHR_gaussian_splatting_compression_spz_2`` names, nested inside
  ``KHR_gaussian_splatting``'s own ``extensions``. The attributes are those SPZ maps to: ``POSITION``, ``COLOR_0``
  (DC colour and opacity), ``:SCALE``, ``:ROTATION`` and the higher SH degrees. CesiumJS decodes the payload
  without any change of axes, so it holds the glTF frame's numbers.

The Gaussians given are already in the glTF frame (:func:`spaceport.export.frames.enu_to_gltf`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spaceport import __version__
from spaceport.export import spz
from spaceport.export.glb import FLOAT, UNSIGNED_BYTE, GlbBuilder, accessor_array, read_glb, view_bytes
from spaceport.gaussians import SH_C0, GaussianCloud

SPLATTING = "KHR_gaussian_splatting"
SPZ_EXTENSION = "KHR_gaussian_splatting_compression_spz_2"
POINTS = 0
COLOR_SPACE = "srgb_rec709_display"  # 3DGS trains on sRGB photos and blends display-referred colours


def sh_attribute(degree: int, coefficient: int) -> str:
    return f"{SPLATTING}:SH_DEGREE_{degree}_COEF_{coefficient}"


def sh_attribute_names(degree: int) -> list[str]:
    """The higher-order SH attributes of a cloud of SH ``degree``, in ``f_rest`` coefficient order."""
    return [sh_attribute(band, index) for band in range(1, degree + 1) for index in range(2 * band + 1)]


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))


def fallback_colours(cloud: GaussianCloud) -> np.ndarray:
    """(N, 4) uint8 ``COLOR_0``: the DC colour and the opacity, for readers that draw points."""
    rgb = 0.5 + SH_C0 * cloud.sh0.astype(np.float64)
    rgba = np.concatenate([rgb, _sigmoid(cloud.opacities)[:, None]], axis=1)
    return np.clip(np.round(rgba * 255.0), 0, 255).astype(np.uint8)


def unit_quaternions_xyzw(quats_wxyz: np.ndarray) -> np.ndarray:
    quats = quats_wxyz.astype(np.float64)
    quats = quats / np.linalg.norm(quats, axis=1, keepdims=True)
    return quats[:, [1, 2, 3, 0]]


def _float_accessor(builder: GlbBuilder, values: np.ndarray | None, kind: str, count: int, **extra: Any) -> int:
    accessor = {"componentType": FLOAT, "count": count, "type": kind, **extra}
    return builder.add_accessor(accessor, None if values is None else values.astype("<f4"))


def _position_bounds(means: np.ndarray) -> dict[str, list[float]]:
    means32 = means.astype(np.float32)
    return {"min": [float(v) for v in means32.min(axis=0)], "max": [float(v) for v in means32.max(axis=0)]}


def _document_shell(builder: GlbBuilder, attributes: dict[str, int], splatting: dict[str, Any],
                    extras: dict[str, Any] | None) -> None:  # fmt: skip
    primitive = {"attributes": attributes, "mode": POINTS, "extensions": {SPLATTING: splatting}}
    builder.document |= {
        "asset": {"version": "2.0", "generator": f"spaceport {__version__}"} | ({"extras": extras} if extras else {}),
        "meshes": [{"primitives": [primitive]}],
        "nodes": [{"mesh": 0}],
        "scenes": [{"nodes": [0]}],
        "scene": 0,
    }


def plain_glb(cloud: GaussianCloud, extras: dict[str, Any] | None = None) -> bytes:
    """A GLB holding ``cloud`` uncompressed (float32: the PLY's values, activated)."""
    builder, count = GlbBuilder(), len(cloud)
    attributes = {
        "POSITION": _float_accessor(builder, cloud.means, "VEC3", count, **_position_bounds(cloud.means)),
        "COLOR_0": builder.add_accessor(
            {"componentType": UNSIGNED_BYTE, "normalized": True, "count": count, "type": "VEC4"},
            fallback_colours(cloud),
        ),  # fmt: skip
        f"{SPLATTING}:ROTATION": _float_accessor(builder, unit_quaternions_xyzw(cloud.quats), "VEC4", count),
        f"{SPLATTING}:SCALE": _float_accessor(builder, np.exp(cloud.log_scales.astype(np.float64)), "VEC3", count),
        f"{SPLATTING}:OPACITY": _float_accessor(builder, _sigmoid(cloud.opacities), "SCALAR", count),
        sh_attribute(0, 0): _float_accessor(builder, cloud.sh0, "VEC3", count),
    }
    for index, name in enumerate(sh_attribute_names(cloud.sh_degree)):
        attributes[name] = _float_accessor(builder, cloud.shN[:, index, :], "VEC3", count)
    _document_shell(builder, attributes, {"kernel": "ellipse", "colorSpace": COLOR_SPACE}, extras)
    builder.document["extensionsUsed"] = [SPLATTING]
    return builder.to_bytes()


def spz_glb(cloud: GaussianCloud, extras: dict[str, Any] | None = None) -> bytes:
    """A GLB whose splat data is the SPZ of ``cloud`` (what CesiumJS renders in 3D Tiles)."""
    builder, count = GlbBuilder(), len(cloud)
    payload = spz.encode(cloud)
    # The bounds of the positions a reader will decode, not of the unquantised ones.
    decoded_means = spz.decode(payload).means if count else cloud.means
    attributes = {
        "POSITION": _float_accessor(builder, None, "VEC3", count, **_position_bounds(decoded_means)),
        "COLOR_0": builder.add_accessor(
            {"componentType": UNSIGNED_BYTE, "normalized": True, "count": count, "type": "VEC4"}
        ),  # fmt: skip
        f"{SPLATTING}:SCALE": _float_accessor(builder, None, "VEC3", count),
        f"{SPLATTING}:ROTATION": _float_accessor(builder, None, "VEC4", count),
    }
    for name in sh_attribute_names(cloud.sh_degree):
        attributes[name] = _float_accessor(builder, None, "VEC3", count)
    compression = {SPZ_EXTENSION: {"bufferView": builder.add_view(payload)}}
    splatting = {"kernel": "ellipse", "colorSpace": COLOR_SPACE, "extensions": compression}
    _document_shell(builder, attributes, splatting, extras)
    builder.document["extensionsUsed"] = [SPLATTING, SPZ_EXTENSION]
    builder.document["extensionsRequired"] = [SPLATTING, SPZ_EXTENSION]
    return builder.to_bytes()


def _logit(probability: np.ndarray) -> np.ndarray:
    clipped = np.clip(probability.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(clipped / (1.0 - clipped))


def read_splat_glb(data: bytes) -> GaussianCloud:
    """The Gaussians of a GLB written by :func:`plain_glb` or :func:`spz_glb` (in the glTF frame), as the PLY
    stores them: logit opacities, log scales, quaternions w first.

    Raises:
        ValueError: the file holds no ``KHR_gaussian_splatting`` primitive, or its parts disagree.
    """
    document, binary = read_glb(data)
    primitive = document["meshes"][0]["primitives"][0]
    splatting = primitive.get("extensions", {}).get(SPLATTING)
    if splatting is None or primitive.get("mode") != POINTS:
        raise ValueError(f"the first primitive is not a {SPLATTING} point primitive")
    attributes = primitive["attributes"]
    count = document["accessors"][attributes["POSITION"]]["count"]
    compressed = splatting.get("extensions", {}).get(SPZ_EXTENSION)
    if compressed is not None:
        cloud = spz.decode(view_bytes(document, binary, compressed["bufferView"]))
        expected = ["POSITION", "COLOR_0", f"{SPLATTING}:SCALE", f"{SPLATTING}:ROTATION"]
        expected += sh_attribute_names(cloud.sh_degree)
        if len(cloud) != count or sorted(attributes) != sorted(expected):
            raise ValueError(f"the SPZ holds {len(cloud)} points of SH degree {cloud.sh_degree}; the primitive "
                             f"declares {count} with attributes {sorted(attributes)}")  # fmt: skip
        return cloud
    read = lambda name: accessor_array(document, binary, attributes[name]).astype(np.float64)  # noqa: E731
    degree = max((int(name.split("_")[-3]) for name in attributes if "SH_DEGREE_" in name), default=0)
    rest = [read(name) for name in sh_attribute_names(degree)]
    xyzw = read(f"{SPLATTING}:ROTATION")
    return GaussianCloud(
        means=read("POSITION"),
        sh0=read(sh_attribute(0, 0)),
        shN=np.stack(rest, axis=1) if rest else np.zeros((count, 0, 3)),
        opacities=_logit(read(f"{SPLATTING}:OPACITY")[:, 0]),
        log_scales=np.log(read(f"{SPLATTING}:SCALE")),
        quats=xyzw[:, [3, 0, 1, 2]],
    )
