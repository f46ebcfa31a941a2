"""Checkpoints for managed spot training: SageMaker syncs the checkpoint folder to S3 and back on restart.

Each checkpoint is one ``torch.save`` file, ``step-<iteration>.pt``, written under a dot-name and
renamed into place so a checkpoint being written when the instance is reclaimed never looks valid.
Only the newest two are kept; on start the newest readable one is used (the older one covers a file
that SageMaker had only partly uploaded).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger("spaceport.train")

CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)\.pt$")
KEEP_NEWEST = 2


class CheckpointStore:
    """Atomic, rotating checkpoint files in one folder."""

    def __init__(self, directory: Path, keep: int = KEEP_NEWEST) -> None:
        self.directory = directory
        self.keep = keep

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(iteration, path) of every complete checkpoint, newest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = CHECKPOINT_PATTERN.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found, reverse=True)

    def save(self, iteration: int, payload: dict[str, Any]) -> Path:
        import torch

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"step-{iteration:07d}.pt"
        partial = self.directory / f".{path.name}.partial"
        torch.save(payload, partial)
        os.replace(partial, path)
        for _, old in self.checkpoints()[self.keep :]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self) -> dict[str, Any] | None:
        """The newest checkpoint that loads, or None when there is none."""
        import torch

        for iteration, path in self.checkpoints():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:  # a truncated upload: fall back to the previous checkpoint
                logger.warning("checkpoint %s (iteration %d) is unreadable, trying an older one: %s",
                               path.name, iteration, error)  # fmt: skip
        return None
