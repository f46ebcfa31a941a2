"""Scaling of structure from motion and validation: how each step's time and memory grow with the capture.

**SfM.** The generator's two growing layouts (``grid``: a lawn-mower mapping flight with GPS; ``walk``: a loop
round a city block, no GPS) are rendered at ``SIZES`` photos of 320x240, and at ``LARGE`` (128 photos of
1600x1200, as a user's upload reaches the stage). Each capture goes through ``run_sfm`` in a fresh interpreter
(``python -m benchmarks.scaling_sfm sfm``), with the stage's ``auto`` matcher and every core, and reports its
manifest's seconds per step; the peak resident memory of each step (the kernel's high-water mark, reset before
the step through ``/proc/self/clear_refs`` and read after it); pairs tried and verified per photo (and the pairs
today's options, before this suite's change, would have generated: counted by pycolmap's pair generators, not
matched); photos registered; models made. A log-log least-squares fit gives each step's exponent (seconds
proportional to photos^b), over every size and over those beyond the exhaustive limit (one matcher); 1,000 photos
are extrapolated along the latter from the largest capture, not measured.

**Validation.** Archives of ``VALIDATION_PHOTOS`` photos of 12 MP go through the three doors: the CLI
(``spaceport validate ARCHIVE --json``), the sfm stage (its validation and intake steps, on the archive's
folder as a Processing job receives it) and the validate Lambda's ``validate_job`` (DynamoDB in moto, S3 served
by ``benchmarks.validate_lambda``'s ranged-read stand-in: moto keeps an object in memory and reads all of it for
every ranged GET, hours for a 5 GB archive). Each door runs as its own process: seconds, peak memory (its VmHWM,
sampled from outside every 20 ms) and peak disk (its temporary or work folder, sampled likewise). Photos are
cheap 12 MP JPEGs: ``VALIDATION_BASES`` distinct noise-textured images encoded once, each photo one of them with
its own JPEG comment (the photo's number and a padding of its own length), so every file is distinct in bytes
and size, as real photos are.

Sizes come from the constants below, or from the environment: ``SCALING_SFM_SIZES=32,64``,
``SCALING_SFM_LARGE=32x640``, ``SCALING_SFM_VALIDATION=20x2``, ``SCALING_SFM_EXHAUSTIVE_LIMIT=16`` (``--quick``
uses the small ones and lowers the exhaustive limit so the bounded matchers run).
"""

from __future__ import annotations

import io
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, FolderPeak, SuiteResult, Table, Target, Workspace, fmt, fmt_bytes

NAME = "scaling-sfm"
LAYOUTS = ("grid", "walk")
SIZES = (32, 128, 512)
QUICK_SIZES = (32, 64)
BASE_WIDTH, BASE_HEIGHT = 320, 240
LARGE = (128, 1600)  # photos, width (4:3)
QUICK_LARGE = (32, 640)
VALIDATION_PHOTOS = (300, 1000)
VALIDATION_MEGAPIXELS = 12
QUICK_VALIDATION_PHOTOS = (10, 20)
QUICK_VALIDATION_MEGAPIXELS = 2
VALIDATION_BASES = 8
# --quick captures are under the stage's exhaustive limit (100): a lower one makes them exercise the bounded matchers.
QUICK_EXHAUSTIVE_LIMIT = 16
EXTRAPOLATE_TO = 1000
STEPS = ("extraction", "matching", "mapping", "georeferencing", "undistortion")
# The target: matching time per photo may at most double from the smallest size beyond the exhaustive
# limit to the largest (within 2x of linear).
MATCHING_LINEAR_FACTOR = 2.0
SAMPLE_SECONDS = 0.02
MB = 1e6


# --------------------------------------------------------------------------------------------------
# Pure logic: fits, extrapolation, sizes
# --------------------------------------------------------------------------------------------------


def fit_exponent(xs: list[float], ys: list[float]) -> float | None:
    """The slope b of log y = a + b log x by least squares; None without two distinct x with positive y."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len({x for x, _ in points}) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def extrapolate(xs: list[float], ys: list[float], target: float) -> float | None:
    """y at ``target`` from the largest measured point along the fitted power law (None when there is no fit)."""
    exponent = fit_exponent(xs, ys)
    if exponent is None:
        return None
    largest = max(range(len(xs)), key=lambda index: xs[index])
    return ys[largest] * (target / xs[largest]) ** exponent


def within_linear(photos: list[int], seconds: list[float]) -> float | None:
    """How much the seconds per photo grew from the smallest to the largest capture (None for fewer than two)."""
    if len(photos) < 2:
        return None
    small, large = min(range(len(photos)), key=photos.__getitem__), max(range(len(photos)), key=photos.__getitem__)
    if seconds[small] <= 0:
        return None
    return (seconds[large] / photos[large]) / (seconds[small] / photos[small])


def parse_sizes(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
    """``"32,64"`` to (32, 64); the default when unset."""
    if not text:
        return default
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)


def parse_pair(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    """``"128x1600"`` to (128, 1600); the default when unset."""
    if not text:
        return default
    first, _, second = text.lower().partition("x")
    return int(first), int(second)


@dataclass(frozen=True)
class Plan:
    """What one run of the suite measures."""

    sizes: tuple[int, ...]
    large: tuple[int, int]
    validation_photos: tuple[int, ...]
    validation_megapixels: int
    exhaustive_limit: int | None  # None: the stage's own

    @classmethod
    def for_workspace(cls, quick: bool, environ: Mapping[str, str] | None = None) -> Plan:
        env = os.environ if environ is None else environ
        validation = env.get("SCALING_SFM_VALIDATION")
        photos, megapixels = (QUICK_VALIDATION_PHOTOS, QUICK_VALIDATION_MEGAPIXELS) if quick else (
            VALIDATION_PHOTOS, VALIDATION_MEGAPIXELS)  # fmt: skip
        if validation:
            count, megapixels = parse_pair(validation, (0, megapixels))
            photos = (count,)
        limit = env.get("SCALING_SFM_EXHAUSTIVE_LIMIT")
        return cls(
            sizes=parse_sizes(env.get("SCALING_SFM_SIZES"), QUICK_SIZES if quick else SIZES),
            large=parse_pair(env.get("SCALING_SFM_LARGE"), QUICK_LARGE if quick else LARGE),
            validation_photos=photos,
            validation_megapixels=megapixels,
            exhaustive_limit=int(limit) if limit else (QUICK_EXHAUSTIVE_LIMIT if quick else None),
        )


# --------------------------------------------------------------------------------------------------
# SfM: one capture in a fresh interpreter
# --------------------------------------------------------------------------------------------------


def render_capture(root: Path, layout: str, photos: int, width: int) -> Path:
    """The layout's capture of ``photos`` photos ``width`` wide (4:3), rendered once per work folder."""
    from spaceport.scene.generator import render_sample_scene
    from spaceport.scene.layouts import SceneConfig

    height = width * 3 // 4
    scene = root / "scenes" / f"{layout}-{photos}-{width}"
    config = SceneConfig(layout=layout, images=photos, width=width, height=height,
                         supersampling=2 if width <= 640 else 1)  # fmt: skip
    truth = scene / "ground_truth.json"
    if not truth.is_file() or json.loads(truth.read_text(encoding="utf-8"))["config"] != _config_dict(config):
        shutil.rmtree(scene, ignore_errors=True)
        # Rendering is not what is measured: every core renders.
        render_sample_scene(scene, config, workers=len(os.sched_getaffinity(0)))
    return scene


def _config_dict(config: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(config)))


def measure_sfm(
    scene: Path, run_dir: Path, max_image_size: int, exhaustive_limit: int | None, reuse: bool = False
) -> dict[str, Any]:
    """``run_sfm`` on ``scene`` in a fresh interpreter; its figures (see ``_sfm_child``). With ``reuse``, the figures
    a finished earlier run left in ``run_dir`` (``SCALING_SFM_REUSE=1``: a suite that stopped after its SfM runs)."""
    if reuse and (run_dir / "result.json").is_file():
        return {**json.loads((run_dir / "result.json").read_text(encoding="utf-8")), "reused": True}
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    command = [sys.executable, "-m", "benchmarks.scaling_sfm", "sfm", str(scene), str(run_dir), str(max_image_size),
               str(exhaustive_limit or 0)]  # fmt: skip
    env = {**os.environ, "GLOG_minloglevel": "2"}
    log_path = run_dir / "child.log"
    with log_path.open("w", encoding="utf-8") as log:
        finished = subprocess.run(command, cwd=ROOT, env=env, check=False, stdout=log, stderr=subprocess.STDOUT)
    if finished.returncode != 0:
        # A capture that fails is a finding, not the end of the suite: the rest is still measured.
        tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
        return {"error": f"exit status {finished.returncode}: {' | '.join(tail)}"}
    return json.loads((run_dir / "result.json").read_text(encoding="utf-8"))


def _read_status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    """Reset this process's peak resident memory (VmHWM) to its current size; False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
        return True
    except OSError:
        return False


def _today_pairs(database: Path, photos: int, with_gps: int) -> dict[str, Any]:
    """The pairs the stage's matcher choice before this suite's change would have generated (not matched)."""
    import pycolmap

    if photos <= 100:
        return {"method": "exhaustive", "pairs": photos * (photos - 1) // 2}
    db = pycolmap.Database.open(database)
    try:
        if with_gps == photos:
            method, generator = "spatial", pycolmap.SpatialPairGenerator(pycolmap.SpatialPairingOptions(), db)
        else:
            method, generator = "sequential", pycolmap.SequentialPairGenerator(pycolmap.SequentialPairingOptions(), db)
        pairs = {tuple(sorted(pair)) for pair in generator.all_pairs() if pair[0] != pair[1]}
    finally:
        db.close()
    return {"method": method, "pairs": len(pairs)}


def _sfm_child(scene: Path, run_dir: Path, max_image_size: int, exhaustive_limit: int) -> None:
    """Run the stage, recording each step's peak memory through the stage's own step timer; write result.json."""
    import pycolmap

    import spaceport.sfm.stage as stage
    from benchmarks.sfm import pose_errors

    peaks: dict[str, int | None] = {}
    original_timed = stage.timed

    @contextmanager
    def timed_with_peak(seconds: dict[str, float], name: str):
        exact = _reset_peak()
        with original_timed(seconds, name):
            yield
        peak = _read_status_kib("VmHWM")
        peaks[name] = peak * 1024 if exact and peak is not None else None

    stage.timed = timed_with_peak  # type: ignore[assignment]
    limit = {"exhaustive_limit": exhaustive_limit} if exhaustive_limit > 0 else {}
    # Every photo's figures are wanted even when few register: the stage's own threshold is not what is measured.
    config = stage.SfmConfig(max_image_size=max_image_size, min_registered_ratio=0.0, **limit)
    started = time.perf_counter()
    result = stage.run_sfm(scene / "images", run_dir / "output", run_dir / "work", config)
    wall = time.perf_counter() - started
    # The stage's peak: the largest step's, or what came after the last step (its outputs), read before this
    # process loads anything more. (ru_maxrss follows the resets, so it would miss the earlier steps.)
    after = (_read_status_kib("VmHWM") or 0) * 1024
    if all(peak is not None for peak in peaks.values()):
        stage_peak = max([after, *(peak or 0 for peak in peaks.values())])
    else:  # the kernel refused the resets: the lifetime peak is the stage's
        stage_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    figures = result.figures
    with_gps = sum(1 for _ in _gps_photos(scene))
    models = [path for path in (run_dir / "work" / "models").iterdir() if path.is_dir()]
    model_sizes = sorted((pycolmap.Reconstruction(path).num_reg_images() for path in models), reverse=True)
    payload = {
        "seconds": figures["seconds"],
        "wall_seconds": round(wall, 2),
        "peak_bytes": peaks,
        "peak_rss_bytes": stage_peak,
        "matching": figures["matching"],
        "today": _today_pairs(run_dir / "work" / "database.db", figures["total_images"], with_gps),
        "registered": figures["registered_images"],
        "photos": figures["total_images"],
        "models": len(models),
        "model_sizes": model_sizes,
        "points": figures["points"],
        "georef": figures["georef"].get("method"),
        "max_image_size": max_image_size,
        "errors": pose_errors(run_dir / "output" / "sparse" / "0", scene / "ground_truth.json"),
    }
    (run_dir / "result.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _gps_photos(scene: Path):
    truth = json.loads((scene / "ground_truth.json").read_text(encoding="utf-8"))
    return truth.get("gps", {}).get("images", [])


# --------------------------------------------------------------------------------------------------
# Validation: cheap 12 MP archives through three doors
# --------------------------------------------------------------------------------------------------


def base_photos(megapixels: float, count: int) -> list[bytes]:
    """``count`` distinct JPEGs of about ``megapixels`` MP (4:3) that compress like photos (a few MB at 12 MP).

    Smooth colour fields (upsampled random colours) with fine noise on top: a flat image would compress to almost
    nothing, pure noise to several times a camera's file.
    """
    import numpy as np
    from PIL import Image

    width = int(math.sqrt(megapixels * 1e6 * 4 / 3)) // 16 * 16
    height = width * 3 // 4 // 16 * 16
    photos = []
    for index in range(count):
        rng = np.random.default_rng([0x5CA1E, index])
        coarse = Image.fromarray(rng.integers(0, 256, (height // 24, width // 24, 3), dtype=np.uint8))
        smooth = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
        grain = rng.integers(-9, 10, (height, width, 1), dtype=np.int16)
        pixels = np.clip(smooth + grain, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
        photos.append(buffer.getvalue())
    return photos


def distinct_photo(base: bytes, index: int) -> bytes:
    """``base`` with a JPEG comment (COM) after its start marker: the photo's number, padded to a length of its own."""
    text = f"spaceport scaling photo {index:05d} ".encode() + b"." * (index % 997)
    segment = b"\xff\xfe" + (len(text) + 2).to_bytes(2, "big") + text
    return base[:2] + segment + base[2:]


def make_archive(path: Path, photos: int, megapixels: float) -> dict[str, Any]:
    """A stored zip of ``photos`` distinct JPEGs of ``megapixels`` MP in ``capture/``; reused when present."""
    if path.is_file():
        with zipfile.ZipFile(path) as archive:
            if len(archive.infolist()) == photos:
                return {"bytes": path.stat().st_size, "photos": photos, "seconds": 0.0, "reused": True}
    started = time.perf_counter()
    bases = base_photos(megapixels, VALIDATION_BASES)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
        for index in range(photos):
            archive.writestr(f"capture/DJI_{index:04d}.JPG", distinct_photo(bases[index % len(bases)], index))
    partial.replace(path)
    return {"bytes": path.stat().st_size, "photos": photos, "seconds": round(time.perf_counter() - started, 1),
            "mean_photo_bytes": path.stat().st_size // photos}  # fmt: skip


class Watch(FolderPeak):
    """Samples, every ``SAMPLE_SECONDS`` until stopped, the total size of the files under ``root`` and the peak
    resident memory (VmHWM) of process ``pid``; keeps the largest of each.

    VmHWM belongs to the process's own address space, which ``exec`` replaces: ``ru_maxrss`` would not do, since a
    child spawned by ``vfork`` inherits the parent's high-water mark into it.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root, SAMPLE_SECONDS)
        self.peak_memory = 0
        self.pid: int | None = None

    def _memory(self) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text(encoding="utf-8").splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass  # not started, or gone
        return 0

    def sample(self) -> None:
        super().sample()
        if self.pid is not None:
            self.peak_memory = max(self.peak_memory, self._memory())


def run_measured(command: list[str], watch: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``command``; its wall seconds, peak memory, output, and the peak size of the files under ``watch``.

    Memory is the child's VmHWM, sampled while it runs (monotonic, so only growth in its last few milliseconds can
    be missed: an exited process has no address space left to read).
    """
    import tempfile

    watch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr, Watch(watch) as watcher:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
        watcher.pid = process.pid
        process.wait()
        seconds = time.perf_counter() - started
        stdout.seek(0)
        stderr.seek(0)
        output, errors = stdout.read().decode(errors="replace"), stderr.read().decode(errors="replace")
    return {"seconds": round(seconds, 2), "peak_rss_bytes": watcher.peak_memory, "peak_disk_bytes": watcher.peak_bytes,
            "returncode": process.returncode, "stdout": output, "stderr": errors[-4000:]}  # fmt: skip


def measure_cli(archive: Path, scratch: Path) -> dict[str, Any]:
    """``spaceport validate ARCHIVE --json``, its temporary files in ``scratch``."""
    spaceport = Path(sys.executable).parent / "spaceport"
    env = {**os.environ, "TMPDIR": str(scratch)}
    result = run_measured([str(spaceport), "validate", str(archive), "--json"], scratch, env)
    report = json.loads(result.pop("stdout"))
    result.pop("stderr")
    return {**result, "images": report.get("images"), "accepted": report.get("accepted")}


def measure_intake(folder: Path, work: Path) -> dict[str, Any]:
    """The sfm stage's validation and intake steps on ``folder``, in a fresh interpreter; disk: its work folder."""
    shutil.rmtree(work, ignore_errors=True)
    command = [sys.executable, "-m", "benchmarks.scaling_sfm", "intake", str(folder), str(work)]
    result = run_measured(command, work, {**os.environ, "TMPDIR": str(work)})
    figures = json.loads(result.pop("stdout").strip().splitlines()[-1])
    result.pop("stderr")
    return {**result, **figures}


def _intake_child(folder: Path, work: Path) -> None:
    from spaceport.contract import timed
    from spaceport.sfm.intake import intake_folder
    from spaceport.sfm.stage import SfmConfig, validated_image_names

    # The stage's first two steps, as run_sfm calls them.
    config = SfmConfig()
    seconds: dict[str, float] = {}
    with timed(seconds, "validation"):
        usable = validated_image_names(folder)
    with timed(seconds, "intake"):
        intake = intake_folder(folder, work / "images", config.max_image_size, usable, workers=config.threads)
    print(json.dumps({"images": len(intake.images), "step_seconds": seconds}))


def measure_lambda(archive: Path, scratch: Path) -> dict[str, Any]:
    """The validate Lambda's ``validate_job`` in ``benchmarks.validate_lambda``'s child (moto's table, S3 stand-in),
    started here so that its memory and its /tmp (``scratch``) are watched from outside."""
    shutil.rmtree(scratch, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    command = [sys.executable, "-m", "benchmarks.validate_lambda", str(archive), str(scratch)]
    result = run_measured(command, scratch, env)
    if result["returncode"] != 0:
        raise RuntimeError(f"validate Lambda child failed: {result['stderr']}")
    figures = json.loads(result["stdout"].strip().splitlines()[-1])
    # Its own clock times validate_job alone; the process also starts Python and moto.
    return {"seconds": figures["seconds"], "process_seconds": result["seconds"], "refused": figures.get("refused"),
            "peak_rss_bytes": result["peak_rss_bytes"], "images": figures["images"], "s3_gets": figures["s3_gets"],
            "peak_disk_bytes": max(result["peak_disk_bytes"], figures["peak_tmp_bytes"])}  # fmt: skip


def extract_folder(archive: Path, folder: Path, photos: int) -> None:
    """The archive's photos as a folder, as a Processing job receives the validate Lambda's published copies."""
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.JPG")) == photos:
        return
    shutil.rmtree(folder, ignore_errors=True)
    with zipfile.ZipFile(archive) as handle:
        handle.extractall(folder)


def measure_validation(root: Path, photos: int, megapixels: float) -> dict[str, Any]:
    """One archive size through the three doors, one after the other."""
    base = root / "validation" / f"{photos}x{megapixels:g}mp"
    archive = base / "photos.zip"
    made = make_archive(archive, photos, megapixels)
    folder = base / "folder"
    extract_folder(archive, folder, photos)
    doors = {
        "cli": measure_cli(archive, base / "tmp-cli"),
        "sfm": measure_intake(folder / "capture", base / "sfm-work"),
        "lambda": measure_lambda(archive, base / "tmp-lambda"),
    }
    shutil.rmtree(base / "sfm-work", ignore_errors=True)
    return {"photos": photos, "megapixels": megapixels, "archive": made, "doors": doors}


# --------------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------------


def _label(layout: str) -> str:
    return {"grid": "grid (GPS)", "walk": "walk (no GPS)"}.get(layout, layout)


def _mb(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:,.0f}"


def _sfm_rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for run in runs:
        matching, today = run["matching"], run["today"]
        rows.append([
            _label(run["layout"]), f"{run['photos']}", f"{run['width']}", matching["method"],
            f"{matching['pairs_per_photo']:.1f} ({matching['verified_pairs_per_photo']:.1f})",
            f"{today['pairs'] / run['photos']:.1f} ({today['method']})",
            f"{run['registered']}/{run['photos']}", f"{run['models']}",
            *(fmt(run["seconds"].get(step), 1) for step in STEPS),
            fmt(sum(run["seconds"].get(step, 0.0) for step in STEPS), 1), _mb(run["peak_rss_bytes"]),
        ])  # fmt: skip
    return rows


def _memory_rows(runs: list[dict[str, Any]]) -> list[list[str]]:
    return [[_label(run["layout"]), f"{run['photos']}", f"{run['width']}",
             *(_mb(run["peak_bytes"].get(step)) for step in ("intake", *STEPS))] for run in runs]  # fmt: skip


def _series(runs: list[dict[str, Any]], layout: str, value, width: int = BASE_WIDTH) -> tuple[list[float], list[float]]:
    chosen = sorted((run for run in runs if run["layout"] == layout and run["width"] == width),
                    key=lambda run: run["photos"])  # fmt: skip
    return [run["photos"] for run in chosen], [value(run) for run in chosen]


def _measures() -> list[tuple[str, Any]]:
    """(name, value of a run) for every measure that gets an exponent."""
    measures: list[tuple[str, Any]] = [(step, lambda run, step=step: run["seconds"].get(step, 0.0)) for step in STEPS]
    measures += [("total", lambda run: sum(run["seconds"].get(step, 0.0) for step in STEPS)),
                 ("pairs tried", lambda run: run["matching"]["pairs"]),
                 ("peak memory", lambda run: run["peak_rss_bytes"])]  # fmt: skip
    return measures


def _exponent_rows(runs: list[dict[str, Any]], limit: int) -> tuple[list[list[str]], dict[str, Any]]:
    """Each measure's exponent over every size and over the sizes beyond the exhaustive limit (where the matcher
    stays the same); 1,000 photos extrapolated along the latter when there is one."""
    rows, fits = [], {}
    for layout in LAYOUTS:
        for name, value in _measures():
            photos, values = _series(runs, layout, value)
            beyond = [(x, y) for x, y in zip(photos, values, strict=True) if x > limit]
            exponent = fit_exponent(photos, values)
            exponent_beyond = fit_exponent([x for x, _ in beyond], [y for _, y in beyond])
            basis = (
                ([x for x, _ in beyond], [y for _, y in beyond]) if exponent_beyond is not None else (photos, values)
            )
            at_target = extrapolate(*basis, EXTRAPOLATE_TO)
            fits[f"{layout}/{name}"] = {"photos": photos, "values": values, "exponent": exponent,
                                        "exponent_beyond_exhaustive": exponent_beyond,
                                        f"extrapolated_{EXTRAPOLATE_TO}": at_target}  # fmt: skip
            if exponent is None or at_target is None:
                continue
            shown = _mb(int(at_target)) + " MB" if name == "peak memory" else (
                f"{at_target:,.0f}" if name == "pairs tried" else fmt(at_target, 0, " s"))  # fmt: skip
            rows.append([_label(layout), name, " / ".join(f"{v:,.4g}" for v in values), f"{exponent:.2f}",
                         "n/a" if exponent_beyond is None else f"{exponent_beyond:.2f}", shown])  # fmt: skip
    return rows, fits


def _plots(runs: list[dict[str, Any]], workspace: Workspace, large_width: int) -> list[str]:
    """One log-log plot per step (and for the peak memory): a line per layout, a point per layout at the large size."""
    from benchmarks.plot import LinePlot, save

    names = []
    for step in (*STEPS, "peak memory"):
        plot = LinePlot(f"SfM {step} (log10 scales: the slope is the exponent)", "log10(photos)",
                        "log10(MB)" if step == "peak memory" else "log10(seconds)")  # fmt: skip
        for layout in LAYOUTS:
            value = (lambda run: run["peak_rss_bytes"] / MB) if step == "peak memory" else (
                lambda run, step=step: run["seconds"].get(step, 0.0))  # fmt: skip
            for width, label in ((BASE_WIDTH, _label(layout)), (large_width, f"{_label(layout)} at {large_width} px")):
                photos, values = _series(runs, layout, value, width)
                points = [(math.log10(x), math.log10(y)) for x, y in zip(photos, values, strict=True) if y > 0]
                if points:
                    plot.series[label] = points
        if not plot.series:
            continue
        name = f"scaling_sfm_{step.replace(' ', '_')}.png"
        save(plot, workspace.plots_dir / name)
        names.append(name)
    return names


def _validation_rows(validations: list[dict[str, Any]]) -> list[list[str]]:
    titles = {"cli": "CLI `spaceport validate`", "sfm": "sfm stage: validation + intake",
              "lambda": "validate Lambda (`validate_job`)"}  # fmt: skip
    rows = []
    for entry in validations:
        for door, result in entry["doors"].items():
            rows.append([titles[door], f"{entry['photos']}", f"{entry['megapixels']:g}",
                         fmt_bytes(entry["archive"]["bytes"]), fmt(result["seconds"], 1, " s"),
                         fmt(result["seconds"] / entry["photos"] * 1000, 0, " ms"), _mb(result["peak_rss_bytes"]),
                         fmt_bytes(result["peak_disk_bytes"]),
                         f"{result.get('images')}" if not result.get("refused") else "read; job refused"])  # fmt: skip
    return rows


def _targets(runs: list[dict[str, Any]], limit: int, fits: dict[str, Any]) -> list[Target]:
    from spaceport.sfm.pairing import PairingConfig

    pairing = PairingConfig()
    targets = []
    for layout in LAYOUTS:
        beyond = [run for run in runs if run["layout"] == layout and run["width"] == BASE_WIDTH
                  and run["photos"] > limit]  # fmt: skip
        growth = within_linear([run["photos"] for run in beyond], [run["seconds"]["matching"] for run in beyond])
        span = f"{min(r['photos'] for r in beyond)} to {max(r['photos'] for r in beyond)}" if beyond else "-"
        targets.append(Target(
            f"{_label(layout)}: matching within {MATCHING_LINEAR_FACTOR:g}x of linear beyond {limit} photos",
            f"seconds per photo x{growth:.2f} from {span} photos" if growth is not None else "fewer than two sizes",
            None if growth is None else growth <= MATCHING_LINEAR_FACTOR))  # fmt: skip
        worst = max((run["matching"]["pairs_per_photo"] / pairing.max_pairs_per_photo(run["matching"]["method"],
                     run["photos"]) for run in beyond), default=None)  # fmt: skip
        if beyond:
            per_photo = ", ".join(f"{run['matching']['pairs_per_photo']:.1f}" for run in beyond)
            targets.append(Target(f"{_label(layout)}: a bounded number of pairs per photo beyond {limit} photos",
                                  f"{per_photo} pairs per photo", worst is not None and worst <= 1.0))  # fmt: skip
        memory_fit = fits.get(f"{layout}/peak memory", {})
        exponents = [memory_fit.get(key) for key in ("exponent", "exponent_beyond_exhaustive")]
        memory = max((value for value in exponents if value is not None), default=None)
        targets.append(Target(f"{_label(layout)}: peak memory grows no faster than the photo count",
                              "n/a" if memory is None else f"exponent {memory:.2f}",
                              None if memory is None else memory <= 1.0))  # fmt: skip
    # One model holding every photo; COLMAP may also keep an abandoned partial start (models > 1), which is reported.
    grids = [run for run in runs if run["layout"] == "grid"]
    whole = bool(grids) and all(run["registered"] == run["photos"] for run in grids)
    measured = "; ".join(f"{run['photos']} at {run['width']} px: {run['registered']} in the largest of "
                         f"{run['models']} model(s)" for run in grids)  # fmt: skip
    targets.append(Target("every grid registers as one model, not as strips", measured, whole))
    return targets


def run(workspace: Workspace) -> SuiteResult:
    plan = Plan.for_workspace(workspace.quick)
    root = workspace.root / NAME
    runs = []
    captures = [(layout, size, BASE_WIDTH) for layout in LAYOUTS for size in plan.sizes]
    captures += [(layout, plan.large[0], plan.large[1]) for layout in LAYOUTS]
    for layout, photos, width in captures:
        print(f"[{NAME}] {layout} {photos} photos at {width} px", file=sys.stderr, flush=True)
        scene = render_capture(root, layout, photos, width)
        run_dir = root / "runs" / f"{layout}-{photos}-{width}"
        result = measure_sfm(scene, run_dir, width, plan.exhaustive_limit, os.environ.get("SCALING_SFM_REUSE") == "1")
        runs.append({"layout": layout, "width": width, "photos": photos, **result})
    validations = []
    for photos in plan.validation_photos:
        print(f"[{NAME}] validation: {photos} photos of {plan.validation_megapixels} MP", file=sys.stderr, flush=True)
        validations.append(measure_validation(root, photos, plan.validation_megapixels))
    return _result(runs, validations, plan, workspace)


def _result(runs: list[dict[str, Any]], validations: list[dict[str, Any]], plan: Plan,
            workspace: Workspace) -> SuiteResult:  # fmt: skip
    from spaceport.sfm.stage import SfmConfig

    limit = plan.exhaustive_limit or SfmConfig().exhaustive_limit
    failed = [run for run in runs if "error" in run]
    runs = [run for run in runs if "error" not in run]
    exponent_rows, fits = _exponent_rows(runs, limit)
    tables = [
        Table("SfM per capture: pairs tried per photo (verified in brackets), today's choice (pairs generated, not "
              "matched), photos registered, models made, seconds per step (manifest), peak memory (MB)",
              ["Layout", "Photos", "Width", "Matcher", "Pairs/photo", "Before: pairs/photo", "Registered", "Models",
               *STEPS, "total", "Peak MB"], _sfm_rows(runs)),
        Table("Peak resident memory per step (MB; the process's high-water mark, reset before each step)",
              ["Layout", "Photos", "Width", "intake", *STEPS], _memory_rows(runs)),
        Table(f"Fitted exponents (value proportional to photos^b; {BASE_WIDTH}x{BASE_HEIGHT} captures), over every "
              f"size and beyond the exhaustive limit ({limit} photos), and {EXTRAPOLATE_TO:,} photos extrapolated "
              "from the largest capture along the latter (not measured)",
              ["Layout", "Measure", "Measured (by size)", "b (all sizes)", f"b (over {limit} photos)",
               f"At {EXTRAPOLATE_TO:,} photos"], exponent_rows),
    ]  # fmt: skip
    if validations:
        tables.append(Table("Validation through the three doors (seconds, peak memory of the process, peak disk)",
                            ["Door", "Photos", "MP", "Archive", "Time", "Per photo", "Peak MB", "Peak disk",
                             "Accepted"], _validation_rows(validations)))  # fmt: skip
    notes = [
        f"Captures: {', '.join(map(str, plan.sizes))} photos of {BASE_WIDTH}x{BASE_HEIGHT} per layout, and "
        f"{plan.large[0]} of {plan.large[1]}x{plan.large[1] * 3 // 4}; the stage's `auto` matcher with an exhaustive "
        f"limit of {limit} photos; every core. The 1,000-photo column is an extrapolation along the fitted exponent "
        "from the largest capture, not a measurement.",
        "Pairs per photo: pairs tried / photos (each pair counted once). 'Before' is what the stage chose until "
        "now (exhaustive to 100 photos; pycolmap's default spatial pairing, 50 neighbours, with GPS on every "
        "photo; else its default sequential pairing, offsets 1, 2, 4 ... 512), counted by pycolmap's pair "
        "generators on the same database.",
        "Validation photos: noise-textured JPEGs encoded once per base image and made distinct per photo by a JPEG "
        "comment of their own length; the Lambda door reads the archive through ranged GETs from an S3 stand-in "
        "(moto's S3 reads the whole object for every ranged GET). The sfm door reads the archive's folder, as a "
        "Processing job receives the validate Lambda's published photos; its disk is the intake's work copies.",
    ]  # fmt: skip
    notes += [f"**Failed:** {_label(run['layout'])}, {run['photos']} photos at {run['width']} px: {run['error']}"
              for run in failed]  # fmt: skip
    notes += [f"{entry['photos']} photos of {entry['megapixels']:g} MP through the validate Lambda: every photo read "
              f"and judged, then the job refused with the template's defaults: {entry['doors']['lambda']['refused']}"
              for entry in validations if entry["doors"].get("lambda", {}).get("refused")]  # fmt: skip
    reused = sorted({f"{run['layout']} {run['photos']}@{run['width']}" for run in runs if run.get("reused")})
    if reused:
        notes.append(f"SfM runs reused from an earlier run of this suite in the same work folder "
                     f"(SCALING_SFM_REUSE=1; it stopped after them): {', '.join(reused)}.")  # fmt: skip
    figures = {"plan": plan.__dict__, "runs": runs, "failed": failed, "fits": fits, "validation": validations}
    return SuiteResult(NAME, "Scaling: structure from motion and validation", figures, tables,
                       _targets(runs, limit, fits), _plots(runs, workspace, plan.large[1]), notes)  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1] == "sfm":
        _sfm_child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1] == "intake":
        _intake_child(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit(f"unknown child command {sys.argv[1]!r}")
