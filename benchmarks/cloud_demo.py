"""The cloud demo: the sample scene from photos to a verified, upright splat through ``spaceport cloud``, against the
local stack that runs the real stages (``make cloud-demo``); its time from submit to the verified download, each
stage's time as the job record gives it, and the held-out PSNR the train stage reported.

``python -m benchmarks --only cloud-demo`` runs the demo into the work folder;
``--cloud-demo-figures demo-output/cloud/figures.json`` reports a ``make cloud-demo`` that already ran instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import SuiteResult, Table, Target, Workspace, fmt, machine_info, run_quiet

NAME, TITLE = "cloud-demo", "The cloud demo: photos to a verified splat through the local stack"
STAGES = ("validate", "sfm", "train", "compress")


def run(workspace: Workspace, figures_path: Path | None = None) -> SuiteResult:
    """Report ``figures_path`` (a ``make cloud-demo``'s figures.json), else run the demo and report it.

    Raises:
        FileNotFoundError: ``figures_path`` was given and does not exist.
    """
    if figures_path is None:
        work = workspace.root / "cloud-demo"
        command = [sys.executable, "-m", "spaceport.cloud.local_stack", "demo", "--work", str(work)]
        run_quiet(command, workspace.root / "logs" / "cloud-demo.log")
        figures_path = work / "figures.json"
    if not figures_path.is_file():
        raise FileNotFoundError(f"no cloud demo figures at {figures_path}: run `make cloud-demo` first")
    result = report(json.loads(figures_path.read_text(encoding="utf-8")))
    # This machine ran the demo; the suite's time is the job's, not the few milliseconds of reading its figures.
    result.machine, result.mode, result.seconds = machine_info(), "full", result.figures["submit_to_verified_scene_s"]
    return result


def report(figures: dict[str, Any]) -> SuiteResult:
    stages = figures.get("stage_seconds", {})
    ran_as = ", ".join(f"{stage}: {how}" for stage, how in figures.get("stages_ran_as", {}).items())
    rows = [[figures["status"], fmt(figures["submit_to_verified_scene_s"], 0, " s"),
             *(fmt(stages.get(stage), 1, " s") for stage in STAGES), fmt(figures.get("test_psnr"), 2, " dB"),
             str(figures.get("photos")), f"{figures['preset']}, {figures['iterations']} steps"]]  # fmt: skip
    table = Table(
        "`spaceport cloud submit --wait --out` on the sample scene, local stack (no AWS)",
        ["Job", "submit to verified scene", *STAGES, "held-out PSNR", "photos", "training"],
        rows,
    )
    upright = bool(figures.get("viewer_upright"))
    targets = [
        Target("`make cloud-demo` returns a verified scene that opens upright, no AWS command typed",
               f"{figures['status']}; every file checked against its stage's manifest; viewer orbits +z: {upright}",
               figures["status"] == "SUCCEEDED" and upright),
    ]  # fmt: skip
    notes = [
        f"Where the stages ran: {ran_as}. The stage times come from the job record (each stage's start to its end, "
        "inputs and outputs staged through the local S3 included); the total also holds the upload, the polling "
        "interval (5 s) and the download.",
    ]
    return SuiteResult(NAME, TITLE, figures, [table], targets, notes=notes)
