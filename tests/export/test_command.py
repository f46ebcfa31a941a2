"""``spaceport export``: a run's folder or a PLY to 3D Tiles, glTF and SPZ, saying what it did with the sky shell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spaceport.cli import main
from spaceport.export.splat_gltf import read_splat_glb
from spaceport.export.spz import decode
from spaceport.gaussians import write_ply
from spaceport.scene.markers import marked_scene

from .scenes import gps_georef, upright_georef, with_sky_shell


def _run_folder(folder: Path, georef: dict, record_shell: bool = True) -> dict:
    """A finished run's published outputs (scene.ply with its sky shell, georef.json, report.json)."""
    cloud, description = with_sky_shell(marked_scene())
    folder.mkdir(parents=True, exist_ok=True)
    write_ply(cloud, folder / "scene.ply")
    (folder / "georef.json").write_text(json.dumps(georef))
    report = {"status": "succeeded", "train": {"sky_shell": description} if record_shell else {}, "outputs": {}}
    (folder / "report.json").write_text(json.dumps(report))
    return description


def test_export_of_a_gps_run_writes_all_three_without_the_sky(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # GIVEN a run registered by GPS whose report records its sky shell
    description = _run_folder(tmp_path / "run", gps_georef())
    # WHEN it is exported with the defaults
    code = main(["export", str(tmp_path / "run")])
    printed = capsys.readouterr().out
    # THEN the tileset, the GLB and the SPZ are written, none with the shell, the report lists them, and the
    # output says where the shell was and that it was left out
    assert code == 0
    assert (tmp_path / "run" / "tiles" / "tileset.json").is_file()
    assert len(read_splat_glb((tmp_path / "run" / "scene.glb").read_bytes())) == description["first"]
    assert len(decode((tmp_path / "run" / "scene.spz").read_bytes())) == description["first"]
    outputs = json.loads((tmp_path / "run" / "report.json").read_text())["outputs"]
    assert {"tiles/tileset.json", "scene.glb", "scene.spz"} <= set(outputs)
    assert f"sky shell: Gaussians {description['first']} to" in printed and "(left out)" in printed
    assert "tiles/tileset.json: " in printed and "1 tiles in 1 levels" in printed


def test_keep_sky_shell_puts_it_into_glb_and_spz_only(tmp_path: Path) -> None:
    # GIVEN a GPS run with its sky shell recorded
    description = _run_folder(tmp_path / "run", gps_georef())
    # WHEN it is exported keeping the shell
    assert main(["export", str(tmp_path / "run"), "--keep-sky-shell"]) == 0
    # THEN the GLB and SPZ hold the shell too, the tileset never does
    total = description["first"] + description["gaussians"]
    assert len(read_splat_glb((tmp_path / "run" / "scene.glb").read_bytes())) == total
    assert len(decode((tmp_path / "run" / "scene.spz").read_bytes())) == total
    tileset = json.loads((tmp_path / "run" / "tiles" / "tileset.json").read_text())
    half_sizes = np.array(tileset["root"]["boundingVolume"]["box"])[[3, 7, 11]]
    assert half_sizes.max() < 20.0  # the marked scene's half size, not the shell's 10x


def test_a_run_without_gps_gets_glb_and_spz_and_is_told_why(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # GIVEN an upright run (no GPS)
    _run_folder(tmp_path / "run", upright_georef())
    # WHEN it is exported with the defaults, and then asked for 3dtiles explicitly
    default = main(["export", str(tmp_path / "run")])
    printed = capsys.readouterr().out
    explicit = main(["export", str(tmp_path / "run"), "--format", "3dtiles"])
    error = capsys.readouterr().err
    # THEN the defaults write the GLB and the SPZ and say why there is no tileset; asking for one fails (exit 2)
    assert default == 0 and (tmp_path / "run" / "scene.glb").is_file() and (tmp_path / "run" / "scene.spz").is_file()
    assert not (tmp_path / "run" / "tiles").exists()
    assert "3dtiles: not written: the scene is not georeferenced (frame: upright)" in printed
    assert explicit == 2 and "not georeferenced" in error


def test_a_bare_ply_has_its_shell_found_by_shape(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # GIVEN a PLY alone (no manifest, no report) with georef.json given by option, into another folder
    cloud, description = with_sky_shell(marked_scene())
    write_ply(cloud, tmp_path / "trained.ply")
    (tmp_path / "where.json").write_text(json.dumps(gps_georef()))
    # WHEN it is exported as glb only
    code = main(["export", str(tmp_path / "trained.ply"), "--format", "glb", "--georef", str(tmp_path / "where.json"),
                 "--out", str(tmp_path / "out")])  # fmt: skip
    # THEN the shell is found by its shape, said so, and left out; only the GLB is written
    assert code == 0
    assert "found by its shape" in capsys.readouterr().out
    assert len(read_splat_glb((tmp_path / "out" / "scene.glb").read_bytes())) == description["first"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scene.glb"]


def test_export_says_what_to_pass(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # GIVEN a folder without scene.ply and a PLY with a nonsense --sky-shell
    (tmp_path / "empty").mkdir()
    write_ply(marked_scene(), tmp_path / "scene.ply")
    # WHEN each is exported THEN each fails with exit 2 and the reason
    assert main(["export", str(tmp_path / "empty")]) == 2
    assert "has no scene.ply" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "scene.ply"), "--sky-shell", "999999"]) == 2
    assert "--sky-shell takes" in capsys.readouterr().err
