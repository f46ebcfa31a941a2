"""glTF with KHR_gaussian_splatting: the plain GLB holds the PLY's numbers exactly, the SPZ one within SPZ's steps,
and the SPZ one has the layout CesiumJS 1.145's loaders read."""

from __future__ import annotations

import numpy as np
import pytest

from spaceport.export.frames import enu_to_gltf
from spaceport.export.glb import accessor_array, read_glb
from spaceport.export.splat_gltf import (
    SPLATTING,
    SPZ_EXTENSION,
    plain_glb,
    read_splat_glb,
    sh_attribute_names,
    spz_glb,
)
from spaceport.transform import transform_cloud

from .scenes import random_cloud
from .test_spz import assert_within_spz_quantisation


@pytest.mark.parametrize("degree", [0, 3])
def test_plain_glb_round_trip_gives_the_ply_back(degree: int) -> None:
    # GIVEN Gaussians in the scene's z-up frame, as the PLY holds them
    cloud = random_cloud(500, degree=degree, seed=3)
    # WHEN they are turned y-up, written as a plain GLB, read back and turned z-up again
    data = plain_glb(transform_cloud(cloud, enu_to_gltf()))
    back = transform_cloud(read_splat_glb(data), enu_to_gltf().inverse())
    # THEN every attribute is the PLY's to float32 rounding (rotations up to sign, SH through two rotations)
    assert np.abs(back.means - cloud.means).max() < 1e-5
    assert np.array_equal(back.sh0, cloud.sh0)
    assert np.abs(back.shN - cloud.shN).max(initial=0.0) < 1e-5
    assert np.abs(back.opacities - cloud.opacities).max() < 1e-4
    assert np.abs(back.log_scales - cloud.log_scales).max() < 1e-5
    unit = cloud.quats / np.linalg.norm(cloud.quats, axis=1, keepdims=True)
    assert np.abs(np.abs(np.sum(unit * back.quats, axis=1)) - 1.0).max() < 1e-5


def test_plain_glb_attributes_are_activated_and_xyzw() -> None:
    # GIVEN one Gaussian with known values
    cloud = random_cloud(1, degree=1, seed=4)
    # WHEN it is written as a plain GLB
    document, binary = read_glb(plain_glb(cloud))
    attributes = document["meshes"][0]["primitives"][0]["attributes"]
    value = lambda name: accessor_array(document, binary, attributes[name])[0]  # noqa: E731
    # THEN SCALE is linear, OPACITY a probability, ROTATION x, y, z, w, and f_rest regrouped per coefficient
    assert np.allclose(value(f"{SPLATTING}:SCALE"), np.exp(cloud.log_scales[0]), rtol=1e-6)
    assert np.isclose(value(f"{SPLATTING}:OPACITY")[0], 1 / (1 + np.exp(-cloud.opacities[0])), rtol=1e-6)
    unit = cloud.quats[0] / np.linalg.norm(cloud.quats[0])
    assert np.allclose(value(f"{SPLATTING}:ROTATION"), unit[[1, 2, 3, 0]], atol=1e-7)
    for index, name in enumerate(sh_attribute_names(1)):
        assert np.array_equal(value(name), cloud.shN[0, index])
    assert document["extensionsUsed"] == [SPLATTING] and "extensionsRequired" not in document
    assert document["meshes"][0]["primitives"][0]["mode"] == 0


def test_spz_glb_round_trip_is_within_quantisation() -> None:
    # GIVEN Gaussians already in glTF's frame
    cloud = random_cloud(2000, degree=3, seed=5)
    # WHEN they are written as an SPZ-compressed GLB and read back
    back = read_splat_glb(spz_glb(cloud))
    # THEN they are within SPZ's quantisation
    assert_within_spz_quantisation(back, cloud)


def test_spz_glb_has_the_layout_cesium_reads() -> None:
    # GIVEN an SPZ-compressed GLB of degree 2
    cloud = random_cloud(300, degree=2, seed=6)
    document, binary = read_glb(spz_glb(cloud))
    primitive = document["meshes"][0]["primitives"][0]
    # WHEN its parts are looked at
    splatting = primitive["extensions"][SPLATTING]
    compressed = splatting["extensions"][SPZ_EXTENSION]
    accessors = {name: document["accessors"][index] for name, index in primitive["attributes"].items()}
    # THEN the SPZ is nested inside KHR_gaussian_splatting, both extensions are required, and the accessors (none
    # with a bufferView) are exactly those CesiumJS's SPZ path fills: no OPACITY or SH_DEGREE_0 (their data is in
    # COLOR_0, an unsigned byte VEC4), with POSITION's bounds those of the decoded positions
    assert set(document["extensionsRequired"]) == {SPLATTING, SPZ_EXTENSION}
    assert document["bufferViews"][compressed["bufferView"]]["byteLength"] > 0
    assert splatting["kernel"] == "ellipse" and splatting["colorSpace"] == "srgb_rec709_display"
    expected = {"POSITION", "COLOR_0", f"{SPLATTING}:SCALE", f"{SPLATTING}:ROTATION", *sh_attribute_names(2)}
    assert set(accessors) == expected
    assert all("bufferView" not in accessor and accessor["count"] == 300 for accessor in accessors.values())
    assert accessors["COLOR_0"] == {"componentType": 5121, "normalized": True, "count": 300, "type": "VEC4"}
    decoded = read_splat_glb(spz_glb(cloud)).means
    assert np.allclose(accessors["POSITION"]["min"], decoded.min(axis=0)) and np.allclose(
        accessors["POSITION"]["max"], decoded.max(axis=0))  # fmt: skip
    assert len(binary) % 4 == 0


def test_reader_refuses_a_glb_without_splats() -> None:
    # GIVEN a GLB whose primitive is not a splat primitive
    from spaceport.export.glb import GlbBuilder

    builder = GlbBuilder()
    builder.document |= {"meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "mode": 0}]}]}
    builder.add_accessor({"componentType": 5126, "count": 1, "type": "VEC3"}, np.zeros((1, 3), np.float32))
    # WHEN it is read THEN the reader says so
    with pytest.raises(ValueError, match="not a KHR_gaussian_splatting point primitive"):
        read_splat_glb(builder.to_bytes())
