"""Downloading a finished job brings its exports too (``scene.glb``, ``scene.spz`` and the tileset that
GET /jobs/{id} links), each checked against the compress stage's manifest like the scene."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spaceport.cli import main
from spaceport.cloud.client.errors import VerificationError
from spaceport.export.tileset import read_tileset
from spaceport.gaussians import write_ply
from spaceport.scene.markers import marked_scene

from ..export.scenes import gps_georef
from .conftest import client_for, finished_job, put_stage_output

JOB = "job-0001"


def compress_output_on_the_globe(work: Path) -> Path:
    """What the compress stage writes for a scene registered by GPS (the real stage on the marked scene):
    scene.sog, scene.glb, scene.spz, tiles/ and the manifest listing them."""
    root = work / "ml"
    (root / "processing" / "input" / "model").mkdir(parents=True)
    (root / "processing" / "input" / "georef").mkdir(parents=True)
    write_ply(marked_scene(), root / "processing" / "input" / "model" / "scene.ply")
    (root / "processing" / "input" / "georef" / "georef.json").write_text(json.dumps(gps_georef()))
    assert main(["compress", "--stage", "--ml-root", str(root)]) == 0
    return root / "processing" / "output"


@pytest.fixture
def job_on_the_globe(stack, tmp_path: Path) -> Path:
    """A finished job whose compress output in S3 is that of a scene on the globe; its local copy."""
    finished_job(stack, JOB, tmp_path / "outputs")
    output = compress_output_on_the_globe(tmp_path / "compress")
    put_stage_output(stack, output, f"jobs/{JOB}/compress/")
    return output


def test_a_download_brings_the_glb_spz_and_tileset_each_verified(stack, job_on_the_globe: Path, tmp_path):
    # GIVEN a finished job on the globe, whose view links its GLB, SPZ and every file of its tileset
    client = client_for(stack)
    links = client.task(JOB).info()["downloads"]
    assert {"glb", "spz", "tiles"} <= set(links)
    verified: list[str] = []
    out = tmp_path / "scene"

    # WHEN it is downloaded
    files = client.task(JOB).download_assets(out, on_file=verified.append)

    # THEN the GLB, the SPZ and each file of the tileset are the stage's bytes, where the stage had them
    listed = json.loads((job_on_the_globe / "manifest.json").read_text())["files"]
    exported = sorted(name for name in listed if name in ("scene.glb", "scene.spz") or name.startswith("tiles/"))
    assert {"scene.glb", "scene.spz", "tiles/tileset.json"} < set(exported)
    for name in exported:
        assert (out / name).read_bytes() == (job_on_the_globe / name).read_bytes(), name
    # AND each was checked against the compress manifest, and the command reports it among the files
    assert set(exported) <= set(verified)
    assert set(exported) <= set(files)
    # AND the downloaded tileset reads back as the scene's Gaussians
    _, tiles = read_tileset(out / "tiles")
    assert sum(len(cloud) for meta, cloud in tiles if meta.get("geometricError") == 0) == len(marked_scene())


def test_a_corrupted_tile_fails_the_download_and_leaves_nothing_behind(stack, job_on_the_globe: Path, tmp_path):
    # GIVEN a finished job on the globe, and a transfer of one tile's content that arrives with one byte changed
    tile = next(path for path in (job_on_the_globe / "tiles").rglob("*.glb"))
    listed = tile.relative_to(job_on_the_globe).as_posix()
    stack.faults.corrupt_keys = {f"compress/{listed}"}
    out = tmp_path / "downloads" / "scene"

    # WHEN it is downloaded
    with pytest.raises(VerificationError) as refused:
        client_for(stack).task(JOB).download_assets(out)

    # THEN the error names the tile and the compress manifest, and neither the folder nor a partial copy is left
    assert listed in str(refused.value) and "compress manifest" in str(refused.value)
    assert list((tmp_path / "downloads").iterdir()) == []
