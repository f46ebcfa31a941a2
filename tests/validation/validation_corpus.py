"""Builders for the validator's test corpus: every input is generated in ``tmp_path``, nothing is checked in.

A uniquely named module rather than conftest.py, which other test folders also have: ``from conftest import``
would be ambiguous across the whole suite.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image


def photo(path: Path, seed: int = 0, size: tuple[int, int] = (160, 120), mode: str = "RGB", **save) -> Path:
    """A textured image (noise, so every seed gives different bytes) saved by extension or ``format=``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, **save)
    return path


def photos(folder: Path, count: int, start: int = 0, suffix: str = ".jpg") -> list[Path]:
    return [photo(folder / f"img_{index:03d}{suffix}", seed=index) for index in range(start, start + count)]


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder`` with its size and mtime: equal snapshots mean nothing was written."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            info = path.lstat()
            entries[path.relative_to(folder).as_posix()] = (info.st_size, info.st_mtime_ns)
    return entries
