"""The GPU check: build gsplat's kernels, run the CUDA tests and train the sample scene on a GPU machine.

Made for a machine with CUDA, nvcc, torch and numpy but no internet (the device tool's), in one call::

    make gpu-bundle                                   # here, with PyPI: .gpu-bundle/ (wheels, gsplat's sdist)
    python3 -m benchmarks.gpu_check run --out DIR     # there (``make gpu-check``): writes DIR/figures.json
    python -m benchmarks --only gpu --gpu-figures DIR/figures.json   # here: the GPU section of RESULTS.md

``run`` installs the bundle offline beside the machine's own torch (which no step may replace), builds gsplat
from its sdist for that GPU's architecture only, checks the build as the train image's build does, runs
``tests/train/test_cuda.py``, renders the sample scene and trains it with ``spaceport run --device cuda
--preset default``. Each step has its own time limit inside one overall budget; a step that fails or runs out
of time is recorded with the end of its output, and the steps that need it are skipped, never hidden.
``figures.json`` is rewritten after every step, so a run cut short still reports what it measured.

Only the standard library is used here: this module runs before anything is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BUNDLE = ROOT / ".gpu-bundle"
DEFAULT_OUT = ROOT / "gpu-check-output"
REQUIREMENTS = ROOT / "benchmarks" / "gpu_bundle.txt"
VERIFY_GSPLAT = ROOT / "containers" / "train" / "verify_gsplat.py"
ENGINE = ROOT / "src" / "spaceport" / "viewer" / "static" / "playcanvas.min.mjs"
FIGURES_FILE = "figures.json"
LOG_FILE = "gpu-check.log"
SCHEMA = 1
# What the GPU machine brings and no step may replace: its torch and the CUDA stack around it.
PROTECTED = re.compile(r"^(torch|numpy|triton|nvidia-.*|cuda-.*)$")
# The train stage manifest's figures that the GPU section reports.
MANIFEST_FIGURES = ("device", "iterations", "num_gaussians", "psnr_test", "psnr_test_worst", "psnr_test_median",
                    "ssim_test", "psnr_initial", "psnr_test_full_size", "resolution", "strategy", "held_out_floaters",
                    "sky_shell", "background_mode", "peak_gpu_memory_bytes", "peak_gpu_reserved_bytes",
                    "memory_model_bytes")  # fmt: skip
# The memory recording's time limit: a few training steps at each of six (N, pixels) sizes, up to 3M Gaussians.
MEMORY_SCALING_LIMIT_S = 150
# What must import once the bundle is in (torch's modules aside): the pipeline's stages up to training.
IMPORTS = "import pycolmap, pydantic, spaceport.cli, spaceport.sfm.stage, spaceport.local.pipeline, spaceport.viewer"
# The device tool brings back at most 8 files from $OUT, each under 16 MiB.
MAX_LOG_BYTES = 15 * 2**20


@dataclass
class StepResult:
    """One step's outcome as figures.json records it."""

    status: str  # ok, failed, timeout or skipped
    seconds: float = 0.0
    returncode: int | None = None
    detail: str = ""


@dataclass
class Check:
    """The run's state: where it writes, its deadline, and the figures gathered so far."""

    out: Path
    work: Path
    deadline: float
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> Path:
        return self.out / LOG_FILE

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def save(self) -> None:
        """Rewrite figures.json (atomically: a run killed mid-write keeps the previous version)."""
        self.figures["updated"] = _now()
        partial = self.out / (FIGURES_FILE + ".tmp")
        partial.write_text(json.dumps(self.figures, indent=2) + "\n", encoding="utf-8")
        partial.replace(self.out / FIGURES_FILE)

    def record(self, name: str, result: StepResult) -> StepResult:
        self.figures.setdefault("steps", {})[name] = asdict(result)
        self.save()
        print(f"[gpu-check] {name}: {result.status} in {result.seconds:.1f} s", flush=True)
        return result

    def skip(self, name: str, reason: str) -> StepResult:
        return self.record(name, StepResult("skipped", detail=reason))

    def run(self, name: str, command: list[str], limit: float, env: dict[str, str] | None = None) -> StepResult:
        """Run one step's command, its output appended to the log, within ``limit`` and the overall deadline."""
        if self.remaining() < 5:
            return self.skip(name, "no time left in the overall budget")
        timeout = min(limit, self.remaining())
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"\n===== {name} (limit {timeout:.0f} s): {' '.join(command)}\n")
            log.flush()
            started = time.monotonic()
            # A session of its own, so a timeout also ends what the step started (pip's compilers, stage processes).
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                       start_new_session=True)  # fmt: skip
            try:
                returncode: int | None = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):  # it may have ended on its own meanwhile
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                returncode = None
            seconds = round(time.monotonic() - started, 1)
            log.write(f"===== {name}: exit {returncode} after {seconds} s\n")
        if returncode is None:
            return self.record(name, StepResult("timeout", seconds, None, f"stopped after {timeout:.0f} s\n"
                                                + _tail(self.log)))  # fmt: skip
        status = "ok" if returncode == 0 else "failed"
        return self.record(name, StepResult(status, seconds, returncode, "" if returncode == 0 else _tail(self.log)))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _tail(path: Path, lines: int = 25) -> str:
    """The end of the log: what a failed step printed last."""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - 16_000))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def protected_constraints(path: Path) -> Path:
    """A pip constraints file that pins this interpreter's torch and CUDA stack at their installed versions."""
    pins: dict[str, str] = {}
    for dist in importlib.metadata.distributions():  # in sys.path order: the first of a name is the one imported
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if PROTECTED.match(name):
            pins.setdefault(name, f"{name}=={dist.version}")
    path.write_text("\n".join(sorted(pins.values())) + "\n", encoding="utf-8")
    return path


def no_jit_environment(extensions_dir: Path) -> dict[str, str]:
    """The environment of the measured steps: gsplat cannot JIT-compile in it, and would leave a trace if it did.

    gsplat falls back to compiling its kernels when its compiled module does not load, if it finds nvcc. With
    nvcc off the PATH and CUDA_HOME pointing nowhere it finds none, so a broken build fails the step instead of
    spending minutes of it compiling; TORCH_EXTENSIONS_DIR is where any JIT build would land.
    """
    environment = {**os.environ, "TORCH_EXTENSIONS_DIR": str(extensions_dir), "CUDA_HOME": "/nonexistent-cuda"}
    nvcc = shutil.which("nvcc")
    # Unless nvcc sits beside this interpreter: then only CUDA_HOME stands in the way, and jit_trace tells.
    if nvcc and Path(nvcc).parent != Path(sys.executable).parent:
        nvcc_dir = str(Path(nvcc).parent)
        environment["PATH"] = os.pathsep.join(p for p in environment["PATH"].split(os.pathsep) if p != nvcc_dir)
    environment.pop("CUDA_PATH", None)
    return environment


PROBE = """
import json, subprocess, shutil
info = {}
try:
    import torch
    info |= {"torch": torch.__version__, "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info |= {"gpu": props.name, "gpu_memory_bytes": props.total_memory,
                 "compute_capability": f"{props.major}.{props.minor}"}
except Exception as error:
    info["torch_error"] = repr(error)
for name, command in (("nvcc", ["nvcc", "--version"]),
                      ("driver", ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])):
    if shutil.which(command[0]):
        lines = subprocess.run(command, capture_output=True, text=True).stdout.strip().splitlines()
        info[name] = next((line.strip() for line in lines if "release" in line), lines[-1].strip() if lines else None)
print(json.dumps(info))
"""


def probe_machine(check: Check) -> dict[str, Any]:
    """The machine's figures: benchmarks.common's stamp plus the GPU, torch, CUDA and nvcc (in a subprocess,
    so a broken CUDA install fails this step rather than the run)."""
    from benchmarks.common import machine_info

    machine = machine_info()
    started = time.monotonic()
    try:
        probe = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=90)
        found = json.loads(probe.stdout.strip().splitlines()[-1]) if probe.returncode == 0 else {}
        result = StepResult("ok" if found else "failed", round(time.monotonic() - started, 1), probe.returncode,
                            "" if found else probe.stderr[-2000:])  # fmt: skip
    except (subprocess.TimeoutExpired, ValueError, IndexError) as error:
        found, result = {}, StepResult("failed", round(time.monotonic() - started, 1), None, repr(error))
    machine |= {key: value for key, value in found.items() if key != "torch"}
    machine["torch"] = found.get("torch", machine.get("torch"))
    if found and not found.get("cuda_available"):
        result.detail = found.get("torch_error") or "torch sees no CUDA GPU"
    check.figures["machine"] = machine
    check.record("probe", result)
    return machine


def install_bundle(check: Check, bundle: Path, constraints: Path) -> bool:
    """Install the bundle's wheels and spaceport itself, offline; True when both imported."""
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(bundle), "--constraint",
           str(constraints), "--no-cache-dir", "--disable-pip-version-check", "--quiet"]  # fmt: skip
    if check.run("install_bundle", [*pip, "--requirement", str(REQUIREMENTS)], 240).status != "ok":
        return False
    # No dependencies for spaceport: its `stages` extra would ask for torch 2.13's CPU build.
    spaceport = [*pip, "--no-deps", "--no-build-isolation", "--editable", str(ROOT)]
    if check.run("install_spaceport", spaceport, 120).status != "ok":
        return False
    if not ENGINE.is_file() and (bundle / ENGINE.name).is_file():
        # The viewer page of `spaceport run` needs the engine, which git ignores (make setup copies it from npm).
        shutil.copy2(bundle / ENGINE.name, ENGINE)
    return check.run("imports", [sys.executable, "-c", IMPORTS], 60).status == "ok"


def build_gsplat(check: Check, bundle: Path, constraints: Path, arch: str, jobs: int) -> bool:
    """Build gsplat from its sdist as the train image does, for ``arch`` only, and time the build; True if built."""
    sdists = sorted(bundle.glob("gsplat-*.tar.gz"))
    if not sdists:
        check.skip("build_gsplat", f"no gsplat sdist in {bundle}: run `make gpu-bundle`")
        return False
    environment = {**os.environ, "TORCH_CUDA_ARCH_LIST": arch, "MAX_JOBS": str(jobs)}
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(bundle), "--constraint",
               str(constraints), "--no-cache-dir", "--disable-pip-version-check", "--no-deps", "--no-build-isolation",
               "--no-binary", "gsplat", "--force-reinstall", str(sdists[-1])]  # fmt: skip
    result = check.run("build_gsplat", command, 300, environment)
    check.figures["gsplat_build"] = {"sdist": sdists[-1].name, "arch_list": arch, "max_jobs": jobs,
                                     "seconds": result.seconds, "status": result.status}  # fmt: skip
    check.save()
    if result.status != "ok":
        return False
    # The train image's own build check, on a real build. Its verdict is recorded; the CUDA steps run either way,
    # in an environment where a module that does not load cannot turn into a JIT compile.
    check.run("verify_gsplat", [sys.executable, str(VERIFY_GSPLAT), "--arch-list", arch], 90, environment)
    return True


def junit_counts(path: Path) -> dict[str, Any]:
    """Test counts and each test's outcome from pytest's JUnit XML."""
    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors", "skipped")}
    cases = []
    for case in suite.iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        cases.append({"name": case.get("name"), "outcome": outcome, "seconds": float(case.get("time", "0"))})
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts | {"cases": cases}


def run_cuda_tests(check: Check, environment: dict[str, str]) -> None:
    junit = check.out / "junit-cuda.xml"
    # Only the plugins pyproject.toml's options need: the machine's own (xdist, cov, benchmark...) stay out.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "pytest_socket", "-p", "pytest_timeout", "-p",
               "no:cacheprovider", "tests/train/test_cuda.py", f"--junitxml={junit}"]  # fmt: skip
    result = check.run("test_cuda", command, 150, environment | {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    check.figures["tests"] = {"file": "tests/train/test_cuda.py", "status": result.status} | junit_counts(junit)
    check.save()


def _spaceport() -> list[str]:
    script = Path(sys.executable).with_name("spaceport")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "spaceport.cli"]


def train_sample_scene(check: Check, environment: dict[str, str], preset: str) -> None:
    """Render the sample scene, train it with `spaceport run --device cuda`, and gather the run's figures."""
    scene, run_dir = check.work / "sample-scene", check.work / "run"
    if check.run("sample_scene", [*_spaceport(), "sample-scene", str(scene)], 90).status != "ok":
        check.skip("train_run", "the sample scene was not rendered")
        return
    command = [*_spaceport(), "run", str(scene / "images"), "--out", str(run_dir), "--device", "cuda", "--preset",
               preset]  # fmt: skip
    result = check.run("train_run", command, 330, environment)
    check.figures["train"] = train_figures(run_dir, preset, result)
    for source, name in ((run_dir / "report.json", "run-report.json"),
                         (run_dir / "work" / "train" / "model" / "manifest.json", "train-manifest.json"),
                         (run_dir / "preview.png", "preview.png")):  # fmt: skip
        if source.is_file():
            shutil.copy2(source, check.out / name)
    stage_log = run_dir / "logs" / "train.log"
    if stage_log.is_file():
        with check.log.open("a", encoding="utf-8") as log:
            log.write(f"\n===== the train stage's own log ({stage_log})\n{stage_log.read_text(errors='replace')}")
    check.save()


def record_memory_scaling(check: Check, environment: dict[str, str]) -> None:
    """Peak GPU memory of training steps over a grid of Gaussian counts and view sizes, for the memory model.

    ``benchmarks.scaling_splats gpu-memory`` writes it; the Scaling section fits ``bytes = a N + b pixels + c`` to it
    (``spaceport.train.memory`` holds the derived coefficients until then).
    """
    output = check.work / "memory-scaling.json"
    command = [sys.executable, "-m", "benchmarks.scaling_splats", "gpu-memory", "--out", str(output)]
    check.run("memory_scaling", command, MEMORY_SCALING_LIMIT_S, environment)
    if output.is_file():
        check.figures["memory_scaling"] = json.loads(output.read_text(encoding="utf-8"))
        check.save()


def train_figures(run_dir: Path, preset: str, result: StepResult) -> dict[str, Any]:
    """it/s, held-out quality and peak memory from the run's report.json and the train stage's manifest."""
    figures: dict[str, Any] = {"preset": preset, "status": result.status, "run_wall_s": result.seconds}
    report_file, manifest_file = run_dir / "report.json", run_dir / "work" / "train" / "model" / "manifest.json"
    if report_file.is_file():
        report = json.loads(report_file.read_text(encoding="utf-8"))
        figures |= {"run_status": report.get("status"), "failed_stage": report.get("failed_stage"),
                    "reason": report.get("reason"),
                    "stage_seconds": {name: stage.get("seconds") for name, stage in report.get("stages", {}).items()},
                    "sog_bytes": (report.get("compress") or {}).get("sog_bytes")}  # fmt: skip
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        train_seconds = (manifest.get("seconds") or {}).get("train")
        iterations = manifest.get("iterations")
        figures |= {key: manifest.get(key) for key in MANIFEST_FIGURES}
        figures["train_loop_seconds"] = train_seconds
        figures["iterations_per_s"] = round(iterations / train_seconds, 2) if iterations and train_seconds else None
    return figures


def jit_trace(extensions_dir: Path) -> dict[str, Any]:
    """What, if anything, was JIT-compiled during the measured steps (nothing, when gsplat's build is used)."""
    entries = sorted(str(path.relative_to(extensions_dir)) for path in extensions_dir.rglob("*") if path.is_file())
    return {"extensions_dir_files": entries[:20], "jit_compiled": bool(entries)}


def run_check(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    for stale in (FIGURES_FILE, LOG_FILE, "junit-cuda.xml", "run-report.json", "train-manifest.json", "preview.png"):
        (args.out / stale).unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="spaceport-gpu-check-"))
    check = Check(args.out, work, time.monotonic() + args.budget)
    check.figures = {"schema": SCHEMA, "started": _now(), "budget_s": args.budget, "measured": False}
    started = time.monotonic()
    gpu_visible = probe_machine(check).get("cuda_available", False)
    constraints = protected_constraints(work / "constraints.txt")
    check.figures["protected"] = constraints.read_text(encoding="utf-8").split()
    installed = install_bundle(check, args.bundle, constraints)
    if args.stop_before_cuda:
        check.figures["stopped_before_cuda"] = True
    elif not installed or not gpu_visible:
        for name in ("build_gsplat", "test_cuda", "train_run", "memory_scaling"):
            check.skip(name, "the bundle did not install" if not installed else "torch sees no CUDA GPU")
    elif not build_gsplat(check, args.bundle, constraints, args.arch, args.jobs):
        for name in ("test_cuda", "train_run", "memory_scaling"):
            check.skip(name, "gsplat's kernels did not build")
    else:
        extensions_dir = work / "torch-extensions"
        extensions_dir.mkdir()
        environment = no_jit_environment(extensions_dir)
        run_cuda_tests(check, environment)
        train_sample_scene(check, environment, args.preset)
        record_memory_scaling(check, environment)
        check.figures["jit"] = jit_trace(extensions_dir)
        check.figures["measured"] = (check.figures.get("train") or {}).get("iterations_per_s") is not None
    check.figures["versions"] = installed_versions()
    check.figures["seconds"] = round(time.monotonic() - started, 1)
    check.figures["finished"] = _now()
    check.save()
    _cap_log(check.log)
    shutil.rmtree(work, ignore_errors=True)
    failed = [name for name, step in check.figures.get("steps", {}).items() if step["status"] in ("failed", "timeout")]
    print(f"[gpu-check] figures: {args.out / FIGURES_FILE}; failed steps: {', '.join(failed) or 'none'}", flush=True)
    return 1 if failed or not (args.stop_before_cuda or check.figures["measured"]) else 0


def installed_versions() -> dict[str, str | None]:
    versions = {}
    for name in ("torch", "gsplat", "pycolmap", "numpy", "pydantic", "numba", "pytest", "spaceport"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cap_log(path: Path) -> None:
    """Keep the log under the device tool's per-file limit: its end is what explains a failure."""
    if path.is_file() and path.stat().st_size > MAX_LOG_BYTES:
        data = path.read_bytes()[-MAX_LOG_BYTES:]
        path.write_bytes(b"[... log truncated to its end ...]\n" + data)


def tree_bytes() -> int:
    """What the device tool sends besides the carried paths: git's tracked and untracked, not ignored, files."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout  # fmt: skip
    paths = [ROOT / name for name in listing.decode().split("\0") if name]
    return sum(path.stat().st_size for path in paths if path.is_file())


def check_size(args: argparse.Namespace) -> int:
    """Print the bundle's files and sizes; fail when the bundle and the working tree exceed ``--max-mib``."""
    files = sorted(path for path in args.bundle.iterdir() if path.is_file())
    for path in files:
        print(f"  {path.stat().st_size / 2**20:8.2f} MiB  {path.name}")
    bundle, tree = sum(path.stat().st_size for path in files), tree_bytes()
    total_mib = (bundle + tree) / 2**20
    print(f"bundle {bundle / 2**20:.1f} MiB in {len(files)} files + working tree {tree / 2**20:.1f} MiB "
          f"= {total_mib:.1f} MiB (limit {args.max_mib} MiB)")  # fmt: skip
    if not any(path.name.startswith("gsplat-") for path in files):
        print("gpu-bundle: gsplat's sdist is missing", file=sys.stderr)
        return 1
    if total_mib > args.max_mib:
        print(f"gpu-bundle: {total_mib:.1f} MiB will not travel (limit {args.max_mib} MiB)", file=sys.stderr)
        return 1
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="the check itself, on the GPU machine")
    run.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE, help="what `make gpu-bundle` made")
    run.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or DEFAULT_OUT),
                     help="where figures.json and the logs go (default: $OUT, else gpu-check-output/)")  # fmt: skip
    run.add_argument("--arch", default="9.0", help="TORCH_CUDA_ARCH_LIST for gsplat's build (default: 9.0, Hopper)")
    run.add_argument("--jobs", type=int, default=os.cpu_count() or 4, help="parallel compile jobs (MAX_JOBS)")
    run.add_argument("--preset", default="default", help="training preset of the run (default: default)")
    run.add_argument("--budget", type=float, default=560.0, help="seconds for the whole check (default: 560)")
    run.add_argument("--stop-before-cuda", action="store_true",
                     help="install and import only: checks the bundle on a machine without a GPU")  # fmt: skip
    size = commands.add_parser("size", help="list the bundle and fail when it is too large to travel")
    size.add_argument("--bundle", type=Path, default=DEFAULT_BUNDLE)
    size.add_argument("--max-mib", type=float, default=60.0, help="bundle + working tree limit (the tool's is 64)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_check(args) if args.command == "run" else check_size(args)


if __name__ == "__main__":
    sys.exit(main())
