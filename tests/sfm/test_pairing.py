"""Which pairs the sfm stage matches: a bounded number per photo beyond small captures, chosen by GPS when the
photos carry it and by capture order with loop closure otherwise."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

from spaceport.sfm.pairing import PairingConfig, choose_method

# The SfM runs below: small captures, with an exhaustive limit under their size so the bounded matchers run.
LIMIT = 8
SPATIAL = PairingConfig(spatial_neighbours=6, spatial_sequence_overlap=2)


def test_auto_matches_everything_for_small_captures_then_by_gps_or_by_order() -> None:
    config = PairingConfig()

    # THEN up to the limit every pair is matched, whatever the GPS
    assert choose_method("auto", 100, 100, 100, config) == "exhaustive"
    # AND beyond it photos with GPS (at least half of them) are paired by position, the rest by order
    assert choose_method("auto", 101, 101, 100, config) == "spatial"
    assert choose_method("auto", 400, 200, 100, config) == "spatial"
    assert choose_method("auto", 400, 199, 100, config) == "sequential"
    assert choose_method("auto", 400, 0, 100, config) == "sequential"
    # AND an explicit choice wins; an unknown one is refused with the valid ones
    assert choose_method("exhaustive", 5000, 0, 100, config) == "exhaustive"
    with pytest.raises(ValueError, match="valid: auto, exhaustive, sequential, spatial"):
        choose_method("vocabtree", 500, 0, 100, config)


def test_bounded_methods_give_a_photo_the_same_pairs_however_large_the_capture() -> None:
    config = PairingConfig()

    # THEN exhaustive pairs grow with the capture, the others stay fixed
    assert config.max_pairs_per_photo("exhaustive", 1001) == 500
    for method in ("spatial", "sequential"):
        assert config.max_pairs_per_photo(method, 200) == config.max_pairs_per_photo(method, 100_000) < 30
    # AND a tiny capture cannot have more pairs per photo than it has other photos
    assert config.max_pairs_per_photo("spatial", 5) == 4


def _pairs(database: Path) -> tuple[dict[int, str], list[tuple[int, int, int]]]:
    """Image names by id, and every pair tried as (id1, id2, verified inliers)."""
    with closing(sqlite3.connect(database)) as connection:
        names = dict(connection.execute("SELECT image_id, name FROM images"))
        verified = dict(connection.execute("SELECT pair_id, rows FROM two_view_geometries"))
        tried = [pair_id for (pair_id,) in connection.execute("SELECT pair_id FROM matches")]
    # COLMAP's pair id: id1 * 2147483647 + id2, with id1 < id2.
    return names, [(pair_id // 2147483647, pair_id % 2147483647, verified.get(pair_id, 0)) for pair_id in tried]


def _run(scene_dir: Path, out: Path, pairing: PairingConfig):
    from spaceport.sfm.stage import SfmConfig, run_sfm

    config = SfmConfig(exhaustive_limit=LIMIT, pairing=pairing)
    return run_sfm(scene_dir / "images", out / "output", out / "work", config)


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """A 24-photo lawn-mower grid with GPS (one fix wrong), through the stage with spatial pairing."""
    from spaceport.scene.generator import render_sample_scene
    from spaceport.scene.layouts import SceneConfig

    root = tmp_path_factory.mktemp("grid")
    scene = render_sample_scene(root / "scene", SceneConfig(layout="grid", images=24, supersampling=1))
    return scene, root / "run", _run(scene.root, root / "run", SPATIAL)


@pytest.mark.slow
def test_a_grid_is_paired_by_gps_neighbours_and_registers_as_one_model(grid_run) -> None:
    from spaceport.sfm.georef import read_gps_fixes, to_enu

    # GIVEN the grid's run and each photo's GPS fix, in metres
    scene, run, result = grid_run
    names, pairs = _pairs(run / "work" / "database.db")
    order = sorted(names.values())
    fixes = read_gps_fixes(scene.images_dir, order)
    ground = to_enu(list(fixes.values()), next(iter(fixes.values())))[:, :2]
    neighbours = {}
    for index, name in enumerate(order):
        distances = np.linalg.norm(ground - ground[index], axis=1)
        neighbours[name] = {order[other] for other in np.argsort(distances)[1 : SPATIAL.spatial_neighbours + 1]}

    # THEN matching paired by GPS, a bounded number of pairs per photo
    figures = result.figures["matching"]
    assert result.figures["matcher"] == figures["method"] == "spatial"
    assert figures["pairs"] == len(pairs)
    assert figures["pairs_per_photo"] <= SPATIAL.max_pairs_per_photo("spatial", 24)
    # AND every pair joins GPS neighbours (nearest on the ground) or photos close in flight order
    for first, second, _ in pairs:
        a, b = names[first], names[second]
        in_sequence = abs(order.index(a) - order.index(b)) <= SPATIAL.spatial_sequence_overlap
        assert in_sequence or b in neighbours[a] or a in neighbours[b], (a, b)
    # AND neighbouring strips are joined: verified pairs between photos of different strips exist
    strip = {name: index // 6 for index, name in enumerate(order)}  # 4 strips of 6 photos
    across = [(a, b) for a, b, inliers in pairs if inliers > 0 and strip[names[a]] != strip[names[b]]]
    assert len(across) > 24
    # AND the grid is one model of every photo (the one with the wrong fix too), put on Earth by GPS
    models = [path for path in (run / "work" / "models").iterdir() if path.is_dir()]
    assert len(models) == 1
    assert result.figures["registered_images"] == result.figures["total_images"] == 24
    truth = json.loads(scene.ground_truth_file.read_text())
    assert result.figures["georef"]["method"] == "gps"
    assert result.figures["georef"]["rejected"] == [truth["gps"]["wrong_fix"]]


@pytest.mark.slow
def test_a_walk_without_gps_is_paired_in_order_and_closes_its_loop(tmp_path: Path) -> None:
    from spaceport.scene.generator import render_sample_scene
    from spaceport.scene.layouts import SceneConfig

    # GIVEN a 32-photo walk round a block, without GPS, through the stage with sequential pairing
    scene = render_sample_scene(tmp_path / "scene", SceneConfig(layout="walk", images=32, supersampling=1))
    pairing = PairingConfig(sequence_overlap=6, loop_period=4, loop_candidates=6)
    result = _run(scene.root, tmp_path / "run", pairing)
    names, pairs = _pairs(tmp_path / "run" / "work" / "database.db")
    order = sorted(names.values())

    # THEN matching paired by order, with loop closure from a vocabulary trained on the capture itself
    figures = result.figures["matching"]
    assert figures["method"] == "sequential" and figures["vocabulary_words"] > 0
    assert figures["pairs_per_photo"] <= pairing.max_pairs_per_photo("sequential", 32)
    # AND besides neighbours in order, the loop's end was matched with its start and verified
    gaps = [(abs(order.index(names[a]) - order.index(names[b])), inliers) for a, b, inliers in pairs]
    assert any(gap >= 32 - pairing.sequence_overlap - 4 and inliers >= 15 for gap, inliers in gaps)
    # AND every photo registers in one model (COLMAP may have abandoned a first, partial start on the way)
    assert result.figures["registered_images"] == 32
