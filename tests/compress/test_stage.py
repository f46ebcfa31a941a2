"""The compress stage under the SageMaker Processing contract, and the file-mode command."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from spaceport.cli import main
from spaceport.compress.decode import read_sog
from spaceport.compress.evaluate import synthetic_cloud
from spaceport.contract import verify_manifest
from spaceport.gaussians import write_ply


@pytest.fixture(name="ply")
def ply_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "source" / "scene.ply"
    write_ply(synthetic_cloud(1500, 1, seed=5), path)
    return path


def _root_with(tmp_path: Path, name: str, data: bytes) -> Path:
    root = tmp_path / "ml"
    (root / "processing" / "input" / "model").mkdir(parents=True)
    (root / "processing" / "input" / "model" / name).write_bytes(data)
    return root


def _tar(entries: dict[str, bytes], symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            link = tarfile.TarInfo("scene.ply")
            link.type, link.linkname = tarfile.SYMTYPE, symlink
            tar.addfile(link)
    return buffer.getvalue()


def test_stage_writes_bundle_unbundled_and_manifest(tmp_path: Path, ply: Path) -> None:
    # GIVEN scene.ply in the model channel
    root = _root_with(tmp_path, "scene.ply", ply.read_bytes())
    # WHEN the stage runs
    code = main(["compress", "--stage", "--ml-root", str(root)])
    # THEN it succeeds, the outputs decode, and the manifest is intact and carries the figures
    output = root / "processing" / "output"
    assert code == 0 and not (root / "output" / "message").exists()
    manifest = verify_manifest(output)
    assert manifest is not None
    assert manifest["gaussians"] == 1500 and manifest["sh_degree"] == 1
    assert manifest["ply_bytes"] == ply.stat().st_size
    assert manifest["sog_bytes"] == (output / "scene.sog").stat().st_size
    assert manifest["ratio"] == pytest.approx(manifest["ply_bytes"] / manifest["sog_bytes"], rel=0.01)
    assert {"read", "quantise", "sh_palette", "webp", "write", "total"} <= set(manifest["seconds"])
    assert {"scene.sog", "sog/meta.json", "sog/quats.webp"} <= set(manifest["files"])
    np.testing.assert_array_equal(read_sog(output / "scene.sog").means, read_sog(output / "sog").means)
    assert [p.name for p in (root / "processing").iterdir()] == ["input", "output"]  # scratch cleaned up


def test_stage_reads_scene_ply_from_the_training_model_tar_gz(tmp_path: Path, ply: Path) -> None:
    # GIVEN the training job's model.tar.gz with scene.ply beside other files
    archive = _tar({"./scene.ply": ply.read_bytes(), "./cameras.json": b"{}"})
    root = _root_with(tmp_path, "model.tar.gz", archive)
    # WHEN the stage runs
    code = main(["compress", "--stage", "--ml-root", str(root)])
    # THEN the scene inside is compressed
    assert code == 0
    assert len(read_sog(root / "processing" / "output" / "scene.sog")) == 1500


@pytest.mark.parametrize(
    ("archive", "reason"),
    [
        (_tar({"../scene.ply": b"ply\n"}), "no scene.ply at its root"),
        (_tar({}, symlink="/etc/passwd"), "no scene.ply at its root"),
        (b"not a tar at all", "not a readable tar.gz"),
    ],
)
def test_stage_rejects_unsafe_or_broken_archives(tmp_path: Path, archive: bytes, reason: str) -> None:
    # GIVEN an archive whose scene.ply escapes the root, is a link, or that is not a tar
    root = _root_with(tmp_path, "model.tar.gz", archive)
    # WHEN the stage runs
    code = main(["compress", "--stage", "--ml-root", str(root)])
    # THEN it fails with the reason, writes nothing outside its folders, and leaves no manifest
    assert code == 1
    assert reason in (root / "output" / "message").read_text()
    assert not (root / "processing" / "output" / "manifest.json").exists()
    assert not (tmp_path / "scene.ply").exists()


def test_truncated_ply_fails_with_a_specific_reason(tmp_path: Path, ply: Path) -> None:
    # GIVEN a PLY cut off in the middle of its data
    data = ply.read_bytes()
    root = _root_with(tmp_path, "scene.ply", data[: len(data) // 2])
    # WHEN the stage runs with explicit paths
    failure = tmp_path / "reason.txt"
    code = main(["compress", "--stage", "--ml-root", str(root), "--failure-file", str(failure)])
    # THEN it exits non-zero, says the file is truncated and how much is missing, and writes no manifest
    assert code == 1
    reason = failure.read_text()
    assert reason.startswith("compress: scene.ply is truncated") and "declares 1500 Gaussians" in reason
    assert not (root / "processing" / "output" / "manifest.json").exists()


def test_missing_input_names_what_was_found(tmp_path: Path) -> None:
    # GIVEN a model channel with an unrelated file
    root = _root_with(tmp_path, "notes.txt", b"hello")
    # WHEN the stage runs, THEN the reason lists the expected names and what was there
    assert main(["compress", "--stage", "--ml-root", str(root)]) == 1
    reason = (root / "output" / "message").read_text()
    assert "no scene.ply or model.tar.gz" in reason and "notes.txt" in reason


def test_non_finite_gaussians_are_dropped_and_counted(tmp_path: Path) -> None:
    # GIVEN a cloud where two Gaussians diverged
    cloud = synthetic_cloud(800, 0, seed=6)
    cloud.means[3] = np.nan
    cloud.opacities[10] = np.inf
    write_ply(cloud, tmp_path / "in.ply")
    # WHEN the file-mode command compresses it
    code = main(["compress", str(tmp_path / "in.ply"), "--out", str(tmp_path / "out.sog")])
    # THEN the other 798 are kept
    assert code == 0 and len(read_sog(tmp_path / "out.sog")) == 798


def test_file_mode_writes_both_forms_and_honours_the_palette(tmp_path: Path, ply: Path, capsys) -> None:
    # GIVEN a palette size and an unbundled folder
    args = ["compress", str(ply), "--out", str(tmp_path / "o.sog"), "--unbundled-dir", str(tmp_path / "u")]
    # WHEN compressed
    code = main([*args, "--sh-palette", "128", "--iterations", "3"])
    # THEN both forms exist, the palette has 128 entries and the summary is JSON
    assert code == 0
    meta = json.loads((tmp_path / "u" / "meta.json").read_text())
    assert meta["shN"]["count"] == 128
    summary = json.loads(capsys.readouterr().out)
    assert summary["sog_bytes"] == (tmp_path / "o.sog").stat().st_size and summary["ratio"] > 3


def test_usage_errors_exit_2(tmp_path: Path, ply: Path) -> None:
    # GIVEN contradictory or missing arguments, THEN the command refuses with exit code 2
    assert main(["compress", str(ply)]) == 2
    assert main(["compress", "--stage", str(ply)]) == 2
    assert main(["compress", str(ply), "--out", str(tmp_path / "x.sog"), "--sh-palette", "70000"]) == 2
