"""The frames an export crosses, checked against pyproj (PROJ 9) and against what a rotation must keep."""

from __future__ import annotations

import numpy as np
import pyproj

from spaceport.export.frames import enu_to_ecef_matrix, enu_to_gltf, geodetic_to_ecef
from spaceport.transform import fibonacci_sphere, sh_basis, transform_cloud

from .scenes import ORIGIN, random_cloud

LLA_TO_ECEF = pyproj.Transformer.from_crs("EPSG:4979", "EPSG:4978", always_xy=True)


def _topocentric(origin: dict) -> pyproj.Transformer:
    """PROJ's own east-north-up frame at ``origin`` (what georef.json's proj_pipeline names)."""
    return pyproj.Transformer.from_pipeline(
        "+proj=pipeline +step +proj=cart +ellps=WGS84 +step +proj=topocentric +ellps=WGS84 "
        f"+lat_0={origin['latitude']} +lon_0={origin['longitude']} +h_0={origin['altitude_m']}"
    )


def test_geodetic_to_ecef_agrees_with_proj_to_a_tenth_of_a_millimetre() -> None:
    # GIVEN places from the equator to the poles, below and above the ellipsoid
    places = [(0.0, 0.0, 0.0), (46.5209, 6.5653, 413.0), (-33.9, 151.2, -25.0), (89.9, -120.0, 3000.0)]
    for latitude, longitude, height in places:
        # WHEN each goes to ECEF here and in PROJ
        ours = geodetic_to_ecef(latitude, longitude, height)
        theirs = np.array(LLA_TO_ECEF.transform(longitude, latitude, height))
        # THEN they agree
        assert np.abs(ours - theirs).max() < 1e-4, (latitude, longitude, ours - theirs)


def test_enu_to_ecef_matrix_is_proj_topocentric_frame() -> None:
    # GIVEN points up to a kilometre from the origin in its east-north-up frame
    rng = np.random.default_rng(1)
    enu = rng.uniform(-1000.0, 1000.0, (50, 3))
    # WHEN the matrix takes them to ECEF, and PROJ takes them back to geodetic and on to ECEF
    matrix = enu_to_ecef_matrix(ORIGIN["latitude"], ORIGIN["longitude"], ORIGIN["altitude_m"])
    ours = enu @ matrix[:3, :3].T + matrix[:3, 3]
    lon, lat, h = _topocentric(ORIGIN).transform(*enu.T, direction="INVERSE")
    theirs = np.stack(LLA_TO_ECEF.transform(lon, lat, h), axis=1)
    # THEN both agree to a tenth of a millimetre, and the matrix is a rotation plus an offset
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.allclose(matrix[:3, :3] @ matrix[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(matrix[:3, :3]) > 0


def test_enu_to_gltf_puts_up_on_y_and_north_on_minus_z() -> None:
    # GIVEN the scene's east, north and up axes
    rotation = enu_to_gltf()
    # WHEN they are carried into glTF's frame
    east, north, up = rotation.apply(np.eye(3))
    # THEN glTF's x is east, y is up and -z is north: a proper rotation, not a mirror
    assert np.allclose(east, [1, 0, 0]) and np.allclose(up, [0, 1, 0]) and np.allclose(north, [0, 0, -1])
    assert np.linalg.det(rotation.rotation) == 1.0


def test_gaussians_in_gltf_show_every_view_dependent_colour_where_they_showed_it() -> None:
    # GIVEN Gaussians with degree-3 SH, and view directions over the whole sphere
    cloud = random_cloud(20, degree=3, seed=2)
    directions = fibonacci_sphere(200)
    # WHEN they are turned into glTF's frame
    turned = transform_cloud(cloud, enu_to_gltf())
    # THEN the colour seen along d before is the colour seen along R d after, in every band (coefficients left as
    # they were would show other colours), and the centres turn with them
    before = np.einsum("dk,nkc->ndc", sh_basis(directions, 3), cloud.shN.astype(np.float64))
    after = np.einsum("dk,nkc->ndc", sh_basis(enu_to_gltf().apply(directions), 3), turned.shN.astype(np.float64))
    assert np.abs(before - after).max() < 1e-4
    unturned = np.einsum("dk,nkc->ndc", sh_basis(enu_to_gltf().apply(directions), 3), cloud.shN)
    assert np.abs(before - unturned).max() > 0.1
    assert np.allclose(turned.means, cloud.means @ enu_to_gltf().rotation.T, atol=1e-4)
