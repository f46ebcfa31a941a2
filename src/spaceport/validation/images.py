"""Check one file by its content: is it a photo the sfm stage can use?

A file is judged by its bytes, never its extension: the signature is sniffed, Pillow reads the header, the pixel
count is checked against the limit *before* any pixel is decoded (a decompression bomb is refused unopened),
and then the image is decoded for real so that truncated and corrupt files are caught here rather than in the
middle of the sfm stage. JPEGs decode at 1/8 scale (libjpeg's DCT scaling still reads every byte of the
entropy-coded data, so truncation is still detected) which keeps thousands of photos within the time budget.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageFile

from spaceport.validation.codes import Code
from spaceport.validation.limits import Limits
from spaceport.validation.report import Issue
from spaceport.validation.sniff import SNIFF_BYTES, Kind, sniff

# Formats the sfm stage reads. Other formats Pillow opens (GIF, ICO, PSD, ...) are palette, icon or layered
# files, not camera output.
EXTENSIONS_BY_FORMAT = {
    "JPEG": {".jpg", ".jpeg", ".jpe", ".jfif"},
    "MPO": {".jpg", ".jpeg", ".jpe", ".mpo"},
    "PNG": {".png"},
    "TIFF": {".tif", ".tiff"},
    "WEBP": {".webp"},
    "BMP": {".bmp", ".dib"},
}
# Extensions that promise an image: undecodable content under one of these is a broken photo, not a stray file.
IMAGE_EXTENSIONS = set().union(*EXTENSIONS_BY_FORMAT.values()) | {
    ".heic", ".heif", ".avif", ".gif", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf",
}  # fmt: skip
EXIF_ORIENTATION_TAG = 0x0112
# JPEG's DCT scaling decodes at 1/2, 1/4 or 1/8 of full size; 1/8 is cheapest.
JPEG_DRAFT_SCALE = 8


@dataclass(frozen=True)
class ImageInfo:
    """A usable image: where it is (None for one read from a stream and kept nowhere), and what the sfm stage
    needs to know about it."""

    relative: str
    path: Path | None
    format: str
    mode: str
    width: int
    height: int
    orientation: int
    size_bytes: int


@dataclass
class FileResult:
    """The verdict on one file: usable (``image``) or skipped (``skip`` says why), plus tolerated notes."""

    relative: str
    image: ImageInfo | None = None
    skip: Issue | None = None
    notes: list[Issue] = field(default_factory=list)


class FileSkippedError(Exception):
    """This file cannot be used; ``code`` and the message say why."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def pillow_guard(limits: Limits) -> Iterator[None]:
    """Pillow's process-wide settings for the validator: strict about truncation, bomb limit from ``limits``.

    Restored afterwards, because other code in the process (training, the viewer) may want different ones.
    """
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    # Pillow raises DecompressionBombError at twice this in Image.open; inspect_file refuses anything above it.
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def inspect_file(relative: str, path: Path, limits: Limits) -> FileResult:
    """Judge one file; never raises for anything the file's content can cause. Call inside ``pillow_guard``."""
    result = FileResult(relative)
    try:
        with _open_regular(path) as handle:
            size_bytes = os.fstat(handle.fileno()).st_size
            result.image = _inspect(relative, handle, size_bytes, path, limits, result.notes)
    except FileSkippedError as skipped:
        result.skip = Issue(code=skipped.code, path=relative, message=str(skipped))
    return result


def inspect_stream(relative: str, handle: BinaryIO, size_bytes: int, limits: Limits) -> FileResult:
    """Judge one file's bytes, read from a seekable stream (an archive member or an object held in memory), by
    exactly the checks ``inspect_file`` makes. Call inside ``pillow_guard``."""
    result = FileResult(relative)
    try:
        handle.seek(0)
        result.image = _inspect(relative, handle, size_bytes, None, limits, result.notes)
    except FileSkippedError as skipped:
        result.skip = Issue(code=skipped.code, path=relative, message=str(skipped))
    return result


def _inspect(
    relative: str, handle: BinaryIO, size_bytes: int, path: Path | None, limits: Limits, notes: list[Issue]
) -> ImageInfo:
    extension = path_suffix(relative)
    if size_bytes == 0:
        code = Code.UNREADABLE_IMAGE if extension in IMAGE_EXTENSIONS else Code.UNSUPPORTED_FILE
        raise FileSkippedError(code, "an empty file (0 bytes)")
    head = handle.read(SNIFF_BYTES)
    handle.seek(0)
    _refuse_by_signature(sniff(head))
    with _open_image(handle, extension) as image:
        info = _check_header(relative, path, image, size_bytes, limits)
        _decode(image)
        orientation = _orientation(image, relative, notes)
    if extension not in EXTENSIONS_BY_FORMAT[info.format]:
        shown = extension or "no extension"
        notes.append(Issue(code=Code.MISLABELLED_FILE, path=relative, message=f"a {info.format} image named {shown}"))
    return dataclasses.replace(info, orientation=orientation)


def path_suffix(relative: str) -> str:
    """The lower-cased extension, so IMG_0001.JPG counts as a JPEG name."""
    return os.path.splitext(relative)[1].lower()


@contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    """Open a regular file for reading without following a link or blocking on a pipe."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        raise FileSkippedError(Code.UNREADABLE_IMAGE, f"cannot be opened: {error.strerror}") from error
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise FileSkippedError(Code.UNSUPPORTED_FILE, "not a regular file")
        yield handle


def _refuse_by_signature(kind: Kind) -> None:
    if kind is Kind.VIDEO:
        raise FileSkippedError(
            Code.UNSUPPORTED_FILE, "a video: extract still frames (for example ffmpeg -i VIDEO -r 2 frame_%04d.jpg)"
        )
    if kind is Kind.HEIF:
        raise FileSkippedError(Code.UNSUPPORTED_FILE, "a HEIC/HEIF/AVIF image: convert it to JPEG")
    if kind in (Kind.ZIP, Kind.ARCHIVE):
        raise FileSkippedError(Code.NESTED_ARCHIVE, "an archive inside the input is not opened: add its photos instead")


@contextmanager
def _open_image(handle: BinaryIO, extension: str) -> Iterator[Image.Image]:
    """Pillow's header parse; any failure means the bytes are not an image Pillow understands."""
    try:
        image = Image.open(handle)
    except Image.DecompressionBombError as error:
        raise FileSkippedError(Code.IMAGE_TOO_LARGE, f"refused unopened as a decompression bomb: {error}") from error
    except Exception as error:  # noqa: BLE001 - Pillow's plugins raise many types on hostile bytes
        code = Code.UNREADABLE_IMAGE if extension in IMAGE_EXTENSIONS else Code.UNSUPPORTED_FILE
        raise FileSkippedError(code, "not an image this tool can read") from error
    with image:
        yield image


def _check_header(relative: str, path: Path | None, image: Image.Image, size_bytes: int, limits: Limits) -> ImageInfo:
    """Format and dimensions, from the header alone: nothing has been decoded yet."""
    if image.format not in EXTENSIONS_BY_FORMAT:
        raise FileSkippedError(Code.UNSUPPORTED_FILE, f"{image.format} images are not supported: use JPEG, PNG or TIFF")
    width, height = image.size
    if width * height > limits.max_image_pixels:
        raise FileSkippedError(
            Code.IMAGE_TOO_LARGE,
            f"{width}x{height} is over the limit of {limits.max_image_pixels} pixels (a decompression bomb?); "
            "not decoded",
        )
    if min(width, height) < limits.min_image_side:
        raise FileSkippedError(
            Code.IMAGE_TOO_SMALL,
            f"{width}x{height} is too small for feature matching: each side needs {limits.min_image_side} px",
        )
    return ImageInfo(relative, path, image.format, image.mode, width, height, 1, size_bytes)


def _decode(image: Image.Image) -> None:
    """Decode every byte of pixel data, so truncated or corrupt data is found now."""
    if image.format in ("JPEG", "MPO"):
        image.draft(image.mode, (image.width // JPEG_DRAFT_SCALE, image.height // JPEG_DRAFT_SCALE))
    try:
        image.load()
    except Exception as error:  # noqa: BLE001 - decoders raise OSError, SyntaxError, ValueError, struct.error...
        raise FileSkippedError(Code.UNREADABLE_IMAGE, f"corrupt or truncated image data ({error})") from error


def _orientation(image: Image.Image, relative: str, notes: list[Issue]) -> int:
    """The EXIF orientation (1 to 8) the sfm stage applies; bad metadata is tolerated with a note."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not cost a good photo
        notes.append(Issue(code=Code.BAD_METADATA, path=relative, message="unreadable EXIF metadata, ignored"))
        return 1
    if value not in range(1, 9):
        notes.append(Issue(code=Code.BAD_METADATA, path=relative, message=f"EXIF orientation {value!r} ignored"))
        return 1
    return int(value)
