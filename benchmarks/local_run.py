"""The local run: wall time per stage of ``spaceport run`` on the sample scene, for each CPU preset.

Each run starts from an empty output folder in its own process (exactly what a user types), so nothing is
reused between presets; the per-stage seconds come from the run's ``report.json``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import SuiteResult, Table, Workspace, fmt, run_quiet

STAGES = ("validate", "sfm", "train", "compress")


def run_preset(workspace: Workspace, preset: str) -> dict[str, Any]:
    out = workspace.root / f"run-{preset}"
    shutil.rmtree(out, ignore_errors=True)
    spaceport = Path(sys.executable).with_name("spaceport")
    command = [str(spaceport), "run", str(workspace.sample_scene() / "images"), "--out", str(out), "--preset", preset,
               "--device", "cpu"]  # fmt: skip
    wall = run_quiet(command, workspace.root / "logs" / f"run-{preset}.log")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return {"preset": preset, "wall_s": round(wall, 1), "status": report["status"],
            "stages": {stage: round(report["stages"][stage]["seconds"], 1) for stage in STAGES},
            "psnr_test": report.get("train", {}).get("psnr_test"),
            "gaussians": report.get("train", {}).get("num_gaussians"),
            "sog_bytes": report.get("compress", {}).get("sog_bytes")}  # fmt: skip


def run(workspace: Workspace, presets: list[str] | None = None) -> SuiteResult:
    """Time ``spaceport run`` for ``presets`` (default: fast and default, plus quality without --quick)."""
    presets = presets or (["fast", "default"] if workspace.quick else ["fast", "default", "quality"])
    runs = [run_preset(workspace, preset) for preset in presets]
    rows = [[r["preset"], *(fmt(r["stages"][stage], 1, " s") for stage in STAGES),
             fmt(r["wall_s"] - sum(r["stages"].values()), 1, " s"), fmt(r["wall_s"], 1, " s"),
             fmt(r["psnr_test"], 2, " dB"), f"{r['gaussians']:,}" if r["gaussians"] else "n/a"]
            for r in runs]  # fmt: skip
    table = Table("`spaceport run` on the sample scene (32 photos, 320x240), --device cpu, from an empty folder",
                  ["Preset", *STAGES, "publish + start-up", "total", "test PSNR", "Gaussians"], rows)  # fmt: skip
    notes = ["'publish + start-up' is the rest of the wall time: stage process start-up, copying the outputs, the "
             "viewer page and preview.png."]  # fmt: skip
    if "quality" not in presets:
        notes.append("The quality preset runs only without --quick.")
    return SuiteResult("local", "The local run, per stage", {"runs": runs}, [table], notes=notes)
