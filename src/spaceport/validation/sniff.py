"""Recognise a file by its first bytes, because the extension a user gives a file proves nothing."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

# Bytes read from the start of a file: enough for every signature below (tar's "ustar" sits at offset 257).
SNIFF_BYTES = 512

# ISO base media files share the "ftyp" box; its brand tells a HEIF/AVIF still from an MP4/MOV video.
HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}
# Old QuickTime files start with a bare atom instead of "ftyp".
QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
ARCHIVE_MAGIC = (
    b"PK\x03\x04",  # zip
    b"PK\x05\x06",  # empty zip
    b"PK\x07\x08",  # spanned zip
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\x1f\x8b",  # gzip
    b"BZh",
    b"\xfd7zXZ\x00",
)
VIDEO_MAGIC = (
    b"\x1a\x45\xdf\xa3",  # Matroska / WebM
    b"\x00\x00\x01\xba",  # MPEG program stream
    b"\x00\x00\x01\xb3",  # MPEG-1/2 video
    b"FLV",
)


class Kind(Enum):
    """What a file's signature says it is, as far as the validator cares."""

    ZIP = "zip"
    ARCHIVE = "archive"
    VIDEO = "video"
    HEIF = "heif"
    OTHER = "other"


def sniff(head: bytes) -> Kind:
    """Classify a file from its first ``SNIFF_BYTES`` bytes; ``OTHER`` means "let Pillow decide"."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return Kind.ZIP
    if head.startswith(ARCHIVE_MAGIC) or head[257:262] == b"ustar":
        return Kind.ARCHIVE
    if head[4:8] == b"ftyp":
        return Kind.HEIF if head[8:12] in HEIF_BRANDS else Kind.VIDEO
    if head[4:8] in QUICKTIME_ATOMS or head.startswith(VIDEO_MAGIC):
        return Kind.VIDEO
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return Kind.VIDEO
    # MPEG transport streams: a sync byte every 188 bytes.
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return Kind.VIDEO
    return Kind.OTHER


def read_head(path: Path) -> bytes:
    """The first ``SNIFF_BYTES`` bytes of a file."""
    with path.open("rb") as handle:
        return handle.read(SNIFF_BYTES)
