"""Every run publishes the exports: the compress stage (local and cloud) writes ``scene.glb``, ``scene.spz`` and,
for a scene registered by GPS, ``tiles/`` beside ``scene.sog``, the trained sky shell left out."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from spaceport.cli import main
from spaceport.contract import verify_manifest
from spaceport.export.splat_gltf import read_splat_glb
from spaceport.export.spz import decode
from spaceport.export.tileset import read_tileset
from spaceport.gaussians import write_ply
from spaceport.scene.markers import marked_scene

from .scenes import gps_georef, upright_georef, with_sky_shell


def _stage_root(tmp_path: Path, georef: dict | None) -> tuple[Path, dict]:
    """A compress stage's contract root: the training job's model.tar.gz (scene.ply with its sky shell and the
    train stage's manifest, which records the shell) and, when given, the sfm stage's georef.json."""
    cloud, description = with_sky_shell(marked_scene())
    write_ply(cloud, tmp_path / "scene.ply")
    train_manifest = json.dumps({"stage": "train", "sky_shell": description}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("scene.ply", (tmp_path / "scene.ply").read_bytes()), ("manifest.json", train_manifest)):
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    root = tmp_path / "ml"
    (root / "processing" / "input" / "model").mkdir(parents=True)
    (root / "processing" / "input" / "model" / "model.tar.gz").write_bytes(buffer.getvalue())
    if georef is not None:
        (root / "processing" / "input" / "georef").mkdir(parents=True)
        (root / "processing" / "input" / "georef" / "georef.json").write_text(json.dumps(georef))
    return root, description


def test_a_gps_scene_leaves_the_compress_stage_as_sog_glb_spz_and_tiles(tmp_path: Path) -> None:
    # GIVEN a trained model with its sky shell, and the sfm stage's georef.json registered by GPS
    root, description = _stage_root(tmp_path, gps_georef())
    # WHEN the compress stage runs
    code = main(["compress", "--stage", "--ml-root", str(root)])
    # THEN beside scene.sog are the GLB, the SPZ and the tileset, each without the sky shell
    output = root / "processing" / "output"
    assert code == 0
    assert len(read_splat_glb((output / "scene.glb").read_bytes())) == description["first"]
    assert len(decode((output / "scene.spz").read_bytes())) == description["first"]
    tileset, tiles = read_tileset(output / "tiles")
    assert sum(len(cloud) for meta, cloud in tiles if meta.get("geometricError") == 0) == description["first"]
    # AND the manifest vouches for every file of them and says what the export did
    manifest = verify_manifest(output)
    assert manifest is not None
    assert {"scene.sog", "scene.glb", "scene.spz", "tiles/tileset.json"} <= set(manifest["files"])
    assert any(name.startswith("tiles/content/") for name in manifest["files"])
    assert manifest["exports"]["sky_shell"]["source"] == "manifest"
    assert manifest["exports"]["3dtiles"]["gaussians"] == description["first"]


def test_a_scene_without_gps_gets_glb_and_spz_but_no_tileset(tmp_path: Path) -> None:
    # GIVEN a trained model whose sfm stage found no GPS (upright frame)
    root, description = _stage_root(tmp_path, upright_georef())
    # WHEN the compress stage runs
    code = main(["compress", "--stage", "--ml-root", str(root)])
    # THEN it writes the GLB and the SPZ, no tiles, and the manifest says why
    output = root / "processing" / "output"
    assert code == 0
    assert len(read_splat_glb((output / "scene.glb").read_bytes())) == description["first"]
    assert (output / "scene.spz").is_file() and not (output / "tiles").exists()
    assert "GPS" in verify_manifest(output)["exports"]["3dtiles"]["skipped"]  # type: ignore[index]
