"""The splat scaling suite without its long measurements: its workers at tiny sizes, its fits, and its verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks import gpu_check, scaling_splats
from benchmarks.plot import LinePlot, save
from benchmarks.report import save_markdown
from PIL import Image

from spaceport.compress.decode import read_sog
from spaceport.compress.evaluate import synthetic_cloud
from spaceport.gaussians import write_ply

ROOT = Path(__file__).resolve().parents[2]


def _encoded(seconds: float, peak: float, psnr: float) -> dict[str, Any]:
    return {"status": "ok", "seconds": seconds, "peak_rss_bytes": peak, "bytes": 1000, "palette": 16384,
            "psnr_vs_ply_db": psnr, "db_lost_at_30db": scaling_splats.db_lost(psnr)}  # fmt: skip


def compression_rows() -> list[dict[str, Any]]:
    """Three sizes: ours everywhere, today's until 1M, splat-transform stopped at the smallest."""
    rows = []
    for count, ours_s, theirs_s in ((100_000, 10.0, 25.0), (1_000_000, 90.0, 300.0), (3_000_000, 240.0, None)):
        row: dict[str, Any] = {"gaussians": count, "ply_bytes": count * 248}
        row["spaceport"] = _encoded(ours_s, 0.4e9 + 700 * count, 41.0)
        row["baseline"] = _encoded(theirs_s, 0.5e9 + 800 * count, 40.95) if theirs_s else {"status": "stopped"}
        row["splat-transform"] = {"status": "stopped after 900 s"}
        rows.append(row)
    return rows


def test_the_exponent_and_the_db_lost_follow_their_definitions() -> None:
    # GIVEN a power law y = 3 x^1.5, WHEN fitted, THEN the exponent is 1.5
    assert scaling_splats.fitted_exponent([(x, 3 * x**1.5) for x in (1e4, 1e5, 1e6)]) == pytest.approx(1.5)
    assert scaling_splats.fitted_exponent([(1e4, 1.0)]) is None
    # AND a render error 9.1 dB under a 30 dB scene costs it about half a dB; an equal one costs 3 dB
    assert scaling_splats.db_lost(39.14) == pytest.approx(0.5, abs=0.01)
    assert scaling_splats.db_lost(30.0) == pytest.approx(3.01, abs=0.01)


def test_compression_figures_become_tables_targets_and_log_log_plots(tmp_path: Path) -> None:
    # GIVEN measurements up to 3M Gaussians in 4 minutes and under 3 GB, as fine as today's encoder
    rows = compression_rows()

    # WHEN reported
    tables, targets, plots = scaling_splats.compression_report(rows, tmp_path)

    # THEN the 3M targets pass, fidelity is compared where today's finished, and memory grows at most linearly
    assert [target.met for target in targets] == [True, True, True, True]
    assert "240 s at 3,000,000" in targets[0].measured and "+0.05 dB, +0.05 dB" == targets[2].measured
    # AND every run is a row, a stopped one saying so; exponents come per encoder; both plots exist
    assert len(tables[0].rows) == 9 and "stopped after 900 s" in tables[0].rows[2]
    assert [row[0] for row in tables[1].rows] == ["spaceport (this)", "spaceport today", "splat-transform"]
    assert tables[1].rows[2][1:] == ["n/a", "n/a"]
    assert all(Image.open(tmp_path / name).size == (720, 440) for name in plots) and len(plots) == 2


def test_a_slow_3m_encode_misses_and_a_missing_3m_is_not_measured(tmp_path: Path) -> None:
    # GIVEN a 3M encode of 11 minutes, and separately a run that stopped at 1M
    slow = compression_rows()
    slow[2]["spaceport"]["seconds"] = 660.0
    short = compression_rows()[:2]

    # WHEN reported, THEN the slow one misses the time target and the short one measured neither 3M target
    assert scaling_splats.compression_report(slow, tmp_path)[1][0].met is False
    assert [target.met for target in scaling_splats.compression_report(short, tmp_path)[1][:2]] == [None, None]


def test_training_figures_compare_the_model_with_the_measured_peak(tmp_path: Path) -> None:
    # GIVEN CPU step figures whose modelled memory is 1.3x the measured peak
    rows = [{"gaussians": n, "seconds_per_step": 1e-6 * n + 0.1, "peak_rss_bytes": 5e8 + 2000 * n,
             "model_bytes": 1.3 * (5e8 + 2000 * n)} for n in (10_000, 100_000, 300_000)]  # fmt: skip

    # WHEN reported
    tables, targets, plots = scaling_splats.training_report(rows, tmp_path)

    # THEN memory grows sub-linearly, the model covers the peak, and the plot is written
    assert [target.met for target in targets] == [True, True]
    assert tables[0].rows[0][-1] == "1.30x" and plots == ["scaling_train.png"]


def test_the_gpu_recording_fits_back_its_coefficients(tmp_path: Path) -> None:
    # GIVEN a recording made by a GPU whose peak is exactly 1,500 B per Gaussian + 600 B per pixel + 200 MB
    records = [{"gaussians": n, "width": side, "height": side * 2 // 3,
                "peak_allocated_bytes": 1500 * n + (600 + 24) * side * (side * 2 // 3) + 2e8,
                "model_bytes_without_headroom": 1, "seconds_per_step": 0.05}
               for side in (800, 1600) for n in (250_000, 1_000_000, 3_000_000)]  # fmt: skip
    records.append({"gaussians": 9_000_000, "width": 1600, "height": 1066, "error": "CUDA out of memory"})
    figures = tmp_path / "figures.json"
    figures.write_text(json.dumps({"memory_scaling": {"device": "NVIDIA H200", "records": records}}))

    # WHEN fitted and reported
    fit = scaling_splats.fit_gpu_memory(records)
    tables, notes = scaling_splats.gpu_report(figures)

    # THEN a, b and c come back (the two stored views taken out of b), and the error row says what happened
    assert fit == pytest.approx({"a_bytes_per_gaussian": 1500, "b_bytes_per_pixel": 600, "constant_bytes": 2e8})
    assert "Fitted on NVIDIA H200: a = 1,500 bytes per Gaussian, b = 600 per pixel" in notes[-1]
    assert tables[0].rows[-1][2] == "CUDA out of memory"


def test_the_gpu_check_keeps_the_memory_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a check whose memory step writes its figures as the worker does
    check = gpu_check.Check(tmp_path, tmp_path, gpu_check.time.monotonic() + 60)

    def worker(name: str, command: list[str], limit: float, env: dict[str, str] | None = None) -> Any:
        Path(command[command.index("--out") + 1]).write_text(json.dumps({"device": "GPU", "records": [{"n": 1}]}))
        return gpu_check.StepResult("ok", 1.0, 0)

    monkeypatch.setattr(check, "run", worker)

    # WHEN the step runs
    gpu_check.record_memory_scaling(check, {})

    # THEN figures.json carries the recording
    assert json.loads((tmp_path / "figures.json").read_text())["memory_scaling"]["records"] == [{"n": 1}]


@pytest.mark.slow
def test_the_encode_workers_write_readable_sogs_with_their_peaks(tmp_path: Path) -> None:
    # GIVEN a small SH-3 PLY and today's encoder taken from git
    ply = tmp_path / "scene.ply"
    write_ply(synthetic_cloud(3000, 3, seed=2), ply)
    baseline = scaling_splats.baseline_encoder(tmp_path)
    assert baseline is not None

    # WHEN both encoders run as the suite runs them, each in its own process
    figures = {}
    for encoder in ("spaceport", "baseline"):
        command = [sys.executable, "-m", "benchmarks.scaling_splats", "encode", encoder, str(ply),
                   str(tmp_path / f"{encoder}.sog"), "--baseline-dir", str(baseline)]  # fmt: skip
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        figures[encoder] = json.loads(result.stdout.strip().splitlines()[-1])

    # THEN both SOGs decode to every Gaussian, and each process reports its own time and peak (not the suite's)
    for encoder, entry in figures.items():
        assert len(read_sog(tmp_path / f"{encoder}.sog")) == 3000
        assert entry["seconds"] > 0 and 20e6 < entry["peak_rss_bytes"] < 1e9 and entry["palette"] > 0


@pytest.mark.slow
def test_the_training_worker_steps_at_full_sh_without_densifying() -> None:
    # GIVEN a tiny synthetic set in front of two small cameras
    # WHEN a few training steps are timed
    figures = scaling_splats.train_step_worker(800, 48, 32, 2, "cpu")

    # THEN the count did not change, and time, peak and the model's estimate are reported
    assert figures["gaussians_after"] == 800 and figures["seconds_per_step"] > 0
    assert figures["peak_rss_bytes"] > 0 and figures["model_bytes"] > figures["peak_rss_bytes"] / 4


def test_log_axes_draw_a_power_law(tmp_path: Path) -> None:
    # GIVEN a power law over three decades
    plot = LinePlot("y = x^2", "x", "y", {"law": [(10.0**k, 10.0 ** (2 * k)) for k in range(2, 6)]}, log_axes=True)

    # WHEN drawn
    save(plot, tmp_path / "law.png")

    # THEN a PNG of the usual size is written, with the series drawn
    pixels = np.asarray(Image.open(tmp_path / "law.png"))
    assert pixels.shape == (440, 720, 3) and (np.abs(pixels.astype(int) - [31, 119, 180]).sum(-1) < 30).any()


def test_the_section_renders_in_results_md(tmp_path: Path) -> None:
    # GIVEN the suite's result built from canned figures
    tables, targets, plots = scaling_splats.compression_report(compression_rows(), tmp_path)
    result = scaling_splats.SuiteResult(scaling_splats.NAME, scaling_splats.TITLE, {}, tables, targets, plots)
    result.machine = {"date": "today", "cpu": "cpu", "cores": 2}

    # WHEN written into RESULTS.md
    save_markdown({scaling_splats.NAME: result}, tmp_path / "RESULTS.md")

    # THEN its heading, its plots and its targets are there
    text = (tmp_path / "RESULTS.md").read_text()
    assert f"## {scaling_splats.TITLE}" in text and "plots/scaling_compress_seconds.png" in text
    assert "3M Gaussians compress in <= 10 min on 2 cores" in text
