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


def mixed_capture(folder: Path) -> Path:
    """A capture as people really send one: good photos in two folders, plus a truncated photo, a byte-identical
    copy, operating-system litter, a nested archive, a text file, a tiny image and a PNG named .JPG."""
    import io
    import zipfile

    photos(folder / "scan", 4)
    photos(folder / "scan" / "upper", 2, start=4)
    good = (folder / "scan" / "img_000.jpg").read_bytes()
    (folder / "scan" / "truncated.jpg").write_bytes(good[: len(good) * 2 // 3])
    (folder / "scan" / "copy_of_000.jpg").write_bytes(good)
    (folder / "__MACOSX" / "scan").mkdir(parents=True)
    (folder / "__MACOSX" / "scan" / "._img_000.jpg").write_bytes(b"\x00\x05\x16\x07")
    (folder / "scan" / ".DS_Store").write_bytes(b"Bud1")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as inner:
        inner.writestr("a.jpg", good)
    (folder / "more.zip").write_bytes(buffer.getvalue())
    (folder / "notes.txt").write_text("shot on a cloudy day\n")
    photo(folder / "tiny.png", seed=20, size=(32, 32))
    photo(folder / "scan" / "IMG_9000.JPG", seed=21, format="PNG")
    return folder


def zip_folder(folder: Path, archive: Path, method: int | None = None) -> Path:
    """``folder``'s files in a zip, names relative to it, in sorted order (as zip tools write them)."""
    import zipfile

    method = zipfile.ZIP_DEFLATED if method is None else method
    with zipfile.ZipFile(archive, "w", method) as handle:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            handle.write(path, path.relative_to(folder).as_posix())
    return archive
