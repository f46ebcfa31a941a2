"""A real photo capture for the benchmarks: OpenSfM's "Lund" street sequence, prepared from a pinned commit.

The capture is 29 photos (1024x768, iPhone 4S, EXIF with focal length and GPS) taken on a walk along cobbled
streets of textured house fronts in Lund, Sweden, which OpenSfM ships as an example dataset. Faces and
number plates were blurred upstream in the pinned commit.

- Source: https://github.com/mapillary/OpenSfM/tree/4c0cce09697991c66d4677696e5aa099d64a3865/data/lund/images
- Commit: 4c0cce09697991c66d4677696e5aa099d64a3865 (2020-08-31, "chore: blur faces and license plates in
  test images"); the photos are unchanged on ``main`` since.
- Licence: BSD-2-Clause, "Copyright (c) 2014, mapillary" (the repository's ``LICENSE``, which covers the
  photos: the repository gives them no other terms). Redistribution must keep that notice, so ``SOURCE.md``
  beside the prepared photos reproduces it in full.

The photos stay out of this repository: ``prepare`` (or ``python -m benchmarks.real_capture OUT``) extracts
them from a local copy of OpenSfM (``--source``: a bare mirror, a clone, or its working tree) or from a
partial clone of the public repository, optionally downscaled (which costs SfM registrations: see
``DEFAULT_MAX_SIDE``)::

    python -m benchmarks.real_capture /tmp/lund [--source /path/to/OpenSfM.git] [--max-side 1024]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

logger = logging.getLogger("benchmarks.real_capture")

REPO = "mapillary/OpenSfM"
REPO_URL = f"https://github.com/{REPO}"
COMMIT = "4c0cce09697991c66d4677696e5aa099d64a3865"
PHOTOS_PATH = "data/lund/images"
PHOTO_COUNT = 29
TITLE = "OpenSfM's Lund street walk (29 photos, 1024x768)"
LICENCE = "BSD-2-Clause"
LICENCE_PATH = "LICENSE"
ATTRIBUTION = (
    f'"Lund" example photos from OpenSfM ({REPO_URL}), {PHOTOS_PATH} at commit {COMMIT}. '
    "Copyright (c) 2014, mapillary; BSD-2-Clause licence (reproduced below)."
)
# The originals' own size, so by default their bytes are copied unchanged. This narrow street needs every
# SIFT feature it has: with the fast preset, COLMAP registered 29 of 29 photos at 1024 px, 3 at 800 and 9 at 640.
DEFAULT_MAX_SIDE = 1024
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spaceport" / "OpenSfM.git"
CLONE_TIMEOUT_S = 600
JPEG_QUALITY = 95
EXIF_IFD = 0x8769
TAG_EXIF_IMAGE_WIDTH, TAG_EXIF_IMAGE_HEIGHT = 0xA002, 0xA003
# Focal-plane resolutions are in pixels per unit at the original size; after a resize they would lie.
TAGS_INVALID_AFTER_RESIZE = (0xA20E, 0xA20F, 0xA210)


class CaptureError(Exception):
    """The capture cannot be prepared (no source, no network, a commit or a photo missing from the source)."""


def git(git_dir: Path, *args: str) -> bytes:
    """Run a git command against ``git_dir`` and return its stdout; raises CaptureError on failure."""
    result = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise CaptureError(f"git {' '.join(args)} failed in {git_dir}: {message}")
    return result.stdout


def git_dir_of(source: Path) -> Path:
    """The git directory of a bare repository, a mirror, a clone or a working tree inside one."""
    result = subprocess.run(["git", "-C", str(source), "rev-parse", "--absolute-git-dir"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        raise CaptureError(f"{source} is not a git repository of {REPO}: {result.stderr.strip()}")
    return Path(result.stdout.strip())


def clone_public(cache: Path = CACHE_DIR) -> Path:
    """A bare partial clone of the public repository in ``cache`` (blobs are fetched when first read)."""
    if (cache / "HEAD").is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    command = ["git", "clone", "--bare", "--filter=blob:none", "--quiet", REPO_URL, str(cache)]
    logger.info("cloning %s into %s (commits and trees only)", REPO_URL, cache)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=CLONE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as error:
        raise CaptureError(f"cloning {REPO_URL} took over {CLONE_TIMEOUT_S} s; pass --source instead") from error
    if result.returncode != 0:
        raise CaptureError(f"could not clone {REPO_URL} (no network?): {result.stderr.strip()}\n"
                           f"Pass --source with a local copy of {REPO} that contains commit {COMMIT}.")  # fmt: skip
    return cache


def list_photos(git_dir: Path) -> dict[str, str]:
    """File name to blob id of every photo at the pinned commit."""
    if subprocess.run(["git", f"--git-dir={git_dir}", "cat-file", "-e", f"{COMMIT}^{{commit}}"],
                      capture_output=True, check=False).returncode != 0:  # fmt: skip
        raise CaptureError(f"{git_dir} does not contain commit {COMMIT}; fetch {REPO_URL} into it first")
    listing = git(git_dir, "ls-tree", "-z", f"{COMMIT}:{PHOTOS_PATH}").decode()
    photos = {}
    for entry in filter(None, listing.split("\0")):
        meta, name = entry.split("\t", 1)
        _mode, kind, blob = meta.split()
        if kind == "blob" and name.lower().endswith((".jpg", ".jpeg")):
            photos[name] = blob
    if len(photos) != PHOTO_COUNT:
        raise CaptureError(f"expected {PHOTO_COUNT} photos under {PHOTOS_PATH} at {COMMIT}, found {len(photos)}")
    return photos


def read_blob(git_dir: Path, blob: str, name: str) -> bytes:
    """A photo's bytes; a mirror that left its large blobs out fails here, naming the photo."""
    try:
        return git(git_dir, "cat-file", "blob", blob)
    except CaptureError as error:
        raise CaptureError(f"{name} (blob {blob}) is missing from {git_dir}: {error}") from error


def downscaled_jpeg(data: bytes, max_side: int) -> bytes:
    """The photo with its longest side at most ``max_side`` px (0: unchanged), EXIF kept.

    The pixels are not rotated, so an EXIF orientation still applies to them; the EXIF image size is
    updated and the focal-plane resolutions, which would be wrong at the new size, are dropped.
    """
    with Image.open(io.BytesIO(data)) as photo:
        if max_side <= 0 or max(photo.size) <= max_side:
            return data
        scale = max_side / max(photo.size)
        size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
        exif = photo.getexif()
        icc_profile = photo.info.get("icc_profile")
        resized = photo.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    exif_ifd = exif.get_ifd(EXIF_IFD)
    if exif_ifd:
        exif_ifd[TAG_EXIF_IMAGE_WIDTH], exif_ifd[TAG_EXIF_IMAGE_HEIGHT] = size
        for tag in TAGS_INVALID_AFTER_RESIZE:
            exif_ifd.pop(tag, None)
    buffer = io.BytesIO()
    resized.save(buffer, "JPEG", quality=JPEG_QUALITY, exif=exif, icc_profile=icc_profile)
    return buffer.getvalue()


def source_note(git_dir: Path, max_side: int) -> str:
    """SOURCE.md: what the photos are, where they come from, the licence text, and how they were prepared."""
    licence_text = git(git_dir, "show", f"{COMMIT}:{LICENCE_PATH}").decode().strip()
    size = "photos copied byte for byte"
    if max_side > 0:
        size = (f"photos longer than {max_side} px downscaled to it (LANCZOS, JPEG quality {JPEG_QUALITY}), "
                "the others copied byte for byte")  # fmt: skip
    return (f"# Lund (OpenSfM example photos)\n\n{ATTRIBUTION}\n\n"
            f"- Source: {REPO_URL}/tree/{COMMIT}/{PHOTOS_PATH}\n- Licence: {LICENCE}\n"
            f"- {stamp(max_side)}: {PHOTO_COUNT} photos, {size}; EXIF kept.\n\n"
            f"## Licence ({LICENCE_PATH} at {COMMIT})\n\n```\n{licence_text}\n```\n")  # fmt: skip


def stamp(max_side: int) -> str:
    """The line of SOURCE.md that says which commit and size a prepared folder holds."""
    return f"Prepared from commit {COMMIT} with max side {max_side}"


def is_prepared(out_dir: Path, max_side: int) -> bool:
    """The folder already holds every photo, prepared from the pinned commit at this size."""
    note = out_dir / "SOURCE.md"
    if not note.is_file() or stamp(max_side) not in note.read_text(encoding="utf-8"):
        return False
    return len(list((out_dir / "images").glob("*.jpg"))) == PHOTO_COUNT


def prepare(out_dir: Path, source: Path | None = None, max_side: int = DEFAULT_MAX_SIDE) -> Path:
    """Extract the capture's photos at the pinned commit into ``out_dir/images`` and write ``out_dir/SOURCE.md``.

    Args:
        out_dir: the folder to fill; left as it is when it already holds this capture at this size.
        source: a local copy of the repository (bare mirror, clone or working tree) that contains the commit;
            None clones the public repository (partially) into the user's cache.
        max_side: longest side of the written photos in pixels; 0 keeps the originals byte for byte.

    Returns:
        The images folder, ready for ``spaceport validate`` / ``spaceport run``.

    Raises:
        CaptureError: no usable source (no network, commit or photos missing).
    """
    images_dir = out_dir / "images"
    if is_prepared(out_dir, max_side):
        logger.info("%s already holds the %d photos; nothing to do", images_dir, PHOTO_COUNT)
        return images_dir
    git_dir = git_dir_of(source) if source is not None else clone_public()
    photos = list_photos(git_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "SOURCE.md").unlink(missing_ok=True)
    for name, blob in sorted(photos.items()):
        (images_dir / name).write_bytes(downscaled_jpeg(read_blob(git_dir, blob, name), max_side))
    # Written last: its stamp is what marks the folder as complete.
    (out_dir / "SOURCE.md").write_text(source_note(git_dir, max_side), encoding="utf-8")
    logger.info("wrote %d photos to %s", len(photos), images_dir)
    return images_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_capture", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder (images/ and SOURCE.md are written there)")
    parser.add_argument("--source", type=Path, help=f"local copy of {REPO} (default: clone {REPO_URL})")
    parser.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE,
                        help=f"longest side in pixels, 0 for the originals (default: {DEFAULT_MAX_SIDE})")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        images_dir = prepare(args.out, args.source, args.max_side)
    except CaptureError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(images_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
