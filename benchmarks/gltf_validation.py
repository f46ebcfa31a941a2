"""The Khronos glTF validator on our GLBs, with exactly the issues it raises for not knowing the splat extensions
allowed.

gltf-validator 2.0.0-dev.3.10 knows neither ``KHR_gaussian_splatting`` nor its SPZ companion (glTF-Validator issue
252), so it says three things that are about that alone, and each is allowed only where it points at them:

- ``UNSUPPORTED_EXTENSION`` on ``/extensionsUsed/i`` naming one of the two extensions;
- ``MESH_PRIMITIVE_INVALID_ATTRIBUTE`` on an attribute named ``KHR_gaussian_splatting:...`` (the extension's own
  attribute names, which the validator does not know);
- ``UNUSED_OBJECT`` on the buffer view that holds the SPZ payload (only the unknown extension refers to it).

Anything else, of any severity, is a finding.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from spaceport.export.glb import read_glb
from spaceport.export.splat_gltf import SPLATTING, SPZ_EXTENSION

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "gltf_validate.mjs"
VALIDATOR = ROOT / "node_modules" / "gltf-validator"
ALLOWED_CODES = ("UNSUPPORTED_EXTENSION", "MESH_PRIMITIVE_INVALID_ATTRIBUTE", "UNUSED_OBJECT")


def validate(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """{path: the validator's report} for each GLB.

    Raises:
        FileNotFoundError: gltf-validator is not installed (``make setup``).
        RuntimeError: node failed.
    """
    if not VALIDATOR.is_dir():
        raise FileNotFoundError(f"{VALIDATOR} is missing: run `make setup` (npm ci)")
    result = subprocess.run(["node", str(SCRIPT), *map(str, paths)], capture_output=True, text=True, cwd=ROOT,
                            timeout=300, check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"gltf-validator failed: {result.stderr[-2000:]}")
    return json.loads(result.stdout)


def _allowed(message: dict[str, Any], document: dict[str, Any]) -> bool:
    code, pointer = message["code"], message.get("pointer", "")
    if code == "UNSUPPORTED_EXTENSION" and pointer.startswith("/extensionsUsed/"):
        return document["extensionsUsed"][int(pointer.rsplit("/", 1)[1])] in (SPLATTING, SPZ_EXTENSION)
    if code == "MESH_PRIMITIVE_INVALID_ATTRIBUTE":
        return pointer.rsplit("/", 1)[-1].startswith(f"{SPLATTING}:")
    if code == "UNUSED_OBJECT" and pointer.startswith("/bufferViews/"):
        spz_views = {
            primitive.get("extensions", {}).get(SPLATTING, {}).get("extensions", {}).get(SPZ_EXTENSION, {}).get(
                "bufferView")
            for mesh in document.get("meshes", []) for primitive in mesh["primitives"]
        }  # fmt: skip
        return int(pointer.rsplit("/", 1)[1]) in spz_views
    return False


def findings(path: Path, report: dict[str, Any]) -> list[str]:
    """The validator's messages on ``path`` beyond the allowed ones, as ``CODE pointer: message`` lines."""
    document, _ = read_glb(path.read_bytes())
    return [f"{message['code']} {message.get('pointer', '')}: {message['message']}"
            for message in report["issues"]["messages"] if not _allowed(message, document)]  # fmt: skip


def allowed_codes(report: dict[str, Any]) -> set[str]:
    return {message["code"] for message in report["issues"]["messages"]}
