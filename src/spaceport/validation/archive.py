"""Reading an uploaded .zip safely: its entries vetted from the central directory, each member read with the
expansion limit enforced on the bytes it really produces.

Nothing in an archive is trusted: every name is checked before a byte is read, and the size limit is
enforced on the bytes actually decompressed, not on the sizes the archive declares (which a zip bomb lies about).
Only stored and deflated entries are read: bzip2 and LZMA decompress without an output bound in
``zipfile``, so one small read could expand to gigabytes in memory. The validator reads members straight into
memory (``read_member``); ``safe_extract_zip`` writes them into a private folder with the same checks.
"""

from __future__ import annotations

import copy
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from spaceport.validation.codes import Code
from spaceport.validation.limits import Limits
from spaceport.validation.report import Issue

CHUNK_BYTES = 1 << 20
SUPPORTED_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
# Bit 0: traditional PKWARE encryption; bit 6: strong encryption.
ENCRYPTED_FLAGS = 0x1 | 0x40
JUNK_FOLDERS = {"__MACOSX", ".Trashes", ".Spotlight-V100", ".fseventsd", "$RECYCLE.BIN"}
JUNK_FILES = {".DS_Store", "Thumbs.db", "ehthumbs.db", "desktop.ini", "Icon\r", ".localized"}
# The longest file or folder name most file systems (ext4, APFS, NTFS) store, in bytes: the sfm stage writes
# the accepted photos to disk under their names.
MAX_NAME_BYTES = 255


class ArchiveRejectedError(Exception):
    """The archive cannot be extracted safely; ``issue`` says why."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


@dataclass
class Extraction:
    """What ``safe_extract_zip`` did: ``problems`` reject the archive, ``warnings`` are entries it skipped."""

    problems: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    files_written: int = 0
    bytes_written: int = 0


@dataclass(frozen=True)
class Member:
    """An archive entry worth inspecting: its zip record and its safe path parts."""

    info: zipfile.ZipInfo
    parts: tuple[str, ...]

    @property
    def relative(self) -> str:
        """The member's path relative to the archive, as a folder of the same files would name it."""
        return "/".join(self.parts)


def is_junk(parts: tuple[str, ...]) -> bool:
    """Operating-system litter (Finder, Explorer) that is never a photo."""
    name = parts[-1]
    return any(part in JUNK_FOLDERS for part in parts[:-1]) or name in JUNK_FILES or name.startswith("._")


def check_archive_size(archive_bytes: int, limits: Limits) -> None:
    """Refuse an archive larger than the limit before any of it is read."""
    if archive_bytes > limits.max_archive_bytes:
        raise ArchiveRejectedError(
            _issue(
                Code.ARCHIVE_TOO_LARGE,
                "",
                f"the archive is {archive_bytes} bytes; the limit is {limits.max_archive_bytes}",
            )
        )


def archive_members(archive: zipfile.ZipFile, archive_bytes: int, limits: Limits, result: Extraction) -> list[Member]:
    """Vet every entry from the central directory, before a byte of data is read: the members to inspect.

    Raises:
        ArchiveRejectedError: an entry is unsafe, encrypted, of an unsupported method, or the archive admits to
            expanding past the limit. Junk entries are skipped with a warning in ``result``.
    """
    members = _check_entries(archive.infolist(), limits, result)
    _check_declared_size(members, limits.expansion_cap(archive_bytes))
    return members


def read_member(archive: zipfile.ZipFile, member: Member, budget: int, sink: BinaryIO) -> int:
    """Decompress one member into ``sink``, counting the bytes it really produces; returns that count.

    Raises:
        ArchiveRejectedError: the member expands past ``budget`` bytes, or holds another size than it declares.
        zipfile.BadZipFile: its data does not match its CRC (a corrupt archive).
    """
    return _copy_capped(archive, member.info, sink, budget)


def safe_extract_zip(zip_path: Path, dest: Path, limits: Limits) -> Extraction:
    """Extract ``zip_path`` into ``dest``, a private, empty folder the caller removes afterwards.

    The whole archive is refused (nothing, or only part, written; ``problems`` set) when a name escapes
    ``dest`` (``..``, absolute, a drive letter), an entry is a symlink or device, an entry is encrypted or
    compressed with an unsupported method, the archive or its expansion exceeds the limits, or it is corrupt.
    Junk (``__MACOSX/``, ``.DS_Store``, ...) is skipped with a warning. Nested archives are written as files;
    the caller skips them.

    Args:
        zip_path: The archive.
        dest: An existing empty folder; only it is written to.
        limits: ``max_archive_bytes``, ``max_expanded_bytes``, ``max_compression_ratio``, ``max_files``.

    Returns:
        The problems and warnings found, and what was written.
    """
    result = Extraction()
    try:
        archive_bytes = zip_path.stat().st_size
        check_archive_size(archive_bytes, limits)
        with zipfile.ZipFile(zip_path) as archive:
            members = archive_members(archive, archive_bytes, limits, result)
            _extract_entries(archive, members, dest.resolve(), limits.expansion_cap(archive_bytes), result)
    except ArchiveRejectedError as rejected:
        result.problems.append(rejected.issue)
    except (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, OSError) as error:
        result.problems.append(_issue(Code.CORRUPT_ARCHIVE, "", f"the archive cannot be read: {error}"))
    return result


def _issue(code: Code, path: str, message: str) -> Issue:
    return Issue(code=code, path=path, message=message)


def _member_parts(name: str) -> tuple[str, ...]:
    """The path components of a member name, refusing any that would land outside the destination."""
    # Some Windows tools write backslashes; treat them as separators so "..\\x" cannot slip through.
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise ArchiveRejectedError(_issue(Code.UNSAFE_ARCHIVE, name, "an absolute path in the archive"))
    parts = tuple(part for part in PurePosixPath(normalised).parts if part not in ("", "."))
    if ".." in parts:
        raise ArchiveRejectedError(_issue(Code.UNSAFE_ARCHIVE, name, "a path that escapes the archive's folder"))
    if any("\x00" in part for part in parts):
        raise ArchiveRejectedError(_issue(Code.UNSAFE_ARCHIVE, name, "a NUL byte in a file name"))
    if any(len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in parts):
        raise ArchiveRejectedError(
            _issue(Code.UNSAFE_ARCHIVE, name, f"a file or folder name longer than {MAX_NAME_BYTES} bytes")
        )
    return parts


def _check_entries(infos: list[zipfile.ZipInfo], limits: Limits, result: Extraction) -> list[Member]:
    """Vet every entry before anything is read; return the ones to inspect with their path parts."""
    if len(infos) > limits.max_files:
        raise ArchiveRejectedError(
            _issue(Code.ARCHIVE_TOO_LARGE, "", f"the archive has {len(infos)} entries; the limit is {limits.max_files}")
        )
    entries: list[Member] = []
    seen: dict[str, str] = {}
    folders: set[str] = set()
    junk_folders: set[str] = set()
    for info in infos:
        parts = _member_parts(info.filename)
        folders.update("/".join(parts[:depth]).casefold() for depth in range(1, len(parts)))
        mode = info.external_attr >> 16
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file (device, pipe or socket)"
            raise ArchiveRejectedError(_issue(Code.UNSAFE_ARCHIVE, info.filename, f"{kind} in the archive"))
        if info.flag_bits & ENCRYPTED_FLAGS:
            raise ArchiveRejectedError(
                _issue(Code.ENCRYPTED_ARCHIVE, info.filename, "password-protected: zip the photos without a password")
            )
        if not parts or info.is_dir():
            if parts:
                folders.add("/".join(parts).casefold())
            continue
        if info.compress_type not in SUPPORTED_METHODS:
            raise ArchiveRejectedError(
                _issue(
                    Code.CORRUPT_ARCHIVE,
                    info.filename,
                    f"compression method {info.compress_type} is not supported: use the ordinary (deflate) zip format",
                )
            )
        key = "/".join(parts).casefold()
        if key in seen:
            raise ArchiveRejectedError(_issue(Code.UNSAFE_ARCHIVE, info.filename, "the same path appears twice"))
        seen[key] = info.filename
        if is_junk(parts):
            _note_junk(parts, info.filename, junk_folders, result)
            continue
        entries.append(Member(info, parts))
    # A file and a folder of the same name cannot both be written out (the sfm stage writes the photos to disk).
    clashes = sorted(folders & set(seen))
    if clashes:
        raise ArchiveRejectedError(
            _issue(Code.UNSAFE_ARCHIVE, seen[clashes[0]], "a file and a folder have the same path")
        )
    return entries


def _note_junk(parts: tuple[str, ...], name: str, junk_folders: set[str], result: Extraction) -> None:
    """One warning per junk folder (``__MACOSX/`` holds one file per photo) and per junk file."""
    folder = next((part for part in parts[:-1] if part in JUNK_FOLDERS), None)
    if folder is None:
        result.warnings.append(_issue(Code.JUNK_FILE, name, "operating-system metadata, skipped"))
    elif folder not in junk_folders:
        junk_folders.add(folder)
        prefix = "/".join(parts[: parts.index(folder) + 1])
        result.warnings.append(_issue(Code.JUNK_FILE, prefix + "/", "operating-system metadata folder, skipped"))


def _check_declared_size(entries: list[Member], cap: int) -> None:
    """Refuse early, before reading, when the archive itself admits it is too large."""
    declared = sum(member.info.file_size for member in entries)
    if declared > cap:
        raise ArchiveRejectedError(
            _issue(Code.ARCHIVE_TOO_LARGE, "", f"the archive expands to {declared} bytes; the limit is {cap}")
        )


def _extract_entries(
    archive: zipfile.ZipFile,
    entries: list[Member],
    dest: Path,
    cap: int,
    result: Extraction,
) -> None:
    for member in entries:
        target = dest.joinpath(*member.parts)
        # Belt and braces: _member_parts already refused "..", but the final path must still sit under dest.
        if not target.resolve().is_relative_to(dest):
            raise ArchiveRejectedError(
                _issue(Code.UNSAFE_ARCHIVE, member.info.filename, "a path that escapes the archive")
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as sink:
            written = _copy_capped(archive, member.info, sink, cap - result.bytes_written)
        result.bytes_written += written
        result.files_written += 1


def _copy_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, sink: BinaryIO, budget: int) -> int:
    """Stream one entry to ``sink``, counting the bytes really produced, and stop past ``budget``."""
    # zipfile stops reading at the declared size; a copy of the entry that declares more than the budget makes it
    # decompress as far as the data really goes, so a lying size is measured rather than believed. The extra
    # chunk keeps zipfile from reaching that size (and checking the CRC) in the read that crosses the budget.
    probe = copy.copy(info)
    probe.file_size = budget + CHUNK_BYTES + 1
    written = 0
    with archive.open(probe) as source:
        while chunk := source.read(CHUNK_BYTES):
            written += len(chunk)
            if written > budget:
                raise ArchiveRejectedError(
                    _issue(Code.ARCHIVE_TOO_LARGE, info.filename, "the archive expands past its size limit")
                )
            sink.write(chunk)
    if written != info.file_size:
        raise ArchiveRejectedError(
            _issue(Code.UNSAFE_ARCHIVE, info.filename, f"declares {info.file_size} bytes but holds {written}")
        )
    return written
