"""Scaling of the splat stages: compression and CPU training against the Gaussian count, each beside today's.

Compression: synthetic scene-like clouds at SH 3 (``compress.evaluate.synthetic_cloud``, the compression suite's
inputs) of ``COMPRESS_SIZES`` Gaussians. Each encode runs in a fresh process, timed from reading the PLY to the
written ``.sog``, with that process's peak RSS: this encoder, the encoder of ``BASELINE_COMMIT`` (before the
palette was sized for scale), and ``splat-transform -g cpu`` (stopped after ``LIMIT_S``; larger sizes are then
not tried). Fidelity is scored as the compression suite scores it: splat-transform decodes each SOG, the CPU
rasteriser renders it from four orbit cameras at 320x240, PSNR against the PLY's renders.

Training: ``TRAIN_SIZES`` synthetic Gaussians on surfaces in front of two cameras at the CPU default preset's
resolution (480x360), sized so the screen stays covered about equally at every count (as a scene's Gaussians
shrink when there are more of them), SH 3 active; a few steps of the real training step (render, L1 + SSIM,
backward, Adam, density statistics) in a fresh process each: median seconds per step and peak RSS, beside the
memory model's CPU estimate (``spaceport.train.memory``). On a GPU machine ``benchmarks.gpu_check`` runs
``gpu-memory`` below and this suite fits ``bytes = a N + b pixels + c`` to what it recorded.

Every series gets a log-log plot and an exponent fitted on its points.

``python -m benchmarks --only scaling-splats --work DIR`` runs it all (``--quick``: small sizes only). The
workers, each one measurement in its own process and one JSON line out::

    python -m benchmarks.scaling_splats encode {spaceport,baseline,splat-transform} PLY SOG [--baseline-dir DIR]
    python -m benchmarks.scaling_splats train-step N [--device cpu|cuda] [--width 480 --height 360 --steps 5]
    python -m benchmarks.scaling_splats gpu-memory   # a grid of N and pixels on CUDA, for the GPU check
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, SPLAT_TRANSFORM, SuiteResult, Table, Target, Workspace, fmt, fmt_bytes
from benchmarks.plot import LinePlot, save

NAME, TITLE = "scaling-splats", "Scaling: compression and training against the Gaussian count"
COMPRESS_SIZES, COMPRESS_SIZES_QUICK = (20_000, 100_000, 1_000_000, 3_000_000), (20_000, 100_000)
TRAIN_SIZES, TRAIN_SIZES_QUICK = (10_000, 30_000, 100_000, 300_000), (10_000, 20_000, 50_000)
TRAIN_WIDTH, TRAIN_HEIGHT, TRAIN_STEPS = 480, 360, 5
# Today's encoder: the commit before the palette was sized for scale (its quantize.py and sog.py).
BASELINE_COMMIT = "c41c49572929fe2c8f06df21d69ae1eac5b16f0f"
LIMIT_S = 900
# The targets for 3M Gaussians on two cores.
TARGET_GAUSSIANS, TARGET_SECONDS, TARGET_PEAK_BYTES = 3_000_000, 600, 8e9
# A trained scene's held-out PSNR against its photos, to turn a render error into the dB it would cost.
SCENE_PSNR_DB = 30.0
# GPU grid of the memory recording: Gaussians x longest side (3:2 views).
GPU_GAUSSIANS, GPU_SIDES = (250_000, 1_000_000, 3_000_000), (800, 1600)
GPU_STEPS = 3


# ---------------------------------------------------------------------------------------------- workers


def _peak_rss_bytes() -> int:
    """This process's peak resident memory since it started (``VmHWM``).

    Not ``getrusage``: Linux carries the parent's resident size at fork into the child's ``ru_maxrss``, so a worker
    started by the suite would report the suite's memory.
    """
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _children_peak_rss_bytes() -> int:
    """The largest peak resident memory of the children waited for (this small worker's size at most inflates it)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def encode_worker(encoder: str, ply: Path, target: Path, baseline_dir: Path | None) -> dict[str, Any]:
    """One encode in this process: seconds from reading the PLY to the written bundle, and peak RSS."""
    if encoder == "splat-transform":
        started = time.perf_counter()
        subprocess.run([str(SPLAT_TRANSFORM), "-q", "-g", "cpu", "-w", str(ply), str(target)], check=True,
                       capture_output=True)  # fmt: skip
        seconds = time.perf_counter() - started
        return {"seconds": round(seconds, 2), "bytes": target.stat().st_size,
                "peak_rss_bytes": _children_peak_rss_bytes()}  # fmt: skip
    if encoder == "baseline":
        sys.path.insert(0, str(baseline_dir))
        import baseline_sog as sog  # type: ignore[import-not-found]
    else:
        from spaceport.compress import sog
    from spaceport.gaussians import read_ply

    started = time.perf_counter()
    config = sog.SogConfig()
    encoding = sog.encode_sog(read_ply(ply), config)
    size = sog.write_bundle(sog.encode_files(encoding, config), target)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": round(seconds, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "bytes": size,
            "steps": encoding.seconds, "palette": encoding.meta.get("shN", {}).get("count", 0),
            "peak_rss_bytes": _peak_rss_bytes()}  # fmt: skip


def _training_setup(count: int, width: int, height: int, device: str) -> tuple[Any, Any]:
    """A TrainState of ``count`` Gaussians on surfaces in front of two cameras, and its context, SH 3 active."""
    import dataclasses

    import numpy as np
    import torch

    from spaceport.train.backend import select_renderer
    from spaceport.train.config import preset_config
    from spaceport.train.data import CameraView
    from spaceport.train.progress import ProgressLog
    from spaceport.train.strategy import select_strategy
    from spaceport.train.trainer import TrainContext, initial_state

    config = preset_config("default", device)
    rng = np.random.default_rng(0)
    # A unit sphere (area 4 pi) on a 6 x 6 ground square (area 36): sigma = sqrt(area / N) keeps coverage constant.
    on_sphere = rng.random(count) < 0.3
    directions = rng.normal(size=(count, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    ground = np.column_stack([rng.uniform(-3, 3, count), np.full(count, 1.0), rng.uniform(-3, 3, count)])
    points = np.where(on_sphere[:, None], directions, ground).astype(np.float32)
    colors = rng.uniform(0.1, 0.9, (count, 3)).astype(np.float32)
    state = initial_state(points, colors, config, extent=4.0)
    with torch.no_grad():
        sigma = math.sqrt((4 * math.pi + 36.0) / count)
        state.params["log_scales"].copy_(torch.from_numpy(np.log(sigma) + rng.normal(0, 0.3, (count, 3))))
        state.params["opacity_logits"].copy_(torch.from_numpy(rng.normal(1.0, 1.0, count)))
        state.params["shN"].copy_(torch.from_numpy(rng.normal(0, 0.05, tuple(state.params["shN"].shape))))
    views = []
    for index, eye in enumerate(([0.0, -1.5, -4.0], [3.0, -1.5, -3.0])):
        forward = -np.asarray(eye) / np.linalg.norm(eye)
        right = np.cross([0.0, 1.0, 0.0], forward)
        right /= np.linalg.norm(right)
        rotation = np.stack([right, np.cross(forward, right), forward])
        viewmat = np.eye(4)
        viewmat[:3, :3], viewmat[:3, 3] = rotation, -rotation @ np.asarray(eye)
        K = np.array([[0.9 * width, 0, width / 2], [0, 0.9 * width, height / 2], [0, 0, 1]])
        image = torch.rand(height, width, 3, generator=torch.Generator().manual_seed(index)).to(device)
        views.append(CameraView(f"view{index}", image, torch.tensor(K, dtype=torch.float32, device=device),
                                torch.tensor(viewmat, dtype=torch.float32, device=device), width, height))  # fmt: skip
    # Start where every SH band is active, and stay clear of a densification step (the count stays N).
    full_sh = config.sh_degree * config.sh_degree_interval
    state.iteration = (full_sh // config.densify_every + 1) * config.densify_every + 1
    config = dataclasses.replace(config, iterations=state.iteration + 50)
    background = torch.zeros(3, device=device)
    ctx = TrainContext(config, views, select_renderer(device), background, 4.0, ProgressLog(10**9, None),
                       select_strategy(config, 4.0))  # fmt: skip
    return state, ctx


def train_step_worker(count: int, width: int, height: int, steps: int, device: str) -> dict[str, Any]:
    """Median seconds of ``steps`` training steps (after one warm-up) and the peak memory of this process."""
    import torch

    from spaceport.train.backend import configure_threads
    from spaceport.train.memory import RunSize, estimate_bytes
    from spaceport.train.trainer import train_step

    configure_threads(device)
    state, ctx = _training_setup(count, width, height, device)
    train_step(state, ctx.views[0], ctx)  # compiles or loads the kernels
    timings = []
    for step in range(steps):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        train_step(state, ctx.views[step % len(ctx.views)], ctx)
        if device == "cuda":
            torch.cuda.synchronize()
        timings.append(time.perf_counter() - started)
    model = estimate_bytes(RunSize(count, 3, width, width * height, 2 * width * height, 0), device)
    figures = {"gaussians": count, "width": width, "height": height, "device": device, "steps": steps,
               "seconds_per_step": round(sorted(timings)[len(timings) // 2], 4),
               "gaussians_after": len(state.params["means"]), "model_bytes": model.total_bytes}  # fmt: skip
    if device == "cuda":
        figures |= {"peak_allocated_bytes": torch.cuda.max_memory_allocated(),
                    "peak_reserved_bytes": torch.cuda.max_memory_reserved()}  # fmt: skip
    else:
        figures["peak_rss_bytes"] = _peak_rss_bytes()
    return figures


def gpu_memory_worker(out: Path | None, sizes: tuple[int, ...] = GPU_GAUSSIANS,
                      sides: tuple[int, ...] = GPU_SIDES) -> dict[str, Any]:  # fmt: skip
    """Peak GPU memory of a few training steps over a grid of Gaussian counts and view sizes, in this process.

    ``out`` is rewritten after every size, so a run stopped by its time limit keeps what it measured.
    """
    import gc

    import torch

    from spaceport.train.memory import RunSize, estimate_bytes
    from spaceport.train.trainer import train_step

    properties = torch.cuda.get_device_properties(0)
    figures: dict[str, Any] = {"device": properties.name, "total_memory_bytes": properties.total_memory,
                               "records": []}  # fmt: skip
    records = figures["records"]
    for side in sides:
        width, height = side, side * 2 // 3
        for count in sizes:
            gc.collect()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            baseline = torch.cuda.memory_allocated()
            record: dict[str, Any] = {"gaussians": count, "width": width, "height": height}
            try:
                state, ctx = _training_setup(count, width, height, "cuda")
                timings = []
                for step in range(GPU_STEPS + 1):
                    torch.cuda.synchronize()
                    started = time.perf_counter()
                    train_step(state, ctx.views[step % len(ctx.views)], ctx)
                    torch.cuda.synchronize()
                    timings.append(time.perf_counter() - started)
                model = estimate_bytes(RunSize(count, 3, side, width * height, 2 * width * height, 0), "cuda")
                modelled = sum(model.parts.values()) - model.parts["constant"]
                record |= {"peak_allocated_bytes": torch.cuda.max_memory_allocated() - baseline,
                           "peak_reserved_bytes": torch.cuda.max_memory_reserved(),
                           "seconds_per_step": round(sorted(timings[1:])[len(timings[1:]) // 2], 4),
                           "model_bytes_without_headroom": modelled}  # fmt: skip
                del state, ctx
            except torch.cuda.OutOfMemoryError as error:  # a record, not a crash: the model should have said so
                record["error"] = str(error).splitlines()[0]
            records.append(record)
            print(json.dumps(record), file=sys.stderr, flush=True)
            if out is not None:
                out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


# ------------------------------------------------------------------------------------------ orchestration


def _run_worker(arguments: list[str], limit: float) -> dict[str, Any] | None:
    """Run a worker in its own process group; its JSON, None when it ran past ``limit`` seconds, or a failure status
    (one failed size should not cost a long run the sizes after it)."""
    command = [sys.executable, "-m", "benchmarks.scaling_splats", *arguments]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # splat-transform's node runs under it: stop both
        process.communicate()
        return None
    if process.returncode != 0:
        print(stderr[-4000:], file=sys.stderr, flush=True)
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        return {"status": f"failed (exit {process.returncode}): {last[:200]}"}
    return json.loads(stdout.strip().splitlines()[-1])


def baseline_encoder(work: Path) -> Path | None:
    """Today's encoder (``BASELINE_COMMIT``) as two importable modules in ``work``; None without git history."""
    target = work / "baseline-encoder"
    if (target / "baseline_sog.py").is_file():
        return target
    try:
        sources = {name: subprocess.run(["git", "show", f"{BASELINE_COMMIT}:src/spaceport/compress/{name}.py"],
                                        cwd=ROOT, check=True, capture_output=True, text=True).stdout
                   for name in ("sog", "quantize")}  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return None
    target.mkdir(parents=True, exist_ok=True)
    (target / "baseline_quantize.py").write_text(sources["quantize"], encoding="utf-8")
    sog = sources["sog"].replace("from spaceport.compress.quantize import", "from baseline_quantize import")
    (target / "baseline_sog.py").write_text(sog, encoding="utf-8")
    return target


def fitted_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) against log(x): y grows as x to this power."""
    usable = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(usable) < 2:
        return None
    mean_x, mean_y = (sum(values) / len(usable) for values in zip(*usable, strict=True))
    spread = sum((x - mean_x) ** 2 for x, _ in usable)
    return sum((x - mean_x) * (y - mean_y) for x, y in usable) / spread if spread else None


def db_lost(fidelity_db: float, scene_db: float = SCENE_PSNR_DB) -> float:
    """Held-out dB a scene at ``scene_db`` would lose to a render error at ``fidelity_db`` (independent errors)."""
    return 10 * math.log10(1 + 10 ** ((scene_db - fidelity_db) / 10))


def measure_compression(workspace: Workspace, sizes: tuple[int, ...], compare: bool) -> list[dict[str, Any]]:
    """Every size with every encoder (one process each, one after the other), then each decode's fidelity."""
    from benchmarks.compression import renders, score, synthetic_scene

    baseline_dir = baseline_encoder(workspace.root)
    encoders = ["spaceport"] + (["baseline"] if baseline_dir else []) + (["splat-transform"] if compare else [])
    gave_up: set[str] = set()
    rows = []
    for count in sizes:
        scene = synthetic_scene(workspace, count)
        originals = renders(scene.ply, scene.views)
        row: dict[str, Any] = {"gaussians": count, "ply_bytes": scene.ply.stat().st_size}
        for encoder in encoders:
            if encoder in gave_up:
                row[encoder] = {"status": f"not run: a smaller scene took over {LIMIT_S} s"}
                continue
            target = scene.ply.parent / f"scaling-{encoder}.sog"
            arguments = ["encode", encoder, str(scene.ply), str(target)]
            figures = _run_worker(arguments + (["--baseline-dir", str(baseline_dir)] if baseline_dir else []),
                                  LIMIT_S)  # fmt: skip
            if figures is None:
                gave_up.add(encoder)
                row[encoder] = {"status": f"stopped after {LIMIT_S} s"}
                continue
            if "status" in figures:
                row[encoder] = figures
                continue
            figures |= score(scene, target, originals)
            figures["db_lost_at_30db"] = round(db_lost(figures["psnr_vs_ply_db"]), 3)
            row[encoder] = figures | {"status": "ok"}
        rows.append(row)
        print(f"[scaling] compressed {count:,}: {json.dumps(row)}", file=sys.stderr, flush=True)
    return rows


def measure_training(sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    rows = []
    for count in sizes:
        arguments = ["train-step", str(count), "--width", str(TRAIN_WIDTH), "--height", str(TRAIN_HEIGHT),
                     "--steps", str(TRAIN_STEPS)]  # fmt: skip
        rows.append(_run_worker(arguments, LIMIT_S) or {"gaussians": count, "status": f"stopped after {LIMIT_S} s"})
        print(f"[scaling] trained {count:,}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    return rows


# ------------------------------------------------------------------------------------------------ report

ENCODER_LABELS = {"spaceport": "spaceport (this)", "baseline": "spaceport today", "splat-transform": "splat-transform"}


def _series(rows: list[dict[str, Any]], key: str, field: str) -> list[tuple[float, float]]:
    return [(row["gaussians"], row[key][field]) for row in rows if row.get(key, {}).get(field) is not None]


def _exponent_text(points: list[tuple[float, float]]) -> str:
    exponent = fitted_exponent(points)
    return "n/a" if exponent is None else f"{exponent:.2f}"


def compression_report(rows: list[dict[str, Any]], plots_dir: Path) -> tuple[list[Table], list[Target], list[str]]:
    encoders = [name for name in ENCODER_LABELS if any(name in row for row in rows)]
    table_rows = []
    for row in rows:
        for encoder in encoders:
            entry = row.get(encoder)
            if entry is None:
                continue
            if entry.get("status") != "ok":
                table_rows.append([f"{row['gaussians']:,}", ENCODER_LABELS[encoder], entry["status"], *[""] * 5])
                continue
            table_rows.append([f"{row['gaussians']:,}", ENCODER_LABELS[encoder], fmt(entry["seconds"], 1, " s"),
                               fmt(entry["peak_rss_bytes"] / 2**30, 2, " GiB"), fmt_bytes(entry["bytes"]),
                               str(entry.get("palette", "")), fmt(entry["psnr_vs_ply_db"], 2, " dB"),
                               fmt(entry["db_lost_at_30db"], 2, " dB")])  # fmt: skip
    exponents = [[ENCODER_LABELS[name], _exponent_text(_series(rows, name, "seconds")),
                  _exponent_text(_series(rows, name, "peak_rss_bytes"))] for name in encoders]  # fmt: skip
    tables = [
        Table("Compression against the Gaussian count (SH 3, synthetic; encode = read PLY to written .sog)",
              ["Gaussians", "Encoder", "Encode", "Peak RSS", "Size", "SH palette", "PSNR vs PLY renders",
               f"dB lost by a {SCENE_PSNR_DB:g} dB scene"], table_rows),
        Table("Compression: fitted exponents (value grows as N to this power, over every size measured)",
              ["Encoder", "Encode time", "Peak RSS"], exponents),
    ]  # fmt: skip
    plots = []
    for field, label, name in (("seconds", "encode seconds", "scaling_compress_seconds.png"),
                               ("peak_rss_bytes", "peak RSS (bytes)", "scaling_compress_memory.png")):  # fmt: skip
        series = {f"{ENCODER_LABELS[encoder]} (exponent {_exponent_text(_series(rows, encoder, field))})":
                  _series(rows, encoder, field) for encoder in encoders}  # fmt: skip
        series = {key: value for key, value in series.items() if value}
        if series:
            save(LinePlot(f"Compression: {label} vs Gaussians (log-log)", "Gaussians", label, series,
                          log_axes=True), plots_dir / name)  # fmt: skip
            plots.append(name)
    return tables, _compression_targets(rows), plots


def _compression_targets(rows: list[dict[str, Any]]) -> list[Target]:
    largest = next((row for row in reversed(rows) if row.get("spaceport", {}).get("status") == "ok"), None)
    at_target = largest is not None and largest["gaussians"] >= TARGET_GAUSSIANS
    ours = largest["spaceport"] if largest else {}
    where = f"at {largest['gaussians']:,}" if largest else "not measured"
    targets = [
        Target(f"{TARGET_GAUSSIANS / 1e6:g}M Gaussians compress in <= {TARGET_SECONDS / 60:g} min on 2 cores",
               f"{ours.get('seconds', 0):.0f} s {where}",
               ours.get("seconds", 1e9) <= TARGET_SECONDS if at_target else None),
        Target(f"... with <= {TARGET_PEAK_BYTES / 1e9:g} GB peak memory",
               f"{ours.get('peak_rss_bytes', 0) / 1e9:.2f} GB {where}",
               ours.get("peak_rss_bytes", 1e18) <= TARGET_PEAK_BYTES if at_target else None),
    ]  # fmt: skip
    compared = [row for row in rows if row.get("baseline", {}).get("status") == "ok"
                and row.get("spaceport", {}).get("status") == "ok"]  # fmt: skip
    gaps = [row["spaceport"]["psnr_vs_ply_db"] - row["baseline"]["psnr_vs_ply_db"] for row in compared]
    targets.append(Target("fidelity kept: PSNR vs the PLY's renders within 0.1 dB of today's encoder, or better",
                          ", ".join(f"{gap:+.2f} dB" for gap in gaps) or "not measured",
                          min(gaps) >= -0.1 if gaps else None))  # fmt: skip
    memory = _series(rows, "spaceport", "peak_rss_bytes")
    exponent = fitted_exponent(memory[-2:])
    targets.append(Target("memory grows no faster than the input (exponent <= 1 over the two largest sizes)",
                          "n/a" if exponent is None else f"{exponent:.2f}",
                          None if exponent is None else exponent <= 1.05))  # fmt: skip
    return targets


def training_report(rows: list[dict[str, Any]], plots_dir: Path) -> tuple[list[Table], list[Target], list[str]]:
    done = [row for row in rows if "seconds_per_step" in row]
    table_rows = [[f"{row['gaussians']:,}", fmt(row["seconds_per_step"], 3, " s"),
                   fmt(row["peak_rss_bytes"] / 2**20, 0, " MiB"), fmt(row["model_bytes"] / 2**20, 0, " MiB"),
                   fmt(row["model_bytes"] / row["peak_rss_bytes"], 2, "x")] for row in done]  # fmt: skip
    seconds = [(row["gaussians"], row["seconds_per_step"]) for row in done]
    memory = [(row["gaussians"], row["peak_rss_bytes"]) for row in done]
    tables = [Table(f"CPU training step against the Gaussian count ({TRAIN_WIDTH}x{TRAIN_HEIGHT}, SH 3, median of "
                    f"{TRAIN_STEPS}; the training code is unchanged, so these are today's figures too)",
                    ["Gaussians", "Seconds per step", "Peak RSS", "Memory model (CPU, with headroom)",
                     "Model / measured"], table_rows),
              Table("Training: fitted exponents", ["Measure", "Exponent"],
                    [["seconds per step", _exponent_text(seconds)], ["peak RSS", _exponent_text(memory)]])]  # fmt: skip
    plots = []
    if done:
        name = "scaling_train.png"
        save(LinePlot("CPU training: seconds per step and peak RSS (GiB) vs Gaussians (log-log)", "Gaussians",
                      "value", {f"seconds per step (exponent {_exponent_text(seconds)})": seconds,
                                f"peak RSS, GiB (exponent {_exponent_text(memory)})":
                                    [(n, value / 2**30) for n, value in memory]}, log_axes=True),
             plots_dir / name)  # fmt: skip
        plots.append(name)
    exponent = fitted_exponent(memory[-2:])
    ratios = [row["model_bytes"] / row["peak_rss_bytes"] for row in done]
    targets = [Target("training memory grows no faster than N (exponent over the two largest sizes)",
                      "n/a" if exponent is None else f"{exponent:.2f}",
                      None if exponent is None else exponent <= 1.05),
               Target("the CPU memory model covers the measured peak (model / measured >= 1, <= 2)",
                      ", ".join(f"{ratio:.2f}x" for ratio in ratios) or "not measured",
                      all(1.0 <= ratio <= 2.0 for ratio in ratios) if ratios else None)]  # fmt: skip
    return tables, targets, plots


def fit_gpu_memory(records: list[dict[str, Any]]) -> dict[str, float] | None:
    """Least-squares ``peak = a N + b pixels + c`` over the GPU recording (the views' own bytes taken out)."""
    import numpy as np

    usable = [r for r in records if "peak_allocated_bytes" in r]
    if len(usable) < 3:
        return None
    design = np.array([[r["gaussians"], r["width"] * r["height"], 1.0] for r in usable], dtype=np.float64)
    # The two stored views (float32 RGB) are the model's third term: take them out so b is per rendered pixel.
    peaks = np.array([r["peak_allocated_bytes"] - 2 * 12 * r["width"] * r["height"] for r in usable], np.float64)
    (a, b, c), *_ = np.linalg.lstsq(design, peaks, rcond=None)
    return {"a_bytes_per_gaussian": float(a), "b_bytes_per_pixel": float(b), "constant_bytes": float(c)}


def gpu_report(figures_path: Path) -> tuple[list[Table], list[str]]:
    """The GPU recording that ``benchmarks.gpu_check`` brought back, if any, and the model fitted to it."""
    from spaceport.train.memory import per_gaussian_bytes, per_pixel_bytes

    derived_a, derived_b = sum(per_gaussian_bytes(3, "cuda").values()), sum(per_pixel_bytes("cuda").values())
    notes = [f"GPU memory model (spaceport.train.memory), derived from what training holds and not yet fitted on "
             f"CUDA: a = {derived_a:,.0f} bytes per Gaussian at SH 3, b = {derived_b:,.0f} bytes per rendered pixel, "
             "12 bytes per stored view pixel, 1 GiB constant, x1.2 headroom."]  # fmt: skip
    if not figures_path.is_file():
        return [], notes + ["No GPU recording yet: `python3 -m benchmarks.gpu_check run` records peak GPU memory "
                            "against N and pixels (figures.json, `memory_scaling`) when a GPU is lent."]  # fmt: skip
    recording = json.loads(figures_path.read_text(encoding="utf-8")).get("memory_scaling") or {}
    records = recording.get("records", [])
    rows = [[f"{r['gaussians']:,}", f"{r['width']}x{r['height']}",
             fmt(r.get("peak_allocated_bytes", 0) / 2**30, 2, " GiB") if "error" not in r else r["error"][:60],
             fmt(r.get("model_bytes_without_headroom", 0) / 2**30, 2, " GiB"),
             fmt(r.get("seconds_per_step"), 3, " s")] for r in records]  # fmt: skip
    fit = fit_gpu_memory(records)
    if fit:
        notes.append(f"Fitted on {recording.get('device')}: a = {fit['a_bytes_per_gaussian']:,.0f} bytes per "
                     f"Gaussian, b = {fit['b_bytes_per_pixel']:,.0f} per pixel, c = "
                     f"{fit['constant_bytes'] / 2**20:,.0f} MiB (derived: {derived_a:,.0f} and "
                     f"{derived_b:,.0f}).")  # fmt: skip
    table = Table(f"GPU training memory against N and pixels ({recording.get('device', 'GPU')}, gsplat, peak "
                  "allocated by torch)", ["Gaussians", "View", "Peak allocated", "Model (no headroom or constant)",
                                          "Seconds per step"], rows)  # fmt: skip
    return [table], notes


def run(workspace: Workspace, compare: bool = True, gpu_figures: Path | None = None) -> SuiteResult:
    """Compression and training at every size (small ones with ``--quick``), then the tables and plots.

    ``gpu_figures``: the GPU check's figures.json (default: gpu-check-output/figures.json), for its memory recording.
    """
    from benchmarks.gpu import DEFAULT_FIGURES

    compress_sizes = COMPRESS_SIZES_QUICK if workspace.quick else COMPRESS_SIZES
    train_sizes = TRAIN_SIZES_QUICK if workspace.quick else TRAIN_SIZES
    compression = measure_compression(workspace, compress_sizes, compare)
    training = measure_training(train_sizes)
    tables, targets, plots = compression_report(compression, workspace.plots_dir)
    train_tables, train_targets, train_plots = training_report(training, workspace.plots_dir)
    gpu_tables, notes = gpu_report(gpu_figures or DEFAULT_FIGURES)
    notes = [f"Today's encoder is that of commit {BASELINE_COMMIT[:7]} (before the SH palette was sized for scale), "
             f"run on the same PLYs. Runs are stopped after {LIMIT_S} s; once one is, larger sizes are not tried "
             f"for that encoder. 'dB lost by a {SCENE_PSNR_DB:g} dB scene' turns the render error into the held-out "
             f"PSNR a scene trained to {SCENE_PSNR_DB:g} dB would lose, assuming independent errors; the synthetic "
             "SH-rest is mostly noise, harder to cluster than a trained scene's (the trained scene's loss against "
             "its photos is in the compression section).", *notes]  # fmt: skip
    figures = {"compression": compression, "training": training}
    return SuiteResult(NAME, TITLE, figures, tables + train_tables + gpu_tables, targets + train_targets,
                       plots + train_plots, notes)  # fmt: skip


# -------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scaling_splats", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    encode = commands.add_parser("encode", help="one encode in this process")
    encode.add_argument("encoder", choices=("spaceport", "baseline", "splat-transform"))
    encode.add_argument("ply", type=Path)
    encode.add_argument("target", type=Path)
    encode.add_argument("--baseline-dir", type=Path)
    step = commands.add_parser("train-step", help="a few training steps in this process")
    step.add_argument("count", type=int)
    step.add_argument("--width", type=int, default=TRAIN_WIDTH)
    step.add_argument("--height", type=int, default=TRAIN_HEIGHT)
    step.add_argument("--steps", type=int, default=TRAIN_STEPS)
    step.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    gpu_memory = commands.add_parser("gpu-memory", help="peak GPU memory over a grid of N and pixels (CUDA)")
    gpu_memory.add_argument("--out", type=Path, help="also write the figures here (the GPU check reads them)")
    args = parser.parse_args(argv)
    if args.command == "encode":
        result = encode_worker(args.encoder, args.ply, args.target, args.baseline_dir)
    elif args.command == "train-step":
        result = train_step_worker(args.count, args.width, args.height, args.steps, args.device)
    else:
        result = gpu_memory_worker(args.out)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
