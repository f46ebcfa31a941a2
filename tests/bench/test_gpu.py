"""The GPU check's two halves without a GPU: the runner's bookkeeping and the RESULTS.md section it feeds."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from benchmarks import gpu, gpu_check
from benchmarks.common import Workspace
from benchmarks.report import save_markdown

CPU_DEFAULT = {"preset": "default", "psnr_test": 31.519, "gaussians": 55642, "stages": {"train": 378.3}}


def measured_figures() -> dict[str, Any]:
    """figures.json as gpu_check writes it after a run in which every step passed."""
    seconds = {"probe": 2.0, "install_bundle": 9.1, "install_spaceport": 1.5, "imports": 1.0, "build_gsplat": 141.2,
               "verify_gsplat": 6.3, "test_cuda": 48.0, "sample_scene": 5.2, "train_run": 101.7}  # fmt: skip
    steps = {name: {"status": "ok", "seconds": value, "returncode": 0, "detail": ""} for name, value in seconds.items()}
    return {
        "schema": 1, "measured": True, "seconds": 320.4, "finished": "2026-12-03 08:00:00 UTC", "steps": steps,
        "machine": {"gpu": "NVIDIA H200", "driver": "580.159.04", "torch": "2.11.0+cu130", "torch_cuda": "13.0",
                    "nvcc": "Build cuda_13.0", "cpu": "AMD EPYC", "cores": 16, "memory_gib": 128.0, "python": "3.12.3"},
        "versions": {"gsplat": "1.5.3", "pycolmap": "4.2.1"},
        "gsplat_build": {"arch_list": "9.0", "max_jobs": 16, "seconds": 141.2, "status": "ok"},
        "tests": {"file": "tests/train/test_cuda.py", "status": "ok", "tests": 2, "failures": 0, "errors": 0,
                  "skipped": 0, "passed": 2},
        "jit": {"extensions_dir_files": [], "jit_compiled": False},
        "train": {"preset": "default", "status": "ok", "iterations": 7000, "train_loop_seconds": 70.0,
                  "iterations_per_s": 100.0, "psnr_test": 33.1, "ssim_test": 0.95, "num_gaussians": 120000,
                  "peak_gpu_memory_bytes": 3 * 2**30, "peak_gpu_reserved_bytes": 4 * 2**30,
                  "resolution": {"evaluate": [320, 240]}, "stage_seconds": {"train": 88.0}},
    }  # fmt: skip


def test_measured_figures_become_the_gpu_section(tmp_path: Path) -> None:
    # GIVEN the figures of a complete GPU check and the CPU default run's figures
    figures = measured_figures()

    # WHEN the suite reports them and RESULTS.md is written
    result = gpu.report(figures, CPU_DEFAULT)
    save_markdown({"gpu": result}, tmp_path / "RESULTS.md")
    markdown = (tmp_path / "RESULTS.md").read_text()

    # THEN the section carries it/s, both PSNRs, peak memory and the compile time, stamped with the GPU machine
    assert "## GPU training" in markdown and "NVIDIA H200" in markdown
    assert "| 100.0 |" in markdown and "33.10 dB" in markdown and "31.52 dB" in markdown
    assert "3,072 MiB" in markdown and "+1.58 dB" in markdown
    assert "compiled in 141 s for 9.0 (verified); nothing JIT-compiled" in markdown
    assert [target.met for target in result.targets] == [True, True]
    assert result.machine["gpu"] == "NVIDIA H200" and result.seconds == 320.4


def test_a_failed_build_is_reported_with_its_reason() -> None:
    # GIVEN a check whose gsplat build failed, so that the CUDA steps were skipped
    figures = measured_figures()
    figures["measured"] = False
    figures["steps"]["build_gsplat"] |= {"status": "failed", "returncode": 1, "detail": "nvcc fatal: bad arch"}
    figures["steps"]["test_cuda"] = {"status": "skipped", "detail": "gsplat's kernels did not build"}
    figures["steps"]["train_run"] = {"status": "skipped", "detail": "gsplat's kernels did not build"}
    for key in ("tests", "jit", "train"):
        figures.pop(key)
    figures["gsplat_build"]["status"] = "failed"

    # WHEN the suite reports it
    result = gpu.report(figures, CPU_DEFAULT)

    # THEN the reason is in the notes, no training table is made up, and no target reads as met
    notes = "\n".join(result.notes)
    assert "Step `build_gsplat` failed: nvcc fatal: bad arch" in notes
    assert "did not complete" in result.notes[0]
    assert [table.title for table in result.tables] == ["Steps of the check (each with its own time limit)"]
    assert [target.met for target in result.targets] == [False, None]


def test_without_figures_the_section_says_how_to_measure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN no figures file and a results.json without an earlier GPU measurement
    monkeypatch.setattr(gpu, "DEFAULT_FIGURES", tmp_path / "missing.json")
    monkeypatch.setattr(gpu, "RESULTS", tmp_path / "results.json")

    # WHEN the suite runs
    result = gpu.run(Workspace(tmp_path))

    # THEN it records that nothing was measured and names the commands that measure
    assert result.figures["measured"] is False
    assert result.notes[0].startswith("Not measured") and "make gpu-bundle" in result.notes[1]
    assert "python3 -m benchmarks.gpu_check run" in result.notes[1]


def test_an_earlier_gpu_measurement_survives_a_run_without_figures(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN results.json holding a GPU section measured earlier, and no new figures
    earlier = gpu.report(measured_figures(), CPU_DEFAULT)
    (tmp_path / "results.json").write_text(json.dumps({"suites": {"gpu": earlier.to_dict()}}))
    monkeypatch.setattr(gpu, "DEFAULT_FIGURES", tmp_path / "missing.json")
    monkeypatch.setattr(gpu, "RESULTS", tmp_path / "results.json")

    # WHEN the suite runs on a machine without a GPU
    result = gpu.run(Workspace(tmp_path))

    # THEN the earlier section comes back unchanged, with its own machine
    assert result.to_dict() == earlier.to_dict()


def test_a_named_figures_file_that_is_missing_is_an_error(tmp_path: Path) -> None:
    # GIVEN a figures path that does not exist
    # WHEN / THEN the suite refuses rather than reporting "not measured"
    with pytest.raises(FileNotFoundError, match="make gpu-check"):
        gpu.run(Workspace(tmp_path), tmp_path / "figures.json")


def test_junit_counts_read_pytest_outcomes(tmp_path: Path) -> None:
    # GIVEN pytest's JUnit XML for one passed, one failed and one skipped test
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<?xml version="1.0"?><testsuites><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="3">'
        '<testcase name="test_a" time="1.5"/><testcase name="test_b" time="2"><failure message="x"/></testcase>'
        '<testcase name="test_c" time="0"><skipped message="needs a CUDA GPU"/></testcase></testsuite></testsuites>'
    )

    # WHEN it is read
    counts = gpu_check.junit_counts(junit)

    # THEN the counts and each test's outcome come out
    assert {key: counts[key] for key in ("tests", "passed", "failures", "skipped", "errors")} == {
        "tests": 3, "passed": 1, "failures": 1, "skipped": 1, "errors": 0}  # fmt: skip
    assert [case["outcome"] for case in counts["cases"]] == ["passed", "failure", "skipped"]


def test_train_figures_come_from_the_runs_report_and_manifest(tmp_path: Path) -> None:
    # GIVEN a run folder as `spaceport run` leaves it: report.json and the train stage's manifest
    model = tmp_path / "work" / "train" / "model"
    model.mkdir(parents=True)
    (tmp_path / "report.json").write_text(json.dumps({"status": "succeeded", "stages": {"train": {"seconds": 88.0}},
                                                      "compress": {"sog_bytes": 1234}}))  # fmt: skip
    (model / "manifest.json").write_text(json.dumps({"device": "cuda", "iterations": 7000, "seconds": {"train": 70.0},
                                                     "psnr_test": 33.1, "peak_gpu_memory_bytes": 42}))  # fmt: skip

    # WHEN the runner gathers the training figures
    figures = gpu_check.train_figures(tmp_path, "default", gpu_check.StepResult("ok", 120.0, 0))

    # THEN iterations per second is the training loop's, beside the run's own figures
    assert figures["iterations_per_s"] == 100.0 and figures["train_loop_seconds"] == 70.0
    assert figures["run_status"] == "succeeded" and figures["stage_seconds"] == {"train": 88.0}
    assert figures["peak_gpu_memory_bytes"] == 42 and figures["sog_bytes"] == 1234 and figures["run_wall_s"] == 120.0


def test_constraints_pin_the_machines_torch_and_numpy(tmp_path: Path) -> None:
    # GIVEN this interpreter's packages (torch and numpy among them)
    # WHEN the runner writes its pip constraints
    pins = gpu_check.protected_constraints(tmp_path / "constraints.txt").read_text().split()

    # THEN torch and numpy are pinned at their installed versions, and nothing outside the CUDA stack is
    names = {pin.split("==")[0].lower() for pin in pins}
    assert {"torch", "numpy"} <= names
    assert all(gpu_check.PROTECTED.match(name.replace("_", "-")) for name in names)


def test_measured_steps_cannot_find_nvcc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GIVEN a PATH on which nvcc is found
    tools = tmp_path / "cuda" / "bin"
    tools.mkdir(parents=True)
    (tools / "nvcc").write_text("#!/bin/sh\n")
    (tools / "nvcc").chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(tools), os.environ["PATH"]]))

    # WHEN the environment of the measured steps is made
    environment = gpu_check.no_jit_environment(tmp_path / "extensions")

    # THEN nvcc's folder is off the PATH, CUDA_HOME points nowhere, and JIT builds would land in the given folder
    assert str(tools) not in environment["PATH"].split(os.pathsep)
    assert not Path(environment["CUDA_HOME"]).exists()
    assert environment["TORCH_EXTENSIONS_DIR"] == str(tmp_path / "extensions")


def test_each_step_is_recorded_with_its_outcome(tmp_path: Path) -> None:
    # GIVEN a check with a two-minute budget
    check = gpu_check.Check(tmp_path, tmp_path, gpu_check.time.monotonic() + 120)

    # WHEN one step succeeds, one fails, one outlives its limit and the budget is then spent
    ok = check.run("ok", [sys.executable, "-c", "print('fine')"], 30)
    failed = check.run("failed", [sys.executable, "-c", "import sys; print('nvcc fatal'); sys.exit(3)"], 30)
    timeout = check.run("slow", [sys.executable, "-c", "import time; time.sleep(30)"], 1)
    check.deadline = gpu_check.time.monotonic()
    skipped = check.run("late", [sys.executable, "-c", "print('never')"], 30)

    # THEN each outcome is in figures.json, a failure with the end of its output, and the log holds every step
    steps = json.loads((tmp_path / "figures.json").read_text())["steps"]
    assert [ok.status, failed.status, timeout.status, skipped.status] == ["ok", "failed", "timeout", "skipped"]
    assert steps["failed"]["returncode"] == 3 and "nvcc fatal" in steps["failed"]["detail"]
    assert steps["slow"]["seconds"] < 10 and steps["late"]["detail"] == "no time left in the overall budget"
    log = (tmp_path / "gpu-check.log").read_text()
    assert "fine" in log and "never" not in log
