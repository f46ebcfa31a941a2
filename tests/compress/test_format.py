"""The SOG v2 container: meta.json fields, the ZIP layout, image sizes, and the quantisers' edge cases."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import numpy as np
import pytest
from PIL import Image

from spaceport.compress.decode import decode_quats
from spaceport.compress.palette import default_palette_size, kmeans_palette
from spaceport.compress.quantize import codebook_1d, morton_order
from spaceport.compress.sog import encode_quats, texture_size

Encoded = Any  # conftest.Encoded


def test_meta_json_has_every_v2_field(sh3_encoded: Encoded) -> None:
    # GIVEN the meta.json inside the bundle
    with zipfile.ZipFile(sh3_encoded.bundle) as bundle:
        meta = json.loads(bundle.read("meta.json"))
    # THEN it is version 2 with the count, bounds, 256-entry codebooks and file lists the readers expect
    assert meta["version"] == 2 and meta["count"] == 3000
    assert len(meta["means"]["mins"]) == len(meta["means"]["maxs"]) == 3
    assert np.all(np.asarray(meta["means"]["mins"]) < np.asarray(meta["means"]["maxs"]))
    assert meta["means"]["files"] == ["means_l.webp", "means_u.webp"]
    assert meta["quats"]["files"] == ["quats.webp"]
    for name in ("scales", "sh0", "shN"):
        assert len(meta[name]["codebook"]) == 256
        assert meta[name]["codebook"] == sorted(meta[name]["codebook"])
    assert meta["shN"]["bands"] == 3 and meta["shN"]["count"] == default_palette_size(3000)
    assert meta["shN"]["files"] == ["shN_centroids.webp", "shN_labels.webp"]


def test_bundle_is_a_zip_of_stored_entries_at_its_root(sh3_encoded: Encoded) -> None:
    # GIVEN the .sog bundle
    with zipfile.ZipFile(sh3_encoded.bundle) as bundle:
        entries = bundle.infolist()
        # THEN every entry is stored (not deflated), at the root, and a lossless WebP or meta.json
        assert all(entry.compress_type == zipfile.ZIP_STORED for entry in entries)
        assert all("/" not in entry.filename for entry in entries)
        names = {entry.filename for entry in entries}
        assert names == {"meta.json", "means_l.webp", "means_u.webp", "quats.webp", "scales.webp", "sh0.webp",
                         "shN_centroids.webp", "shN_labels.webp"}  # fmt: skip
        for name in names - {"meta.json"}:
            data = bundle.read(name)
            assert data[:4] == b"RIFF" and data[12:16] == b"VP8L", f"{name} is not lossless WebP"


def test_images_have_splat_transform_sizes(sh3_encoded: Encoded) -> None:
    # GIVEN 3000 Gaussians: width ceil(sqrt(3000)/4)*4 = 56, height ceil(3000/56/4)*4 = 56
    with zipfile.ZipFile(sh3_encoded.bundle) as bundle:
        sizes = {name: Image.open(io.BytesIO(bundle.read(name))).size for name in bundle.namelist()[1:]}
    # THEN every per-Gaussian image is 56x56 and the palette is 64 entries of 15 texels per row
    palette_rows = -(-default_palette_size(3000) // 64)
    assert sizes.pop("shN_centroids.webp") == (64 * 15, palette_rows)
    assert set(sizes.values()) == {(56, 56)}


@pytest.mark.parametrize(("count", "size"), [(1, (4, 4)), (17, (8, 4)), (1000, (32, 32)), (20000, (144, 140))])
def test_texture_size_is_square_ish_in_multiples_of_4(count: int, size: tuple[int, int]) -> None:
    # GIVEN a count, WHEN sized, THEN the texture holds it in the splat-transform layout
    width, height = texture_size(count)
    assert (width, height) == size and width * height >= count and width % 4 == 0 and height % 4 == 0


def test_quaternion_edge_cases_round_trip() -> None:
    # GIVEN a negative largest component, an unnormalised one, ties, and a zero quaternion
    quats = np.array([[-0.9, 0.1, 0.2, 0.3], [0, 0, 5.0, 0], [0.5, 0.5, 0.5, 0.5], [0, 0, 0, 0]], np.float32)
    # WHEN packed and unpacked
    decoded = decode_quats(encode_quats(quats))
    # THEN each is the same rotation (up to sign); the zero quaternion becomes the identity
    expected = np.array([[-0.9, 0.1, 0.2, 0.3], [0, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0]])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.all(np.abs(np.abs(np.sum(expected * decoded, axis=1)) - 1) < 1e-4)


def test_codebook_covers_the_tails_and_labels_are_nearest() -> None:
    # GIVEN heavy-tailed values
    values = np.random.default_rng(0).standard_t(3, size=50_000)
    # WHEN a 256-entry codebook is fitted
    book = codebook_1d(values)
    # THEN labels point at the nearest entry and the extremes are represented
    nearest = np.argmin(np.abs(values[:, None] - book.centroids[None].astype(np.float64)), axis=1)
    assert np.array_equal(book.labels, nearest)
    assert book.centroids[0] < np.quantile(values, 0.001) and book.centroids[-1] > np.quantile(values, 0.999)
    # (a quantile-initialised codebook leaves a worst error of about 12 and an RMS error of 0.17 here)
    error = book.centroids[book.labels] - values
    assert np.abs(error).max() < 0.5 and np.sqrt(np.mean(error**2)) < 0.04


def test_kmeans_palette_finds_separated_clusters() -> None:
    # GIVEN 8 well-separated clusters in 45 dimensions
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 10, (8, 45))
    points = centres[rng.integers(0, 8, 4000)] + rng.normal(0, 0.1, (4000, 45))
    # WHEN clustered into a palette larger than the cluster count (as SOG palettes are: thousands of entries)
    centroids, labels = kmeans_palette(points, 64, iterations=10)
    # THEN every point sits next to its own cluster's centre
    assert np.sqrt(np.mean((centroids[labels] - points) ** 2)) < 0.2


def test_palette_size_never_exceeds_splat_transform() -> None:
    # GIVEN a range of scene sizes, THEN the default palette is a power of two within splat-transform's size
    for count in [100, 1000, 5000, 20_000, 100_000, 2_000_000]:
        size = default_palette_size(count)
        splat_transform = min(64, 2 ** np.floor(np.log2(count / 1024))) * 1024
        assert 1 <= size <= min(splat_transform, count) and size & (size - 1) == 0


def test_morton_order_is_a_locality_preserving_permutation() -> None:
    # GIVEN random points
    points = np.random.default_rng(2).uniform(-5, 5, (5000, 3))
    # WHEN ordered
    order = morton_order(points)
    # THEN it is a permutation and consecutive points are much closer than in random order
    assert np.array_equal(np.sort(order), np.arange(5000))
    step = np.linalg.norm(np.diff(points[order], axis=0), axis=1).mean()
    assert step < 0.25 * np.linalg.norm(np.diff(points, axis=0), axis=1).mean()


def test_kmeans_on_a_subset_still_labels_every_point_with_its_nearest_entry() -> None:
    # GIVEN many more points than the fit uses (32 per entry)
    points = np.random.default_rng(3).normal(size=(3000, 9)).astype(np.float32)
    # WHEN clustered into 16 entries (fitted on 512 of them)
    centroids, labels = kmeans_palette(points, 16, iterations=4)
    # THEN every point carries the label of its nearest centroid
    distances = ((points[:, None, :] - centroids[None]) ** 2).sum(-1)
    assert np.array_equal(labels, np.argmin(distances, axis=1))


def test_weighted_kmeans_centres_entries_on_heavy_points() -> None:
    # GIVEN one cluster of two points where only the first matters (the second is transparent, say)
    points = np.array([[0.0, 0.0], [1.0, 1.0]], np.float32)
    # WHEN fitted into one entry with weights 1 and 0
    centroids, labels = kmeans_palette(points, 1, iterations=3, weights=np.array([1.0, 0.0]))
    # THEN the entry is the heavy point, not the plain mean
    np.testing.assert_allclose(centroids[0], [0.0, 0.0])
    assert labels.tolist() == [0, 0]
