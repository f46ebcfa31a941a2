"""Which photo pairs the sfm stage matches (pycolmap 4.2.1): beyond a small capture, a bounded number per photo,
so matching grows linearly with the photo count instead of with its square.

- ``exhaustive``: every pair, N(N-1)/2. The most robust, and affordable only for small captures, so ``auto``
  uses it up to ``SfmConfig.exhaustive_limit`` photos.
- ``spatial`` (photos carry GPS): each photo with its ``spatial_neighbours`` nearest photos on the ground (within
  ``spatial_max_distance_m``; height ignored: GPS altitude is the noisiest axis), then with its
  ``spatial_sequence_overlap`` next photos in name order. Neighbours on the ground join the strips of a mapping
  flight; the sequence gives a photo whose fix is wrong partners all the same.
- ``sequential`` (no GPS): each photo with its ``sequence_overlap`` next photos in name order (cameras name
  photos in capture order), plus loop closure: every ``loop_period``-th photo is looked up in a visual index of
  the capture and matched with its ``loop_candidates`` most similar photos, so a walk that returns to its start is
  joined there. COLMAP's published vocabulary trees cannot be downloaded here (nor, often, on a processing
  instance), so the vocabulary is trained on this capture's own SIFT descriptors with pycolmap's ``VisualIndex``.
  Training takes a fixed-size sample, so it costs the same for any capture; indexing the photos grows linearly,
  and the look-ups (N / period of them, each scoring the indexed photos through inverted files) in principle
  quadratically, with a constant small next to matching's.

COLMAP skips a pair that is already in the database, so the spatial and sequential passes never match one pair
twice. Pairs per photo (``MatchingFigures``) are counted in the database afterwards: every pair tried, and those
that passed geometric verification.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("spaceport.sfm")

METHODS = ("exhaustive", "sequential", "spatial")
# k-means (faiss) wants about 40 training descriptors per visual word; a small capture gets fewer words.
VOCABULARY_DESCRIPTORS_PER_WORD = 40


@dataclass(frozen=True)
class PairingConfig:
    """How many pairs each photo gets, per method; the defaults suit 100 to a few thousand photos.

    Attributes:
        spatial_min_gps_share: ``auto`` pairs by GPS when at least this share of the photos carries a fix.
        spatial_neighbours: nearest photos on the ground that each photo is paired with.
        spatial_max_distance_m: farther photos are not paired by GPS (metres; 100 is COLMAP's default).
        spatial_sequence_overlap: next photos in name order also paired in a GPS capture.
        sequence_overlap: next photos in name order paired without GPS.
        loop_closure: look for loops (a walk back past its start) in a capture without GPS.
        loop_period: every this many photos, one is looked up in the visual index.
        loop_candidates: the most similar photos each looked-up photo is paired with.
        loop_max_features: largest-scale features per photo used for the look-ups (bounds the index at 1600 px).
        vocabulary_words: visual words of the capture's own vocabulary.
        vocabulary_descriptors: SIFT descriptors sampled, evenly over the photos, to train it.
        vocabulary_iterations: k-means iterations of that training.
        seed: the sample's random seed.
    """

    spatial_min_gps_share: float = 0.5
    spatial_neighbours: int = 20
    spatial_max_distance_m: float = 100.0
    spatial_sequence_overlap: int = 3
    sequence_overlap: int = 10
    loop_closure: bool = True
    loop_period: int = 5
    loop_candidates: int = 10
    loop_max_features: int = 2048
    vocabulary_words: int = 1024
    vocabulary_descriptors: int = 65_536
    vocabulary_iterations: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("spatial_neighbours", "sequence_overlap", "loop_period", "loop_candidates",
                     "vocabulary_words", "vocabulary_iterations"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0.0 <= self.spatial_min_gps_share <= 1.0:
            raise ValueError("spatial_min_gps_share must lie in [0, 1]")

    def max_pairs_per_photo(self, method: str, photos: int) -> float:
        """The most pairs per photo (pairs tried / photos) a method can give a capture of ``photos`` photos.

        Every pair is counted once, for the photo that started it: exhaustive gives (N - 1) / 2 whatever the
        layout; the others a fixed number, however large the capture.
        """
        if method == "exhaustive":
            return (photos - 1) / 2
        if method == "spatial":
            return min(photos - 1, self.spatial_neighbours + self.spatial_sequence_overlap)
        loop = self.loop_candidates / self.loop_period if self.loop_closure else 0.0
        return min(photos - 1, self.sequence_overlap + loop)


def choose_method(
    requested: str, photos: int, photos_with_gps: int, exhaustive_limit: int, config: PairingConfig
) -> str:
    """The pairing method: ``requested`` unless it is ``auto``, else by photo count and GPS."""
    if requested != "auto":
        if requested not in METHODS:
            raise ValueError(f"unknown matcher {requested!r}; valid: auto, {', '.join(METHODS)}")
        return requested
    if photos <= exhaustive_limit:
        return "exhaustive"
    if photos and photos_with_gps >= config.spatial_min_gps_share * photos:
        return "spatial"
    return "sequential"


@dataclass
class MatchingFigures:
    """What matching did: pairs tried and verified, in all and per photo, and where its time went."""

    method: str
    photos: int
    pairs: int
    verified_pairs: int
    vocabulary_seconds: float | None = None
    vocabulary_words: int | None = None

    @property
    def pairs_per_photo(self) -> float:
        return self.pairs / self.photos if self.photos else 0.0

    def to_dict(self) -> dict[str, Any]:
        figures = asdict(self)
        figures["pairs_per_photo"] = round(self.pairs_per_photo, 2)
        figures["verified_pairs_per_photo"] = round(self.verified_pairs / self.photos, 2) if self.photos else 0.0
        return figures


def count_pairs(database: Path) -> tuple[int, int]:
    """Pairs tried (a row in ``matches``, even with no match) and pairs verified (inliers in ``two_view_geometries``).

    Read with sqlite directly: the counts are single queries, and pycolmap's ``Database`` has no count of tried pairs.
    """
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        tried = connection.execute("SELECT COUNT(*) FROM matches").fetchone()[0]
        verified = connection.execute("SELECT COUNT(*) FROM two_view_geometries WHERE rows > 0").fetchone()[0]
    return int(tried), int(verified)


def sample_descriptors(database: Path, total: int, seed: int) -> np.ndarray:
    """Up to ``total`` SIFT descriptors (float32 rows), an equal random share from every photo."""
    import pycolmap

    rng = np.random.default_rng(seed)
    db = pycolmap.Database.open(database)
    try:
        images = db.read_all_images()
        share = max(1, math.ceil(total / max(1, len(images))))
        parts = []
        for image in images:
            data = np.asarray(db.read_descriptors(image.image_id).data)
            if len(data) > share:
                data = data[np.sort(rng.choice(len(data), share, replace=False))]
            parts.append(data.astype(np.float32))
    finally:
        db.close()
    return np.concatenate(parts) if parts else np.zeros((0, 128), np.float32)


def build_vocabulary(database: Path, path: Path, config: PairingConfig, threads: int) -> int:
    """Train a visual vocabulary on this capture's descriptors and write it where loop detection reads it.

    Returns:
        Its number of visual words (0 when there are too few descriptors to train one).
    """
    import pycolmap

    descriptors = sample_descriptors(database, config.vocabulary_descriptors, config.seed)
    words = min(config.vocabulary_words, len(descriptors) // VOCABULARY_DESCRIPTORS_PER_WORD)
    if words < 16:
        return 0
    options = pycolmap.VisualIndex.BuildOptions()
    options.num_visual_words = words
    options.num_iterations = config.vocabulary_iterations
    # One round: the k-means restarts pick the best of several clusterings, which retrieval here does not need.
    options.num_rounds = 1
    options.num_threads = threads
    index = pycolmap.VisualIndex.create(128, 64)
    index.build(options, pycolmap.FeatureDescriptorsFloat(pycolmap.FeatureExtractorType.SIFT, descriptors))
    path.parent.mkdir(parents=True, exist_ok=True)
    index.write(str(path))
    return int(index.num_visual_words())


def _sequential_options(overlap: int, threads: int):
    import pycolmap

    options = pycolmap.SequentialPairingOptions()
    options.overlap = overlap
    # pycolmap's default pairs photo i with i + 2^k only (1, 2, 4, ... 512): mostly photos that share nothing
    # on a walk, and log N of them per photo. The plain window pairs the photos that overlap.
    options.quadratic_overlap = False
    options.num_threads = threads
    return options


def match_pairs(database: Path, method: str, work_dir: Path, config: PairingConfig, threads: int) -> MatchingFigures:
    """Match the photos in ``database`` by ``method``; their pairs and the two-view geometries go into it.

    Args:
        database: the COLMAP database, features extracted.
        method: one of ``METHODS`` (``choose_method``).
        work_dir: where the capture's vocabulary is written (sequential with loop closure).
        config: pairs per photo.
        threads: worker threads.
    """
    import pycolmap

    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = threads
    device = pycolmap.Device.cpu
    figures = MatchingFigures(method, 0, 0, 0)
    if method == "exhaustive":
        pycolmap.match_exhaustive(database, matching_options=matching, device=device)
    elif method == "spatial":
        spatial = pycolmap.SpatialPairingOptions()
        spatial.max_num_neighbors = config.spatial_neighbours
        spatial.max_distance = config.spatial_max_distance_m
        spatial.ignore_z = True
        spatial.num_threads = threads
        pycolmap.match_spatial(database, matching_options=matching, pairing_options=spatial, device=device)
        sequence = _sequential_options(config.spatial_sequence_overlap, threads)
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=sequence, device=device)
    else:
        sequence = _sequential_options(config.sequence_overlap, threads)
        if config.loop_closure:
            started = time.perf_counter()
            vocabulary = work_dir / "vocabulary.bin"
            figures.vocabulary_words = build_vocabulary(database, vocabulary, config, threads)
            figures.vocabulary_seconds = round(time.perf_counter() - started, 3)
            if figures.vocabulary_words:
                sequence.loop_detection = True
                sequence.loop_detection_period = config.loop_period
                sequence.loop_detection_num_images = config.loop_candidates
                sequence.loop_detection_max_num_features = config.loop_max_features
                sequence.vocab_tree_path = str(vocabulary)
            else:
                logger.info("matching: too few features for a vocabulary; no loop closure")
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=sequence, device=device)
    figures.pairs, figures.verified_pairs = count_pairs(database)
    figures.photos = _image_count(database)
    logger.info("matching (%s): %d pairs tried, %.1f per photo; %d verified", method, figures.pairs,
                figures.pairs_per_photo, figures.verified_pairs)  # fmt: skip
    return figures


def _image_count(database: Path) -> int:
    with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM images").fetchone()[0])
