"""The Khronos glTF validator passes our GLBs with only the issues of its not knowing the splat extensions."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.gltf_validation import ALLOWED_CODES, allowed_codes, findings, validate

from spaceport.export.glb import read_glb
from spaceport.export.sky_shell import SkyShell
from spaceport.export.writer import ExportOptions, export_scene
from spaceport.scene.markers import marked_scene

from .scenes import gps_georef


def test_scene_glb_and_every_tile_pass_the_validator(tmp_path: Path) -> None:
    # GIVEN the marked scene exported as scene.glb and as a tileset with levels (a 4,000-Gaussian tile limit)
    scene = marked_scene()
    export_scene(scene, SkyShell(len(scene), 0, "option"), gps_georef(), tmp_path, ExportOptions(tile_limit=4000))
    glbs = [tmp_path / "scene.glb", *sorted((tmp_path / "tiles" / "content").glob("*.glb"))]
    assert len(glbs) > 3
    # WHEN the validator reads them
    reports = validate(glbs)
    # THEN none has an issue beyond the allowed ones, and the allowed ones are those named
    for path in glbs:
        report = reports[str(path)]
        assert findings(path, report) == [], (path, findings(path, report))
        assert allowed_codes(report) <= set(ALLOWED_CODES)
        assert report["issues"]["numErrors"] == sum(
            1 for m in report["issues"]["messages"] if m["code"] == "MESH_PRIMITIVE_INVALID_ATTRIBUTE"
        )


def test_the_validator_still_finds_what_is_wrong(tmp_path: Path) -> None:
    # GIVEN a scene.glb whose POSITION bounds are wrong and whose JSON names an accessor that does not exist
    scene = marked_scene()
    export_scene(scene, SkyShell(len(scene), 0, "option"), None, tmp_path, ExportOptions(formats=("glb",)))
    document, binary = read_glb((tmp_path / "scene.glb").read_bytes())
    accessor = document["accessors"][document["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    accessor["max"] = [0.0, 0.0, 0.0]
    document["meshes"][0]["primitives"][0]["attributes"]["COLOR_0"] = 99
    from spaceport.export.glb import GlbBuilder

    broken = GlbBuilder(document={k: v for k, v in document.items() if k != "buffers"}, chunks=[binary],
                        length=len(binary))  # fmt: skip
    (tmp_path / "broken.glb").write_bytes(broken.to_bytes())
    # WHEN it is validated
    report = validate([tmp_path / "broken.glb"])[str(tmp_path / "broken.glb")]
    # THEN both are findings
    found = " ".join(findings(tmp_path / "broken.glb", report))
    assert "ACCESSOR_MAX_MISMATCH" in found and "UNRESOLVED_REFERENCE" in found, json.dumps(report)[:2000]
