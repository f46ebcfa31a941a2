"""``report.json`` and the summary table of a local run."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spaceport.contract import write_json_atomic

# The figures each stage's manifest contributes to the report, under the stage's name.
REPORT_FIGURES = {
    "sfm": ("registered_images", "total_images", "points", "mean_reprojection_error_px"),
    "train": (
        "iterations",
        "num_gaussians",
        "psnr_test",
        "psnr_test_worst",
        "psnr_test_median",
        "ssim_test",
        "psnr_test_full_size",
        "ssim_test_full_size",
        "resolution",
        "psnr_initial",
        "test_views",
        "background",
        "background_mode",
        "sky_shell",
        "held_out_floaters",
        "device",
    ),
    "compress": ("ply_bytes", "sog_bytes"),
}


@dataclass
class RunReport:
    """What happened in a run; written to ``DIR/report.json`` whether the run succeeded or not."""

    input_path: str
    out_dir: str
    preset: str
    device: str
    status: str = "running"
    failed_stage: str | None = None
    reason: str | None = None
    log_file: str | None = None
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    # georef.json's content: the frame the outputs are in (None until the sfm stage has chosen it).
    georef: dict[str, Any] | None = None

    def record_stage(self, stage: str, seconds: float, skipped: bool, manifest: dict[str, Any]) -> None:
        self.stages[stage] = {"seconds": seconds, "skipped": skipped, **manifest.get("seconds_per_step", {})}
        if stage in REPORT_FIGURES:
            self.figures[stage] = {key: manifest.get(key) for key in REPORT_FIGURES[stage]}

    def fail(self, stage: str, reason: str, log_file: Path | None) -> None:
        self.status, self.failed_stage, self.reason = "failed", stage, reason
        self.log_file = str(log_file) if log_file else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "failed_stage": self.failed_stage,
            "reason": self.reason,
            "log_file": self.log_file,
            "input": self.input_path,
            "out_dir": self.out_dir,
            "preset": self.preset,
            "device": self.device,
            "stages": self.stages,
            **self.figures,
            "georef": self.georef,
            "outputs": self.outputs,
        }

    def write(self, path: Path) -> None:
        write_json_atomic(path, self.as_dict())


def _format(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}{unit}"
    return f"{value}{unit}"


def _test_psnr(train: dict[str, Any]) -> str:
    """The held-out PSNR with the resolution it was measured at, e.g. ``31.52 dB at 320x240``."""
    size = (train.get("resolution") or {}).get("evaluate")
    text = _format(train.get("psnr_test"), " dB")
    return f"{text} at {size[0]}x{size[1]}" if size and train.get("psnr_test") is not None else text


def frame_summary(georef: dict[str, Any] | None) -> str:
    """One line on the frame the outputs are in, e.g. ``GPS: east-north-up metres, RMS 0.71 m, 35 of 36 photos``."""
    if not georef:
        return "-"
    photos = georef.get("photos") or {}
    if georef.get("method") == "gps":
        rejected = len(photos.get("rejected") or [])
        text = (f"GPS: east-north-up metres, RMS {_format(georef.get('rms_m'), ' m')}, "
                f"{photos.get('used')} of {photos.get('with_gps')} photos")  # fmt: skip
        return text + (f", {rejected} rejected" if rejected else "")
    if georef.get("method") == "upright":
        reason = "GPS not usable" if photos.get("with_gps") else "no GPS"
        return f"upright (z up), scale arbitrary ({reason})"
    return "as SfM left it (--no-georef)"


def failure_summary(report: RunReport) -> str:
    """The lines printed at the end of a failed run: the reason first, then where to read more."""
    return "\n".join(
        [
            f"{report.failed_stage} failed: {report.reason}",
            f"log: {report.log_file}",
            f"report: {Path(report.out_dir) / 'report.json'}",
        ]
    )


def summary_table(report: RunReport) -> str:
    """The lines printed at the end of a successful run: what was made, how good it is, and what each stage took."""
    sfm, train, compress = (report.figures.get(name, {}) for name in ("sfm", "train", "compress"))
    rows = [
        ("images registered", f"{_format(sfm.get('registered_images'))} / {_format(sfm.get('total_images'))}"),
        ("3D points (SfM)", _format(sfm.get("points"))),
        ("reprojection error", _format(sfm.get("mean_reprojection_error_px"), " px")),
        ("frame", frame_summary(report.georef)),
        ("Gaussians", _format(train.get("num_gaussians"))),
        ("test PSNR", _test_psnr(train)),
        ("test SSIM", _format(train.get("ssim_test"))),
        ("scene.ply", _format(compress.get("ply_bytes"), " bytes")),
        ("scene.sog", _format(compress.get("sog_bytes"), " bytes")),
    ]
    for stage, timing in report.stages.items():
        note = " (reused)" if timing.get("skipped") else ""
        rows.append((f"{stage} seconds", f"{timing['seconds']:.1f}{note}"))
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name.ljust(width)}  {value}" for name, value in rows]
    warnings = [f"  warning: {text}" for text in (report.georef or {}).get("warnings", [])]
    return "\n".join([f"Run {report.status}: {report.out_dir}", *lines, *warnings])
