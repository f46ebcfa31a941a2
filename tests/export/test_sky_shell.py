"""The sky shell: found from the train stage's record, from a run's report or from its shape, and left out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spaceport.export.sky_shell import detect_shell, find_shell, scene_without_shell
from spaceport.gaussians import write_ply
from spaceport.scene.markers import marked_scene

from .scenes import random_cloud, with_sky_shell


def test_manifest_beside_the_ply_says_where_the_shell_starts(tmp_path: Path) -> None:
    # GIVEN a trained PLY with its shell and the train stage's manifest beside it
    cloud, description = with_sky_shell(marked_scene())
    write_ply(cloud, tmp_path / "scene.ply")
    (tmp_path / "manifest.json").write_text(json.dumps({"stage": "train", "sky_shell": description}))
    # WHEN the shell is looked for
    shell = find_shell(cloud, tmp_path / "scene.ply")
    # THEN the manifest says it, and the scene without it is exactly the trained Gaussians
    assert (shell.first, shell.gaussians, shell.source) == (description["first"], 4096, "manifest")
    assert np.array_equal(scene_without_shell(cloud, shell).means, marked_scene().means)


def test_a_runs_report_says_it_too_and_a_null_shell_means_none(tmp_path: Path) -> None:
    # GIVEN a run folder whose report.json records the shell, and one trained without a sky (sky_shell null)
    cloud, description = with_sky_shell(marked_scene())
    (tmp_path / "report.json").write_text(json.dumps({"train": {"sky_shell": description}}))
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "report.json").write_text(json.dumps({"train": {"sky_shell": None}}))
    # WHEN the shells are looked for
    recorded = find_shell(cloud, tmp_path / "scene.ply")
    none = find_shell(marked_scene(), plain / "scene.ply")
    # THEN the report gives the first and none is none, said so
    assert (recorded.first, recorded.source) == (description["first"], "report")
    assert none.gaussians == 0 and none.describe() == "sky shell: none (per the run's report.json)"


def test_without_a_record_the_shell_is_found_by_its_shape() -> None:
    # GIVEN a PLY with a shell and no record of it, and clouds without one (random; a scene whose last 4,096
    # Gaussians lie on a sphere that does not hold the rest)
    cloud, description = with_sky_shell(marked_scene())
    random = random_cloud(6000, degree=1)
    outer, _ = with_sky_shell(marked_scene())
    outer.means[: description["first"]] *= 100.0  # the scene now reaches far beyond the sphere
    # WHEN the shape is examined
    found, absent, not_holding = detect_shell(cloud), detect_shell(random), detect_shell(outer)
    # THEN the shell is found exactly, and nothing in the others
    assert (found.first, found.gaussians, found.source) == (description["first"], 4096, "detected")
    assert absent.gaussians == 0 and not_holding.gaussians == 0
    assert found.describe().startswith(f"sky shell: Gaussians {description['first']} to {len(cloud) - 1} (found by")


def test_the_option_wins_and_is_checked(tmp_path: Path) -> None:
    # GIVEN a PLY with a shell recorded beside it
    cloud, description = with_sky_shell(marked_scene())
    (tmp_path / "manifest.json").write_text(json.dumps({"stage": "train", "sky_shell": description}))
    # WHEN the user says none, or an index, or nonsense
    # THEN none keeps everything, an index is taken as given, nonsense is refused naming what is allowed
    assert find_shell(cloud, tmp_path / "scene.ply", "none").gaussians == 0
    assert find_shell(cloud, tmp_path / "scene.ply", "100").first == 100
    with pytest.raises(ValueError, match="none, auto or the index"):
        find_shell(cloud, tmp_path / "scene.ply", "last")


def test_a_record_that_does_not_fit_the_ply_is_refused(tmp_path: Path) -> None:
    # GIVEN a manifest describing a shell for another PLY (one with fewer Gaussians)
    cloud, description = with_sky_shell(marked_scene())
    (tmp_path / "manifest.json").write_text(json.dumps({"stage": "train", "sky_shell": description | {"first": 5}}))
    # WHEN the shell is looked for THEN the mismatch is named
    with pytest.raises(ValueError, match="but the PLY holds"):
        find_shell(cloud, tmp_path / "scene.ply")
