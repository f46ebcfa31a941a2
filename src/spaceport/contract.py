"""The directory contract every stage shares with SageMaker, and the rules for writing outputs.

In a container the root is ``/opt/ml``; on one machine (``spaceport run``) it is ``DIR/work/<stage>``,
so a stage sees exactly the layout SageMaker gives it wherever it runs:

- Processing (sfm, compress): inputs under ``processing/input/<name>``, outputs in ``processing/output``,
  failure reason in ``output/message`` (SageMaker returns its first KB as ``ExitMessage``).
- Training (train): ``input/config/hyperparameters.json``, channels under ``input/data/<channel>``,
  model in ``model``, checkpoints in ``checkpoints``, failure reason in ``output/failure``
  (SageMaker returns it as ``FailureReason``).

An output folder is complete only when its ``manifest.json`` exists: a stage deletes any old manifest
before it starts and writes the new one last, atomically, listing every file with its size and SHA-256,
so a half-written output never looks complete and a corrupted one is detected.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spaceport import __version__

SAGEMAKER_ROOT = Path("/opt/ml")
MANIFEST_NAME = "manifest.json"
# SageMaker keeps the first KB of ExitMessage / FailureReason; keep the reason's start meaningful.
FAILURE_REASON_LIMIT = 1024

logger = logging.getLogger("spaceport")


class StageError(Exception):
    """A failure whose message is meant for the user: it becomes the job's failure reason as is."""


@dataclass(frozen=True)
class ProcessingLayout:
    """Paths of a SageMaker Processing container (sfm, compress) under one root."""

    root: Path = SAGEMAKER_ROOT

    def input_dir(self, name: str) -> Path:
        return self.root / "processing" / "input" / name

    @property
    def output_dir(self) -> Path:
        return self.root / "processing" / "output"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "message"


@dataclass(frozen=True)
class TrainingLayout:
    """Paths of a SageMaker Training container (train) under one root."""

    root: Path = SAGEMAKER_ROOT

    @property
    def hyperparameters_file(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    def channel_dir(self, channel: str) -> Path:
        return self.root / "input" / "data" / channel

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / "checkpoints"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"


def read_hyperparameters(path: Path) -> dict[str, str]:
    """SageMaker passes every hyperparameter as a string; a missing file means none were given."""
    if not path.exists():
        return {}
    values = json.loads(path.read_text(encoding="utf-8"))
    return {str(key): str(value) for key, value in values.items()}


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


def begin_output(output_dir: Path) -> None:
    """Create the output folder and withdraw any previous manifest, so partial output never looks done."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / MANIFEST_NAME).unlink(missing_ok=True)


def write_manifest(output_dir: Path, stage: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Write ``manifest.json`` last: the stage's figures plus every output file's size and SHA-256."""
    files = {}
    for path in sorted(p for p in output_dir.rglob("*") if p.is_file()):
        relative = path.relative_to(output_dir).as_posix()
        if relative == MANIFEST_NAME or path.name.startswith("."):
            continue
        files[relative] = {"bytes": path.stat().st_size, "sha256": file_digest(path)}
    manifest = {"stage": stage, "spaceport_version": __version__, **figures, "files": files}
    write_json_atomic(output_dir / MANIFEST_NAME, manifest)
    return manifest


def verify_manifest(output_dir: Path) -> dict[str, Any] | None:
    """Return the manifest when the output is complete and intact, else None."""
    manifest_path = output_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for relative, expected in manifest.get("files", {}).items():
        path = output_dir / relative
        if not path.is_file() or path.stat().st_size != expected["bytes"] or file_digest(path) != expected["sha256"]:
            return None
    return manifest


def write_failure_reason(failure_file: Path, reason: str) -> None:
    failure_file.parent.mkdir(parents=True, exist_ok=True)
    encoded = reason.encode("utf-8")[:FAILURE_REASON_LIMIT]
    failure_file.write_text(encoded.decode("utf-8", errors="ignore"), encoding="utf-8")


def configure_logging() -> None:
    """One line per event on stderr: CloudWatch keeps it in the container, the local run in its log file."""
    logging.basicConfig(
        level=os.environ.get("SPACEPORT_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


def run_stage(stage: str, failure_file: Path, body: Callable[[], None]) -> int:
    """Run a stage's body; on any error write the reason where SageMaker reads it and return non-zero.

    A ``StageError`` is the user's problem and its message is the reason as is; anything else is our bug,
    reported with its type so the job record still says what broke.
    """
    configure_logging()
    failure_file.unlink(missing_ok=True)
    started = time.monotonic()
    logger.info("%s: starting (spaceport %s)", stage, __version__)
    try:
        body()
    except StageError as error:
        reason = f"{stage}: {error}"
        logger.error(reason)
        write_failure_reason(failure_file, reason)
        return 1
    except Exception as error:  # the last line of defence: the reason must reach the job record
        reason = f"{stage}: internal error: {type(error).__name__}: {error}"
        logger.error("%s\n%s", reason, traceback.format_exc())
        write_failure_reason(failure_file, reason)
        return 2
    logger.info("%s: finished in %.1f s", stage, time.monotonic() - started)
    return 0


@contextmanager
def timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    """Record a step's wall time into ``seconds[step]`` and log it."""
    started = time.monotonic()
    logger.info("%s ...", step)
    try:
        yield
    finally:
        seconds[step] = round(time.monotonic() - started, 3)
        logger.info("%s done in %.2f s", step, seconds[step])
