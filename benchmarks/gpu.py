"""The GPU suite: what ``make gpu-check`` measured on a CUDA machine, beside the CPU default run.

``python -m benchmarks --only gpu --gpu-figures DIR/figures.json`` reads the figures that
``benchmarks/gpu_check.py`` wrote on the GPU machine: gsplat's compile time, the CUDA tests, and the sample scene
trained with ``--device cuda --preset default`` (iterations per second, held-out PSNR/SSIM, peak GPU memory).
The held-out PSNR is set beside the CPU default run's from the ``local`` suite of results.json.

Without a figures file the suite keeps an earlier GPU measurement from results.json, or says plainly that
nothing was measured and how to measure it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, SuiteResult, Table, Target, Workspace, fmt
from benchmarks.gpu_check import DEFAULT_OUT, FIGURES_FILE

NAME, TITLE = "gpu", "GPU training"
DEFAULT_FIGURES = DEFAULT_OUT / FIGURES_FILE
RESULTS = ROOT / "benchmarks" / "results.json"
HOW_TO_MEASURE = (
    "To measure: `make gpu-bundle` on a machine with PyPI (wheels for CPython 3.12 and gsplat's sdist, under 64 MiB), "
    "then on the GPU machine, from the repository root with `.gpu-bundle` beside it, "
    "`python3 -m benchmarks.gpu_check run --out DIR` (`make gpu-check`; about 5 to 9 minutes), then here "
    "`python -m benchmarks --only gpu --gpu-figures DIR/figures.json`."
)


def run(workspace: Workspace, figures_path: Path | None = None) -> SuiteResult:
    """The GPU section from ``figures_path`` (default: gpu-check-output/figures.json).

    Raises:
        FileNotFoundError: ``figures_path`` was given and does not exist.
    """
    del workspace  # Nothing runs here: the GPU machine measured, this only reports.
    previous = _load_results()
    if figures_path is not None and not figures_path.is_file():
        raise FileNotFoundError(f"no GPU figures at {figures_path}: run `make gpu-check` on a GPU machine first")
    path = figures_path or DEFAULT_FIGURES
    if path.is_file():
        return report(json.loads(path.read_text(encoding="utf-8")), cpu_default_run(previous))
    earlier = previous.get(NAME)
    if earlier and earlier.get("figures", {}).get("measured"):
        # A CPU-only `make bench` must not erase what a GPU machine measured.
        return SuiteResult.from_dict(earlier)
    return not_measured()


def _load_results() -> dict[str, Any]:
    if not RESULTS.is_file():
        return {}
    return json.loads(RESULTS.read_text(encoding="utf-8")).get("suites", {})


def cpu_default_run(results: dict[str, Any]) -> dict[str, Any] | None:
    """The ``local`` suite's ``--preset default --device cpu`` run on the sample scene, if it was measured."""
    runs = (results.get("local") or {}).get("figures", {}).get("runs", [])
    return next((run for run in runs if run.get("preset") == "default"), None)


def not_measured(reason: str = "no figures from `make gpu-check`") -> SuiteResult:
    notes = [f"Not measured: {reason}. The CUDA path is tested only on a GPU machine.", HOW_TO_MEASURE]
    return SuiteResult(NAME, TITLE, {"status": f"not measured ({reason})", "measured": False}, notes=notes)


def _mib(count: int | None) -> str:
    return "n/a" if count is None else f"{count / 2**20:,.0f} MiB"


def _steps_table(steps: dict[str, dict[str, Any]]) -> Table:
    rows = [[name, step["status"], fmt(step.get("seconds"), 1, " s")] for name, step in steps.items()]
    return Table("Steps of the check (each with its own time limit)", ["Step", "Status", "Seconds"], rows)


def _training_table(train: dict[str, Any], cpu: dict[str, Any] | None, machine: dict[str, Any]) -> Table:
    size = (train.get("resolution") or {}).get("evaluate")
    gpu = machine.get("gpu") or "GPU"
    rows = [[f"cuda ({gpu})", f"{train['iterations']:,}" if train.get("iterations") else "n/a",
             fmt(train.get("train_loop_seconds"), 1, " s"), fmt(train.get("iterations_per_s"), 1),
             fmt(train.get("psnr_test"), 2, " dB"), fmt(train.get("ssim_test"), 4),
             f"{train['num_gaussians']:,}" if train.get("num_gaussians") else "n/a",
             _mib(train.get("peak_gpu_memory_bytes")), _mib(train.get("peak_gpu_reserved_bytes")),
             fmt((train.get("stage_seconds") or {}).get("train"), 1, " s")]]  # fmt: skip
    if cpu is not None:
        rows.append(["cpu (the local suite's run)", "n/a", "n/a", "n/a", fmt(cpu.get("psnr_test"), 2, " dB"), "n/a",
                     f"{cpu['gaussians']:,}" if cpu.get("gaussians") else "n/a", "n/a", "n/a",
                     fmt((cpu.get("stages") or {}).get("train"), 1, " s")])  # fmt: skip
    where = f" at {size[0]}x{size[1]}" if size else ""
    return Table(f"The sample scene, `spaceport run --preset {train.get('preset', 'default')}`, held-out views{where}",
                 ["Device", "Iterations", "Training loop", "it/s", "Test PSNR", "Test SSIM", "Gaussians",
                  "Peak GPU memory (allocated)", "(reserved)", "train stage"], rows)  # fmt: skip


def _targets(figures: dict[str, Any]) -> list[Target]:
    steps, tests = figures.get("steps", {}), figures.get("tests") or {}
    build, jit = figures.get("gsplat_build") or {}, figures.get("jit") or {}
    verified = steps.get("verify_gsplat", {}).get("status") == "ok"
    measured_jit = "jit_compiled" in jit
    built = (f"compiled in {fmt(build.get('seconds'), 0, ' s')} for {build.get('arch_list')} "
             f"({'verified' if verified else 'not verified'}); "
             + ("nothing JIT-compiled during tests and training" if measured_jit and not jit["jit_compiled"]
                else "JIT-compiled during the run" if measured_jit else "run not reached"))  # fmt: skip
    passed = tests.get("passed", 0)
    bad = tests.get("failures", 0) + tests.get("errors", 0)
    test_text = (f"{passed} passed, {bad} failed, {tests.get('skipped', 0)} skipped" if "tests" in tests
                 else f"not run ({steps.get('test_cuda', {}).get('status', 'not reached')})")  # fmt: skip
    return [
        Target("gsplat's kernels built ahead of the run, none JIT-compiled in it", built,
               (verified and measured_jit and not jit["jit_compiled"]) if build else None),
        Target("tests/train/test_cuda.py passes on the GPU", test_text,
               (passed > 0 and bad == 0 and tests.get("skipped", 0) == 0) if "tests" in tests else None),
    ]  # fmt: skip


def _notes(figures: dict[str, Any], cpu: dict[str, Any] | None) -> list[str]:
    machine, train = figures.get("machine") or {}, figures.get("train") or {}
    versions = figures.get("versions") or {}
    notes = [f"GPU machine: {machine.get('gpu') or 'no GPU seen'}, driver {machine.get('driver') or 'n/a'}; torch "
             f"{machine.get('torch') or 'n/a'} (CUDA {machine.get('torch_cuda') or 'n/a'}), nvcc "
             f"{machine.get('nvcc') or 'n/a'}, gsplat {versions.get('gsplat') or 'not installed'}, pycolmap "
             f"{versions.get('pycolmap') or 'n/a'}. The whole check took "
             f"{fmt(figures.get('seconds'), 0, ' s')}."]  # fmt: skip
    if train.get("psnr_test") is not None and cpu and cpu.get("psnr_test") is not None:
        delta = train["psnr_test"] - cpu["psnr_test"]
        notes.append(f"Held-out PSNR on CUDA is {delta:+.2f} dB against the CPU default run; the CUDA default preset "
                     "trains longer, at up to 1600 px, with gsplat's rasteriser (see train/config.py).")  # fmt: skip
    notes.append(
        "The GPU machine's torch is its own, not the train image's pin (torch 2.13.0, CUDA 12.6), "
        "and gsplat was built for that GPU's architecture only; the image builds five (sm_75 to sm_90)."
    )
    for name, step in figures.get("steps", {}).items():
        if step["status"] in ("failed", "timeout") or (step["status"] == "skipped" and step.get("detail")):
            detail = " ".join(step.get("detail", "").split())[-400:]
            notes.append(f"Step `{name}` {step['status']}: {detail}")
    return notes


def report(figures: dict[str, Any], cpu: dict[str, Any] | None) -> SuiteResult:
    """The GPU section for one figures.json of ``benchmarks/gpu_check.py``."""
    if not figures.get("steps"):
        return not_measured("the figures file records no steps")
    train = figures.get("train") or {}
    tables = [_steps_table(figures["steps"])]
    if train.get("iterations_per_s") is not None:
        tables.append(_training_table(train, cpu, figures.get("machine") or {}))
    notes = _notes(figures, cpu)
    if not figures.get("measured"):
        notes.insert(0, "The training run did not complete: no it/s, PSNR or memory figures. " + HOW_TO_MEASURE)
    machine = dict(figures.get("machine") or {})
    # RESULTS.md stamps a section with its machine: here the GPU machine, not the one that wrote the report.
    machine["date"] = figures.get("finished") or machine.get("date")
    result = SuiteResult(NAME, TITLE, figures, tables, _targets(figures), notes=notes, machine=machine)
    result.mode, result.seconds = "gpu-check", float(figures.get("seconds") or 0.0)
    return result
