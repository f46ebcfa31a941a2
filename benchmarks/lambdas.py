"""Lambdas: cold import time of each handler, the heavy libraries it must never load, and the layer's size.

Each handler module (``functions/<name>/app.py``) is imported in a fresh interpreter, several times; the
figure is the median time of that import alone (interpreter start-up excluded, byte code already cached, as
in a warm-disk Lambda). The layer is what ``template.yaml`` packages: ``functions/layer/`` holds a
``spaceport`` link to the whole ``src/spaceport`` package plus ``requirements.txt``; its size is measured from
the package's files and the installed files of those requirements and everything they require.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from benchmarks.common import ROOT, SuiteResult, Table, Target, Workspace, fmt, fmt_bytes

TARGET_IMPORT_MS = 300.0
FORBIDDEN = ("torch", "pycolmap", "numba")
ALSO_WATCHED = ("numpy", "scipy", "gsplat", "PIL", "boto3")
# Stage code that the layer carries only because it links the whole package; no handler imports it.
STAGE_PACKAGES = ("train", "sfm", "compress", "local", "scene", "viewer")
# The python3.11 Lambda runtime provides boto3 and botocore; sam build does not need to ship them.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}

PROBE = """
import importlib, importlib.util, json, sys, time
started = time.perf_counter()
if sys.argv[1].endswith(".py"):
    spec = importlib.util.spec_from_file_location("app", sys.argv[1])
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
else:
    importlib.import_module(sys.argv[1])
seconds = time.perf_counter() - started
print(json.dumps({"ms": seconds * 1e3, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""


# What a handler's import time is made of: the libraries every handler pulls in, each imported on its own.
REFERENCE_MODULES = ("boto3", "pydantic", "aws_lambda_powertools.logging", "spaceport.cloud.api")


def handlers() -> list[Path]:
    return sorted(path for path in (ROOT / "functions").glob("*/app.py"))


def import_once(handler: Path | str) -> dict[str, Any]:
    """Import a handler file (or a module by name) in a fresh interpreter; its import time and loaded modules."""
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT / "src"), "AWS_DEFAULT_REGION": "us-east-1",
           "POWERTOOLS_SERVICE_NAME": "spaceport", "POWERTOOLS_TRACE_DISABLED": "1"}  # fmt: skip
    result = subprocess.run([sys.executable, "-c", PROBE, str(handler)], capture_output=True, text=True, env=env,
                            check=True)  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_handler(handler: Path | str, repeats: int) -> dict[str, Any]:
    import_once(handler)  # writes the byte-code cache, as a built package ships it
    runs = [import_once(handler) for _ in range(repeats)]
    modules = set(runs[0]["modules"])
    name = handler.parent.name if isinstance(handler, Path) else f"(reference) import {handler}"
    return {"function": name, "median_ms": round(statistics.median(r["ms"] for r in runs), 1),
            "min_ms": round(min(r["ms"] for r in runs), 1), "max_ms": round(max(r["ms"] for r in runs), 1),
            "repeats": repeats, "forbidden_loaded": [name for name in FORBIDDEN if name in modules],
            "watched_loaded": [name for name in ALSO_WATCHED if name in modules]}  # fmt: skip


def _tree_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file() and "__pycache__" not in path.parts]


def _zip_bytes(files: list[Path], root: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(root))
    return len(buffer.getvalue())


def _distributions(requirements: list[str]) -> dict[str, importlib.metadata.Distribution]:
    """Installed distributions for the requirements and everything they require (markers and extras applied)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = [(Requirement(line), "") for line in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = requirement.name.lower().replace("_", "-")
        if name in found or name in RUNTIME_PROVIDED:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found[name] = distribution
        for extra_name in requirement.extras or {""}:
            pending += [(Requirement(line), extra_name) for line in distribution.requires or []]
    return found


def _distribution_bytes(distribution: importlib.metadata.Distribution) -> int:
    total = 0
    for file in distribution.files or []:
        if "__pycache__" in file.parts:
            continue
        path = Path(str(file.locate()))
        total += path.stat().st_size if path.is_file() else 0
    return total


def layer_size() -> dict[str, Any]:
    package_root = ROOT / "src" / "spaceport"
    files = _tree_files(package_root)
    by_part: dict[str, int] = {}
    for path in files:
        part = path.relative_to(package_root).parts[0] if len(path.relative_to(package_root).parts) > 1 else "(top)"
        by_part[part] = by_part.get(part, 0) + path.stat().st_size
    stage_files = [path for path in files if path.relative_to(package_root).parts[0] in STAGE_PACKAGES]
    lines = (ROOT / "functions" / "layer" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]
    distributions = _distributions(requirements)
    dependency_bytes = {name: _distribution_bytes(dist) for name, dist in sorted(distributions.items())}
    return {"package_bytes": sum(by_part.values()), "package_zip_bytes": _zip_bytes(files, package_root),
            "package_by_part": by_part, "stage_module_bytes": sum(path.stat().st_size for path in stage_files),
            "dependencies": {name: {"version": distributions[name].version, "bytes": size}
                             for name, size in dependency_bytes.items()},
            "dependency_bytes": sum(dependency_bytes.values()),
            "total_unzipped_bytes": sum(by_part.values()) + sum(dependency_bytes.values())}  # fmt: skip


def run(workspace: Workspace) -> SuiteResult:
    repeats = 5 if workspace.quick else 15
    results = [measure_handler(handler, repeats) for handler in handlers()]
    references = [measure_handler(module, repeats) for module in REFERENCE_MODULES]
    layer = layer_size()
    imports = Table(f"Cold import of each handler module (fresh interpreter, median of {repeats})",
                    ["Function", "Median", "Min", "Max", "torch/pycolmap/numba loaded", "Also loaded"],
                    [[r["function"], fmt(r["median_ms"], 0, " ms"), fmt(r["min_ms"], 0, " ms"),
                      fmt(r["max_ms"], 0, " ms"), ", ".join(r["forbidden_loaded"]) or "none",
                      ", ".join(r["watched_loaded"]) or "none"] for r in results + references])  # fmt: skip
    size_rows = [["spaceport package (whole src/spaceport, as the layer links it)", fmt_bytes(layer["package_bytes"])],
                 ["  of which stage modules no handler imports (" + ", ".join(STAGE_PACKAGES) + ")",
                  fmt_bytes(layer["stage_module_bytes"])],
                 ["  spaceport package, zipped (deflate)", fmt_bytes(layer["package_zip_bytes"])]]  # fmt: skip
    dependencies = layer["dependencies"].items()
    size_rows += [[f"{name} {info['version']}", fmt_bytes(info["bytes"])] for name, info in dependencies]
    size_rows.append(["Layer total, unzipped (the 250 MB Lambda limit applies to this)",
                      fmt_bytes(layer["total_unzipped_bytes"])])  # fmt: skip
    size = Table("Layer contents (functions/layer: the spaceport link + requirements.txt and what they require)",
                 ["Part", "Size"], size_rows)  # fmt: skip
    slowest = max(results, key=lambda r: r["median_ms"])
    forbidden = sorted({name for r in results for name in r["forbidden_loaded"]})
    targets = [Target(f"cold import < {TARGET_IMPORT_MS:g} ms (every handler)",
                      f"slowest {slowest['function']} {slowest['median_ms']:.0f} ms",
                      slowest["median_ms"] < TARGET_IMPORT_MS),
               Target("torch, pycolmap, numba never imported", ", ".join(forbidden) or "none imported",
                      not forbidden)]  # fmt: skip
    notes = ["Dependency sizes are this machine's installed wheels (the venv's versions, which may differ from the "
             "layer's pins); boto3/botocore are left out because the python3.11 runtime provides them. "
             "X-Ray tracing is disabled (POWERTOOLS_TRACE_DISABLED) as outside Lambda."]  # fmt: skip
    figures = {"handlers": results, "references": references, "layer": layer}
    return SuiteResult("lambdas", "Lambda cold start and package size", figures,
                       [imports, size], targets, notes=notes)  # fmt: skip
