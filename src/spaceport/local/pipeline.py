"""The local run: validate → sfm → train → compress on one machine, with the SageMaker directory contract.

Each stage runs as its own process with its ``/opt/ml`` root mapped to ``DIR/work/<stage>``, exactly as
SageMaker would run the container, so a run that works here works there. A stage is skipped when its
output manifest verifies and was made from the same inputs and options (its fingerprint); a corrupted or
partial output fails verification and the stage runs again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spaceport.contract import (
    MANIFEST_NAME,
    ProcessingLayout,
    StageError,
    TrainingLayout,
    verify_manifest,
    write_json_atomic,
)
from spaceport.local.report import RunReport
from spaceport.sfm.georef import GEOREF_FILE, read_georef

logger = logging.getLogger("spaceport.local")

STAGES = ("validate", "sfm", "train", "compress")
LineCallback = Callable[[str], None]


@dataclass(frozen=True)
class RunOptions:
    """What ``spaceport run`` was asked to do."""

    input_path: Path
    out_dir: Path
    preset: str = "default"
    device: str = "auto"
    from_stage: str | None = None
    iterations: int | None = None
    georef: bool = True

    def train_hyperparameters(self) -> dict[str, str]:
        """What the train stage is given, as SageMaker would give it: strings."""
        values = {"preset": self.preset, "device": self.device}
        return values | ({"iterations": str(self.iterations)} if self.iterations is not None else {})


@dataclass(frozen=True)
class RunLayout:
    """Where a run keeps each stage's SageMaker-shaped root, its logs and the final outputs."""

    out_dir: Path

    def stage_root(self, stage: str) -> Path:
        return self.out_dir / "work" / stage

    def log_file(self, stage: str) -> Path:
        return self.out_dir / "logs" / f"{stage}.log"

    @property
    def sfm(self) -> ProcessingLayout:
        return ProcessingLayout(self.stage_root("sfm"))

    @property
    def train(self) -> TrainingLayout:
        return TrainingLayout(self.stage_root("train"))

    @property
    def compress(self) -> ProcessingLayout:
        return ProcessingLayout(self.stage_root("compress"))

    def stage_output(self, stage: str) -> Path:
        outputs = {
            "validate": self.stage_root("validate"),
            "sfm": self.sfm.output_dir,
            "train": self.train.model_dir,
            "compress": self.compress.output_dir,
        }
        return outputs[stage]

    def failure_file(self, stage: str) -> Path:
        files = {
            "validate": self.stage_root("validate") / "failure",
            "sfm": self.sfm.failure_file,
            "train": self.train.failure_file,
            "compress": self.compress.failure_file,
        }
        return files[stage]

    @property
    def report_file(self) -> Path:
        return self.out_dir / "report.json"


@dataclass
class StageOutcome:
    """One stage's result, as the report shows it."""

    name: str
    seconds: float = 0.0
    skipped: bool = False
    manifest: dict[str, Any] = field(default_factory=dict)


class StageFailedError(Exception):
    """A stage ended with an error; ``reason`` is what its failure file said."""

    def __init__(self, stage: str, reason: str, log_file: Path) -> None:
        super().__init__(f"{stage} failed: {reason}")
        self.stage, self.reason, self.log_file = stage, reason, log_file


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def manifest_digest(output_dir: Path) -> str:
    return hashlib.sha256((output_dir / MANIFEST_NAME).read_bytes()).hexdigest()


def completed_manifest(layout: RunLayout, stage: str, expected_fingerprint: str) -> dict[str, Any] | None:
    """The stage's manifest when its output is intact and was made from the same inputs, else None."""
    output = layout.stage_output(stage)
    manifest = verify_manifest(output)
    stamp = layout.stage_root(stage) / "fingerprint"
    if manifest is None or not stamp.is_file() or stamp.read_text().strip() != expected_fingerprint:
        return None
    return manifest


def mark_complete(layout: RunLayout, stage: str, stage_fingerprint: str) -> None:
    stamp = layout.stage_root(stage) / "fingerprint"
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(stage_fingerprint + "\n")


def invalidate_from(layout: RunLayout, stage: str) -> None:
    """Forget the outputs of ``stage`` and every stage after it, so they run again."""
    for name in STAGES[STAGES.index(stage) :]:
        (layout.stage_root(name) / "fingerprint").unlink(missing_ok=True)


def run_stage_process(stage: str, arguments: list[str], layout: RunLayout, on_line: LineCallback | None = None) -> None:
    """Run one stage as its own process (``python -m spaceport.cli STAGE ...``), its output teed to its log.

    Raises:
        StageFailedError: the process exited non-zero; the reason comes from the stage's failure file.
    """
    log_file = layout.log_file(stage)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    failure_file = layout.failure_file(stage)
    failure_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "spaceport.cli", stage, *arguments]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_file.open("w", encoding="utf-8") as log:
        log.write("$ " + " ".join(command) + "\n")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
        )
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            log.flush()
            if on_line is not None:
                on_line(line.rstrip("\n"))
        returncode = process.wait()
    if returncode != 0:
        reason = failure_file.read_text(encoding="utf-8").strip() if failure_file.is_file() else ""
        raise StageFailedError(stage, reason or f"the {stage} process exited with code {returncode}", log_file)


def copy_tree(source: Path, target: Path) -> None:
    """Replace ``target`` with a copy of ``source``."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)


def elapsed_since(started: float) -> float:
    return round(time.monotonic() - started, 2)


def prepare_images(options: RunOptions, layout: RunLayout) -> dict[str, Any]:
    """Validate the input with the cloud's validator and copy the usable images into the sfm stage's input.

    Images keep their paths relative to INPUT, which become their names in the COLMAP model.

    Raises:
        StageFailedError: the input was rejected; the reason names every problem.
    """
    from spaceport.validation import validated_input

    images_dir = layout.sfm.input_dir("images")
    log_file = layout.log_file("validate")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with validated_input(options.input_path) as validated:
        report = validated.report
        log_file.write_text(report.summary() + "\n", encoding="utf-8")
        write_json_atomic(layout.stage_root("validate") / "validation.json", report.model_dump(mode="json"))
        if not report.accepted:
            reason = "; ".join(f"{issue.code}: {issue.path or 'input'}: {issue.message}" for issue in report.problems)
            raise StageFailedError("validate", f"the input was rejected: {reason}", log_file)
        if images_dir.exists():
            shutil.rmtree(images_dir)
        for image in validated.images:
            target = images_dir / image.relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(image.path, target)
    return {"images": report.images, "warnings": [issue.model_dump(mode="json") for issue in report.warnings]}


def image_folder_digest(folder: Path) -> str:
    """A digest of every file's relative path and content, to tell whether the sfm input changed."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def stage_fingerprint(stage: str, options: RunOptions, layout: RunLayout) -> str:
    """What a stage's output depends on: its upstream output and the options that change it."""
    if stage == "sfm":
        return fingerprint({"images": image_folder_digest(layout.sfm.input_dir("images")), "georef": options.georef})
    if stage == "train":
        from spaceport.train.config import build_config

        # The resolved configuration, so `--device auto` and `--device cpu` on a CPU machine are one run.
        config = build_config(options.train_hyperparameters()).to_dict()
        return fingerprint({"sfm": manifest_digest(layout.sfm.output_dir), "config": config})
    # compress also writes the exports, which depend on the frame georef.json describes.
    return fingerprint(
        {"train": manifest_digest(layout.train.model_dir), "sfm": manifest_digest(layout.sfm.output_dir)}
    )


def lay_out_inputs(stage: str, options: RunOptions, layout: RunLayout, stage_fingerprint: str) -> None:
    """Put a stage's inputs where SageMaker would download them into the container."""
    if stage == "train":
        copy_tree(layout.sfm.output_dir, layout.train.channel_dir("sfm"))
        write_json_atomic(layout.train.hyperparameters_file, options.train_hyperparameters())
        # Checkpoints resume an interrupted training of the same inputs, never one of other inputs.
        started = layout.stage_root("train") / "started"
        if not started.is_file() or started.read_text().strip() != stage_fingerprint:
            shutil.rmtree(layout.train.checkpoint_dir, ignore_errors=True)
        started.write_text(stage_fingerprint + "\n")
    elif stage == "compress":
        model_input = layout.compress.input_dir("model")
        if model_input.exists():
            shutil.rmtree(model_input)
        model_input.mkdir(parents=True)
        # As SageMaker gives it: the model folder (scene.ply and the train stage's manifest), and georef.json.
        for name in ("scene.ply", MANIFEST_NAME):
            shutil.copy2(layout.train.model_dir / name, model_input / name)
        georef_input = layout.compress.input_dir("georef")
        shutil.rmtree(georef_input, ignore_errors=True)
        georef_input.mkdir(parents=True)
        if (layout.sfm.output_dir / GEOREF_FILE).is_file():
            shutil.copy2(layout.sfm.output_dir / GEOREF_FILE, georef_input / GEOREF_FILE)


STAGE_ARGUMENTS = {
    "sfm": lambda layout: ["--ml-root", str(layout.stage_root("sfm"))],
    "train": lambda layout: ["--ml-root", str(layout.stage_root("train"))],
    "compress": lambda layout: ["--stage", "--ml-root", str(layout.stage_root("compress"))],
}


def stage_arguments(stage: str, options: RunOptions, layout: RunLayout) -> list[str]:
    """The stage process's command line: its SageMaker root, and the run's options that reach it."""
    arguments = STAGE_ARGUMENTS[stage](layout)
    if stage == "sfm" and not options.georef:
        arguments.append("--no-georef")
    return arguments


def run_container_stage(
    stage: str, options: RunOptions, layout: RunLayout, on_line: LineCallback | None
) -> StageOutcome:
    """Run one SageMaker-shaped stage unless its output is complete and made from the same inputs."""
    started = time.monotonic()
    expected = stage_fingerprint(stage, options, layout)
    manifest = completed_manifest(layout, stage, expected)
    if manifest is not None:
        logger.info("%s: output complete and current, not run again", stage)
        return StageOutcome(stage, seconds=0.0, skipped=True, manifest=manifest)
    (layout.stage_root(stage) / "fingerprint").unlink(missing_ok=True)
    lay_out_inputs(stage, options, layout, expected)
    run_stage_process(stage, stage_arguments(stage, options, layout), layout, on_line)
    manifest = verify_manifest(layout.stage_output(stage))
    if manifest is None:
        raise StageFailedError(stage, "the stage exited cleanly but left no intact manifest", layout.log_file(stage))
    mark_complete(layout, stage, expected)
    return StageOutcome(stage, seconds=elapsed_since(started), manifest=manifest)


class Progress:
    """Receives what a run does; the command shows it, tests can record it."""

    def stage_started(self, stage: str) -> None:
        """A stage begins (or is checked for reuse)."""

    def stage_line(self, stage: str, line: str) -> None:
        """A line of the stage's log."""

    def stage_finished(self, stage: str, outcome: StageOutcome) -> None:
        """A stage ended well, or was reused."""

    def close(self) -> None:
        """The run is over, whether it succeeded or not."""


def run_pipeline(options: RunOptions, progress: Progress | None = None) -> RunReport:
    """Run every stage, publish the outputs into DIR and write ``DIR/report.json``, on failure too."""
    progress = progress or Progress()
    layout = RunLayout(options.out_dir)
    options.out_dir.mkdir(parents=True, exist_ok=True)
    report = RunReport(str(options.input_path), str(options.out_dir), options.preset, options.device)
    if options.from_stage:
        invalidate_from(layout, options.from_stage)
    try:
        for stage in STAGES:
            progress.stage_started(stage)
            outcome = execute_stage(stage, options, layout, lambda line, s=stage: progress.stage_line(s, line))
            report.record_stage(stage, outcome.seconds, outcome.skipped, outcome.manifest)
            if stage == "sfm":
                report.georef = read_georef(layout.sfm.output_dir / GEOREF_FILE)
            progress.stage_finished(stage, outcome)
        report.outputs = publish_outputs(layout)
        report.status = "succeeded"
    except StageFailedError as failure:
        report.fail(failure.stage, failure.reason, failure.log_file)
    finally:
        report.write(layout.report_file)
    return report


def execute_stage(stage: str, options: RunOptions, layout: RunLayout, on_line: LineCallback) -> StageOutcome:
    if stage != "validate":
        try:
            return run_container_stage(stage, options, layout, on_line)
        except StageError as error:  # raised here, before the stage's process, e.g. --device cuda without one
            raise StageFailedError(stage, str(error), layout.log_file(stage)) from error
    started = time.monotonic()
    figures = prepare_images(options, layout)
    return StageOutcome(stage, seconds=elapsed_since(started), manifest=figures)


def publish_outputs(layout: RunLayout) -> dict[str, str]:
    """Copy the deliverables to the top of DIR, with the viewer page and a preview image beside them."""
    from spaceport.local.views import start_camera, write_preview
    from spaceport.viewer import write_viewer

    out = layout.out_dir
    shutil.copy2(layout.train.model_dir / "scene.ply", out / "scene.ply")
    shutil.copy2(layout.compress.output_dir / "scene.sog", out / "scene.sog")
    exports = publish_exports(layout.compress.output_dir, out)
    copy_tree(layout.sfm.output_dir / "sparse" / "0", out / "sfm" / "sparse" / "0")
    sfm_dir = layout.sfm.output_dir
    georef = read_georef(sfm_dir / GEOREF_FILE)
    (out / GEOREF_FILE).unlink(missing_ok=True)  # an earlier `spaceport georef` must not outlive this frame
    if georef is not None:
        shutil.copy2(sfm_dir / GEOREF_FILE, out / GEOREF_FILE)
    train = verify_manifest(layout.train.model_dir)
    write_viewer(out, start_camera(sfm_dir, georef), georef, sky_shell=bool(train.get("sky_shell")))
    background = tuple(train["background"])
    write_preview(out / "scene.ply", sfm_dir, out / "preview.png", background)
    names = ("scene.ply", "scene.sog", *exports, "sfm/sparse/0", *([GEOREF_FILE] if georef else []), "index.html",
             "preview.png", "report.json")  # fmt: skip
    return {name: str(out / name) for name in names}


def publish_exports(compress_dir: Path, out: Path) -> list[str]:
    """``scene.glb``, ``scene.spz`` and ``tiles/`` (for a scene on the globe) from the compress stage into DIR, an
    older run's left nowhere; the names published (``tiles/tileset.json`` for the tiles)."""
    from spaceport.export.tileset import TILESET_FILE
    from spaceport.export.writer import GLB_NAME, SPZ_NAME, TILES_DIR

    shutil.rmtree(out / TILES_DIR, ignore_errors=True)
    names = []
    for name in (GLB_NAME, SPZ_NAME):
        (out / name).unlink(missing_ok=True)
        if (compress_dir / name).is_file():
            shutil.copy2(compress_dir / name, out / name)
            names.append(name)
    if (compress_dir / TILES_DIR / TILESET_FILE).is_file():
        copy_tree(compress_dir / TILES_DIR, out / TILES_DIR)
        names.append(f"{TILES_DIR}/{TILESET_FILE}")
    return names
