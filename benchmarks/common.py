"""What every suite shares: the result shape, the machine stamp, timers and the sample-scene workspace."""

from __future__ import annotations

import datetime
import hashlib
import importlib.metadata
import os
import platform
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPLAT_TRANSFORM = ROOT / "node_modules" / ".bin" / "splat-transform"


@dataclass
class Table:
    """A Markdown table: a title, column names and rows of already formatted cells."""

    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Target:
    """A goal from the issue, what was measured against it, and whether it was met (None: not measured)."""

    goal: str
    measured: str
    met: bool | None


@dataclass
class SuiteResult:
    """One suite's outcome: raw figures for results.json, and the tables, targets and plots for RESULTS.md."""

    name: str
    title: str
    figures: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    mode: str = "quick"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SuiteResult:
        values = dict(data)
        values["tables"] = [Table(**table) for table in data.get("tables", [])]
        values["targets"] = [Target(**target) for target in data.get("targets", [])]
        return cls(**values)


def _version(distribution: str) -> str | None:
    """Installed version, read from metadata so that measuring it imports nothing heavy."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _splat_transform_version() -> str | None:
    package = ROOT / "node_modules" / "@playcanvas" / "splat-transform" / "package.json"
    if not package.is_file():
        return None
    import json

    return json.loads(package.read_text(encoding="utf-8")).get("version")


def machine_info() -> dict[str, Any]:
    """The machine a figure was measured on: CPU, the cores this process may use, memory, versions, date."""
    memory_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal"):
                memory_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory_kb / 2**20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "numba": _version("numba"),
        "pycolmap": _version("pycolmap"),
        "numpy": _version("numpy"),
        "splat_transform": _splat_transform_version(),
        "gpu": None,
        # Other work on the machine slows every figure; the ratios between tools measured together hold better.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """``with stopwatch() as clock: ...`` then ``clock["seconds"]`` (monotonic wall time)."""
    clock: dict[str, float] = {}
    started = time.perf_counter()
    try:
        yield clock
    finally:
        clock["seconds"] = time.perf_counter() - started


def run_quiet(command: list[str], log: Path, env: dict[str, str] | None = None) -> float:
    """Run a command with its output in ``log``; return its wall time. Raises CalledProcessError on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        subprocess.run(command, check=True, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return time.perf_counter() - started


@dataclass
class Workspace:
    """Inputs several suites share, made once per work folder and reused: the sample scene and its SfM model.

    Attributes:
        root: the work folder (``--work``; a temporary one by default).
        quick: the ``--quick`` mode, which suites read to shrink what they measure.
        plots_dir: where suites write their PNG plots (RESULTS.md links them as ``plots/<name>``).
    """

    root: Path
    quick: bool = True
    plots_dir: Path = ROOT / "benchmarks" / "plots"

    @property
    def scene_dir(self) -> Path:
        return self.root / "sample-scene"

    def sample_scene(self) -> Path:
        """The rendered sample scene (32 photos of 320x240 and ground_truth.json)."""
        if not (self.scene_dir / "ground_truth.json").is_file():
            from spaceport.scene.generator import render_sample_scene

            render_sample_scene(self.scene_dir)
        return self.scene_dir

    def sfm_dir(self, mapper: str = "incremental") -> Path:
        """The sfm stage's output for the sample scene (``sparse/0``, ``images/``, ``manifest.json``)."""
        output = self.root / f"sfm-{mapper}" / "output"
        if not (output / "manifest.json").is_file():
            self.run_sfm(mapper)
        return output

    def run_sfm(self, mapper: str) -> dict[str, Any]:
        """Run the sfm stage on the sample scene (again); return its manifest figures."""
        from spaceport.sfm.stage import SfmConfig, run_sfm

        base = self.root / f"sfm-{mapper}"
        result = run_sfm(self.sample_scene() / "images", base / "output", base / "work", SfmConfig(mapper=mapper))
        return result.figures


def fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    """A number for a table cell; ``n/a`` for a missing one."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{unit}"


def fmt_bytes(count: int | None) -> str:
    if count is None:
        return "n/a"
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:,.2f} {unit}"
    return f"{count} B"


def folder_bytes(root: Path) -> int:
    """The total size of the files under ``root`` now (files that vanish while it counts are skipped)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total


class FolderPeak:
    """Samples the size of the files under ``root`` every ``interval_s`` while in use, and once more at the end;
    ``peak_bytes`` is the largest sample. Subclasses sample more in ``sample``."""

    def __init__(self, root: Path, interval_s: float) -> None:
        self.root, self.interval_s, self.peak_bytes = root, interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        self.peak_bytes = max(self.peak_bytes, folder_bytes(self.root))

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> FolderPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def fingerprint(path: Path) -> str:
    """The first 16 hex digits of a file's SHA-256: which bytes a description of a screenshot was written for."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def described(looked_at: dict[str, tuple[str, str]], plot: str, kept: str | None) -> str | None:
    """What a person saw in ``plot`` (``looked_at``: plot -> (fingerprint, description)), while the bytes kept
    (fingerprint ``kept``) are the ones it was written for; None for a screenshot not looked at yet."""
    written_for, text = looked_at.get(plot, ("", ""))
    return text if kept is not None and written_for == kept else None
