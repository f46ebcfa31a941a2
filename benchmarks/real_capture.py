"""Real photo captures for the benchmarks, each prepared by script from a pinned commit of a public repository.

- ``lund``: OpenSfM's "Lund" street sequence. 29 photos (1024x768, iPhone 4S, EXIF with focal length and GPS) taken
  on a walk along cobbled streets of textured house fronts in Lund, Sweden; faces and number plates blurred
  upstream. Source https://github.com/mapillary/OpenSfM/tree/4c0cce09697991c66d4677696e5aa099d64a3865/data/lund/images
  (2020-08-31; unchanged on ``main`` since). Licence BSD-2-Clause, "Copyright (c) 2014, mapillary" (the
  repository's ``LICENSE``, which covers the photos), so ``SOURCE.md`` beside the prepared photos reproduces it.
- ``sceaux``: openMVG's Sceaux Castle sample. 11 photos (2832x2128, Kodak Z612, EXIF with focal length, exposure
  time, aperture and ISO) of the Chateau de Sceaux, France, from a short arc in front of it, with a large sky.
  Source https://github.com/openMVG/ImageDataset_SceauxCastle/tree/fde7f5faba555e3c54700477c304488613346a19/images.
  "Copyright 2012 Pierre MOULON"; the repository states no licence, so these photos are only read for measuring
  here, never redistributed: ``SOURCE.md`` says so beside them.

The photos stay out of this repository: ``prepare`` (or ``python -m benchmarks.real_capture OUT [--capture KEY]``)
extracts them from a local copy of the repository (``--source``: a bare mirror, a clone, or its working tree) or
from a partial clone of the public one, optionally downscaled (which costs SfM registrations on Lund: see its
``default_max_side``)::

    python -m benchmarks.real_capture /tmp/lund [--capture lund] [--source /path/to/OpenSfM.git] [--max-side 1024]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

logger = logging.getLogger("benchmarks.real_capture")


@dataclass(frozen=True)
class RealCapture:
    """A public capture at a pinned commit, and what its ``SOURCE.md`` must say.

    Attributes:
        key: the name the suites use.
        repo: ``owner/name`` on GitHub.
        commit: the pinned commit.
        photos_path: the photos' folder in the repository.
        photo_count: how many photos that folder holds.
        title: a line for tables.
        attribution: who owns the photos and on what terms.
        licence: the licence's name, or None where the repository grants none.
        licence_path: the file whose text ``SOURCE.md`` reproduces (with ``licence``), or None.
        default_max_side: longest side of the prepared photos by default (0: the originals).
    """

    key: str
    repo: str
    commit: str
    photos_path: str
    photo_count: int
    title: str
    attribution: str
    licence: str | None
    licence_path: str | None
    default_max_side: int

    @property
    def url(self) -> str:
        return f"https://github.com/{self.repo}"

    @property
    def cache_dir(self) -> Path:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "spaceport"
        return cache / f"{self.repo.split('/')[1]}.git"


CAPTURES = {
    "lund": RealCapture(
        "lund", "mapillary/OpenSfM", "4c0cce09697991c66d4677696e5aa099d64a3865", "data/lund/images", 29,
        "OpenSfM's Lund street walk (29 photos, 1024x768)",
        '"Lund" example photos from OpenSfM (https://github.com/mapillary/OpenSfM), data/lund/images at commit '
        "4c0cce09697991c66d4677696e5aa099d64a3865. Copyright (c) 2014, mapillary; BSD-2-Clause licence "
        "(reproduced below).",
        # This narrow street needs every SIFT feature it has: with the fast preset, COLMAP registered 29 of 29
        # photos at 1024 px (the originals), 3 at 800 and 9 at 640.
        "BSD-2-Clause", "LICENSE", 1024,
    ),
    "sceaux": RealCapture(
        "sceaux", "openMVG/ImageDataset_SceauxCastle", "fde7f5faba555e3c54700477c304488613346a19", "images", 11,
        "openMVG's Sceaux Castle (11 photos, 2832x2128 shrunk to 1416x1064)",
        '"Sceaux Castle" sample photos of openMVG (https://github.com/openMVG/ImageDataset_SceauxCastle), images/ '
        'at commit fde7f5faba555e3c54700477c304488613346a19. "Copyright 2012 Pierre MOULON"; the repository grants '
        "no licence: read here for measuring only, never redistributed.",
        # Half size: the training resolution is 480 px, and SfM registers all 11 at 1416 px in a fraction of the time.
        None, None, 1416,
    ),
}  # fmt: skip
JPEG_QUALITY = 95
EXIF_IFD = 0x8769
TAG_EXIF_IMAGE_WIDTH, TAG_EXIF_IMAGE_HEIGHT = 0xA002, 0xA003
# Focal-plane resolutions are in pixels per unit at the original size; after a resize they would lie.
TAGS_INVALID_AFTER_RESIZE = (0xA20E, 0xA20F, 0xA210)
CLONE_TIMEOUT_S = 600


class CaptureError(Exception):
    """The capture cannot be prepared (no source, no network, a commit or a photo missing from the source)."""


def git(git_dir: Path, *args: str) -> bytes:
    """Run a git command against ``git_dir`` and return its stdout; raises CaptureError on failure."""
    result = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, check=False)
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise CaptureError(f"git {' '.join(args)} failed in {git_dir}: {message}")
    return result.stdout


def git_dir_of(source: Path, capture: RealCapture) -> Path:
    """The git directory of a bare repository, a mirror, a clone or a working tree inside one."""
    result = subprocess.run(["git", "-C", str(source), "rev-parse", "--absolute-git-dir"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0:
        raise CaptureError(f"{source} is not a git repository of {capture.repo}: {result.stderr.strip()}")
    return Path(result.stdout.strip())


def clone_public(capture: RealCapture) -> Path:
    """A bare partial clone of the public repository in the user's cache (blobs are fetched when first read)."""
    cache = capture.cache_dir
    if (cache / "HEAD").is_file():
        return cache
    cache.parent.mkdir(parents=True, exist_ok=True)
    command = ["git", "clone", "--bare", "--filter=blob:none", "--quiet", capture.url, str(cache)]
    logger.info("cloning %s into %s (commits and trees only)", capture.url, cache)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=CLONE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as error:
        raise CaptureError(f"cloning {capture.url} took over {CLONE_TIMEOUT_S} s; pass --source instead") from error
    if result.returncode != 0:
        raise CaptureError(f"could not clone {capture.url} (no network?): {result.stderr.strip()}\n"
                           f"Pass --source with a local copy of {capture.repo} that contains commit "
                           f"{capture.commit}.")  # fmt: skip
    return cache


def list_photos(git_dir: Path, capture: RealCapture) -> dict[str, str]:
    """File name to blob id of every photo at the pinned commit."""
    if subprocess.run(["git", f"--git-dir={git_dir}", "cat-file", "-e", f"{capture.commit}^{{commit}}"],
                      capture_output=True, check=False).returncode != 0:  # fmt: skip
        raise CaptureError(f"{git_dir} does not contain commit {capture.commit}; fetch {capture.url} into it first")
    listing = git(git_dir, "ls-tree", "-z", f"{capture.commit}:{capture.photos_path}").decode()
    photos = {}
    for entry in filter(None, listing.split("\0")):
        meta, name = entry.split("\t", 1)
        _mode, kind, blob = meta.split()
        if kind == "blob" and name.lower().endswith((".jpg", ".jpeg")):
            photos[name] = blob
    if len(photos) != capture.photo_count:
        raise CaptureError(f"expected {capture.photo_count} photos under {capture.photos_path} at {capture.commit}, "
                           f"found {len(photos)}")  # fmt: skip
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


def source_note(git_dir: Path, capture: RealCapture, max_side: int) -> str:
    """SOURCE.md: what the photos are, where they come from, the licence text, and how they were prepared."""
    size = "photos copied byte for byte"
    if max_side > 0:
        size = (f"photos longer than {max_side} px downscaled to it (LANCZOS, JPEG quality {JPEG_QUALITY}), "
                "the others copied byte for byte")  # fmt: skip
    note = (f"# {capture.title}\n\n{capture.attribution}\n\n"
            f"- Source: {capture.url}/tree/{capture.commit}/{capture.photos_path}\n"
            f"- Licence: {capture.licence or 'none granted: for measuring only, do not redistribute'}\n"
            f"- {stamp(capture, max_side)}: {capture.photo_count} photos, {size}; EXIF kept.\n")  # fmt: skip
    if capture.licence_path is not None:
        licence_text = git(git_dir, "show", f"{capture.commit}:{capture.licence_path}").decode().strip()
        note += f"\n## Licence ({capture.licence_path} at {capture.commit})\n\n```\n{licence_text}\n```\n"
    return note


def stamp(capture: RealCapture, max_side: int) -> str:
    """The line of SOURCE.md that says which commit and size a prepared folder holds."""
    return f"Prepared from commit {capture.commit} with max side {max_side}"


def is_prepared(out_dir: Path, capture: RealCapture, max_side: int) -> bool:
    """The folder already holds every photo, prepared from the pinned commit at this size."""
    note = out_dir / "SOURCE.md"
    if not note.is_file() or stamp(capture, max_side) not in note.read_text(encoding="utf-8"):
        return False
    return len([path for path in (out_dir / "images").iterdir() if path.is_file()]) == capture.photo_count


def prepare(out_dir: Path, capture: RealCapture = CAPTURES["lund"], source: Path | None = None,
            max_side: int | None = None) -> Path:  # fmt: skip
    """Extract the capture's photos at the pinned commit into ``out_dir/images`` and write ``out_dir/SOURCE.md``.

    Args:
        out_dir: the folder to fill; left as it is when it already holds this capture at this size.
        capture: which capture.
        source: a local copy of the repository (bare mirror, clone or working tree) that contains the commit;
            None clones the public repository (partially) into the user's cache.
        max_side: longest side of the written photos in pixels; 0 keeps the originals byte for byte; None: the
            capture's default.

    Returns:
        The images folder, ready for ``spaceport validate`` / ``spaceport run``.

    Raises:
        CaptureError: no usable source (no network, commit or photos missing).
    """
    max_side = capture.default_max_side if max_side is None else max_side
    images_dir = out_dir / "images"
    if is_prepared(out_dir, capture, max_side):
        logger.info("%s already holds the %d photos; nothing to do", images_dir, capture.photo_count)
        return images_dir
    git_dir = git_dir_of(source, capture) if source is not None else clone_public(capture)
    photos = list_photos(git_dir, capture)
    images_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "SOURCE.md").unlink(missing_ok=True)
    for name, blob in sorted(photos.items()):
        (images_dir / name).write_bytes(downscaled_jpeg(read_blob(git_dir, blob, name), max_side))
    # Written last: its stamp is what marks the folder as complete.
    (out_dir / "SOURCE.md").write_text(source_note(git_dir, capture, max_side), encoding="utf-8")
    logger.info("wrote %d photos to %s", len(photos), images_dir)
    return images_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real_capture", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="output folder (images/ and SOURCE.md are written there)")
    parser.add_argument("--capture", choices=sorted(CAPTURES), default="lund", help="which capture (default: lund)")
    parser.add_argument("--source", type=Path, help="local copy of the capture's repository (default: clone it)")
    parser.add_argument("--max-side", type=int,
                        help="longest side in pixels, 0 for the originals (default: the capture's own)")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        images_dir = prepare(args.out, CAPTURES[args.capture], args.source, args.max_side)
    except CaptureError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(images_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
