"""Validate a folder or .zip of photos: the one validator behind ``spaceport validate``, the sfm stage and the
validate Lambda.

The verdict: accepted when at least ``min_images`` distinct usable images (and no more than ``max_images``)
remain after skipping bad files, and nothing about the input as a whole is unsafe. A skipped file is a warning
when the input is accepted anyway, and a problem when the input is rejected for having too few images, so the
user sees every file that let them down.

A folder is read where it is. An archive is never extracted: its central directory is vetted, then each member
is read into memory (a spooled buffer: only a member larger than ``SPOOL_MEMORY_BYTES`` touches the disk), judged
and dropped, so an archive of any size needs about one photo's worth of memory per worker and no disk.
``validate_archive`` reads from any seekable binary stream (a local file, or ranged reads of an S3 object) and
``validate_files`` from any store of named files (an S3 prefix): the Lambda's doors share this code with the CLI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import zipfile
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from spaceport.contract import file_digest
from spaceport.validation.archive import (
    ArchiveRejectedError,
    Extraction,
    Member,
    archive_members,
    check_archive_size,
    read_member,
)
from spaceport.validation.codes import Code
from spaceport.validation.images import FileResult, ImageInfo, inspect_file, inspect_stream, pillow_guard
from spaceport.validation.limits import MIB, Limits
from spaceport.validation.report import Issue, ValidationReport
from spaceport.validation.sniff import Kind, read_head, sniff
from spaceport.validation.walk import list_folder, list_names

TEMP_PREFIX = "spaceport-validate-"
# Decoding releases the GIL inside Pillow, so a few threads use every core without a process pool.
MAX_WORKERS = 4
# A member or object up to this size is held in memory while it is judged; a larger one (no photo is) spills to
# a temporary file, so memory stays bounded whatever an upload holds.
SPOOL_MEMORY_BYTES = 64 * MIB
# Reasons an archive cannot be read at all (OSError: a seek the archive's own offsets make impossible). A stream
# over a network must raise its own failures as something else, so they are never taken for a verdict on the upload.
_UNREADABLE_ARCHIVE = (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError, OSError)

ImageReceiver = Callable[[ImageInfo, BinaryIO], "Path | None"]
"""Called with each usable image (duplicates left out) and its bytes, positioned at 0, while they are at hand;
what it returns, if anything, is where it kept the image."""


@dataclass
class ValidatedInput:
    """A report plus the usable images, readable while the ``validated_input`` block is open."""

    report: ValidationReport
    images: list[ImageInfo] = field(default_factory=list)


@dataclass
class _Findings:
    """Everything found so far, sorted by how it affects the verdict."""

    problems: list[Issue] = field(default_factory=list)
    skipped: list[Issue] = field(default_factory=list)
    notes: list[Issue] = field(default_factory=list)
    images: list[ImageInfo] = field(default_factory=list)


def validate_path(path: Path, limits: Limits | None = None) -> ValidationReport:
    """Validate a folder or a .zip of photos; nothing is written except a private temporary folder, removed.

    Args:
        path: A folder, or a zip archive (recognised by content, whatever its name).
        limits: Limits to apply; ``Limits.from_env()`` when None.

    Returns:
        The report; never raises for anything the input contains.
    """
    return _validate_local(Path(path), limits, keep_in=None).report


@contextmanager
def validated_input(path: Path, limits: Limits | None = None) -> Iterator[ValidatedInput]:
    """Validate ``path`` and keep its usable images readable for the block (an archive's usable photos copied).

    The local run uses this to copy exactly the images the validator accepted. On leaving the block an
    archive's private temporary folder is removed.
    """
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as scratch:
        yield _validate_local(Path(path), limits, Path(scratch))


def _validate_local(path: Path, limits: Limits | None, keep_in: Path | None) -> ValidatedInput:
    """A folder or an archive on this machine; an archive's usable photos are copied into ``keep_in`` if given."""
    limits = Limits.from_env() if limits is None else limits
    findings = _Findings()
    with pillow_guard(limits):
        kind = _input_kind(path, limits, findings)
        if kind == "folder":
            _check_folder(path.resolve(), limits, findings)
        elif kind == "zip":
            with path.open("rb") as handle:
                _check_archive(handle, path.stat().st_size, limits, findings, _keeper(keep_in), str(path))
        return ValidatedInput(report=_verdict(findings, limits, str(path)), images=findings.images)


def _keeper(folder: Path | None) -> ImageReceiver | None:
    """A receiver that writes each usable photo under ``folder`` by its relative name."""
    if folder is None:
        return None

    def keep(image: ImageInfo, data: BinaryIO) -> Path:
        target = folder.joinpath(*image.relative.split("/"))
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("xb") as sink:
            while chunk := data.read(MIB):
                sink.write(chunk)
        return target

    return keep


def validate_archive(
    stream: BinaryIO,
    archive_bytes: int,
    limits: Limits | None = None,
    *,
    name: str,
    on_image: ImageReceiver | None = None,
) -> ValidationReport:
    """Validate a zip archive read from a seekable binary stream, member by member, without writing it anywhere.

    Args:
        stream: The archive, seekable (a file, or ranged reads of a remote object).
        archive_bytes: Its size.
        limits: Limits to apply; ``Limits.from_env()`` when None.
        name: How the report names the archive as a whole.
        on_image: Receives each usable image and its bytes, once, as it is judged; an image handed over may still
            belong to an input rejected later (too few photos, a corrupt member further on).

    Returns:
        The report, as ``validate_path`` gives it for the same archive as a file. Exceptions of ``stream`` other
        than a corrupt archive's (a failed network read) propagate.
    """
    limits = Limits.from_env() if limits is None else limits
    findings = _Findings()
    with pillow_guard(limits):
        _check_archive(stream, archive_bytes, limits, findings, on_image, name)
    return _verdict(findings, limits, name)


def validate_files(
    files: list[tuple[str, int]],
    read: Callable[[str], BinaryIO],
    limits: Limits | None = None,
    *,
    name: str,
    on_image: ImageReceiver | None = None,
) -> ValidationReport:
    """Validate a folder held elsewhere (an object store's prefix) as ``validate_path`` validates it on disk.

    Args:
        files: Every file as (path relative to the folder, with ``/``; size in bytes).
        read: Returns a file's bytes as a readable stream (``new_buffer`` holds them without filling the disk);
            its exceptions propagate.
        limits: Limits to apply; ``Limits.from_env()`` when None.
        name: How the report names the folder as a whole.
        on_image: As for ``validate_archive``.
    """
    limits = Limits.from_env() if limits is None else limits
    findings = _Findings()
    listing = list_names([relative for relative, _ in files], limits)
    findings.notes += listing.notes
    if listing.problem is not None:
        findings.problems.append(listing.problem)
        return _verdict(findings, limits, name)
    sizes = dict(files)
    candidates = [_Candidate(name, sizes[name], lambda name=name: read(name)) for name in listing.names]
    with pillow_guard(limits):
        _inspect_stream(candidates, limits, findings, on_image)
    return _verdict(findings, limits, name)


def new_buffer() -> BinaryIO:
    """Somewhere to hold one file's bytes: memory, spilling to a temporary file past ``SPOOL_MEMORY_BYTES``."""
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES, prefix=TEMP_PREFIX)  # type: ignore[return-value]


def _input_kind(path: Path, limits: Limits, findings: _Findings) -> Literal["folder", "zip"] | None:
    """What ``path`` is as an input; None (with the problem noted) when it is neither a folder nor an archive."""
    shown = str(path)
    if not os.path.lexists(path) or (path.is_symlink() and not path.exists()):
        findings.problems.append(Issue(code=Code.NOT_FOUND, path=shown, message="no such file or folder"))
        return None
    if path.is_dir():
        return "folder"
    if not path.is_file():
        findings.problems.append(Issue(code=Code.UNSUPPORTED_FILE, path=shown, message="not a file or folder"))
        return None
    kind = sniff(read_head(path))
    if kind is Kind.ZIP:
        return "zip"
    if path.suffix.lower() == ".zip":
        findings.problems.append(Issue(code=Code.CORRUPT_ARCHIVE, path=shown, message="not a valid zip archive"))
    else:
        findings.problems.append(_single_file_problem(path, kind, limits))
    return None


def _single_file_problem(path: Path, kind: Kind, limits: Limits) -> Issue:
    """Explain why one file is not an input: say what it is, and what to give instead.

    One photo is judged like a folder holding only that photo (too few images), so every door reports the same
    code for the same photos; anything else given alone is an unsupported file.
    """
    expected = f"expected a folder or a .zip of {limits.min_images} or more photos"
    result = inspect_file(path.name, path, limits)
    if result.image is not None:
        # With a minimum of one photo, the photo would be enough: only its packaging is wrong.
        code = Code.TOO_FEW_IMAGES if limits.min_images > 1 else Code.UNSUPPORTED_FILE
        return Issue(code=code, path=str(path), message=f"{expected}, got a single photo ({result.image.format})")
    what = result.skip.message if result.skip is not None else "one file"
    if kind is Kind.VIDEO:
        what = "a video; extract still frames from it into a folder, for example ffmpeg -i VIDEO -r 2 frame_%04d.jpg"
    return Issue(code=Code.UNSUPPORTED_FILE, path=str(path), message=f"{expected}, got a single file ({what})")


def _check_folder(root: Path, limits: Limits, findings: _Findings) -> None:
    listing = list_folder(root, limits)
    findings.skipped += listing.skipped
    findings.notes += listing.notes
    if listing.problem is not None:
        findings.problems.append(listing.problem)
        return
    results = _inspect_all(listing.candidates, limits)
    for result in results:
        findings.notes += result.notes
        if result.skip is not None:
            findings.skipped.append(result.skip)
        elif result.image is not None:
            findings.images.append(result.image)
    findings.images = _drop_duplicates(findings.images, findings.skipped)


@dataclass(frozen=True)
class _Candidate:
    """A file to judge from a stream: its relative name, its size, and how to get its bytes."""

    relative: str
    size: int
    read: Callable[[], BinaryIO]


def _check_archive(
    stream: BinaryIO,
    archive_bytes: int,
    limits: Limits,
    findings: _Findings,
    on_image: ImageReceiver | None,
    shown: str,
) -> None:
    """Vet the archive's entries, then judge its members one by one as they are read."""
    entries = Extraction()
    try:
        check_archive_size(archive_bytes, limits)
        with zipfile.ZipFile(stream) as archive:
            try:
                members = archive_members(archive, archive_bytes, limits, entries)
            finally:
                findings.notes += entries.warnings  # junk met before an unsafe entry is still reported
            budget = [limits.expansion_cap(archive_bytes)]

            def reader(member: Member) -> Callable[[], BinaryIO]:
                # Members are read one after another, so what is left of the expansion budget is shared state.
                def read() -> BinaryIO:
                    buffer = new_buffer()
                    budget[0] -= read_member(archive, member, budget[0], buffer)
                    return buffer

                return read

            ordered = sorted(members, key=lambda member: member.relative)
            candidates = [_Candidate(m.relative, m.info.file_size, reader(m)) for m in ordered]
            _inspect_stream(candidates, limits, findings, on_image)
    except ArchiveRejectedError as rejected:
        _reject_archive(findings, rejected.issue, shown)
    except _UNREADABLE_ARCHIVE as error:
        unreadable = Issue(code=Code.CORRUPT_ARCHIVE, path="", message=f"the archive cannot be read: {error}")
        _reject_archive(findings, unreadable, shown)


def _reject_archive(findings: _Findings, issue: Issue, shown: str) -> None:
    """An archive-wide problem ends the check: what was judged of its members so far no longer counts."""
    # Archive-wide problems carry no member name: name the archive itself.
    findings.problems.append(issue.model_copy(update={"path": issue.path or shown}))
    findings.images, findings.skipped = [], []
    findings.notes = [note for note in findings.notes if note.code is Code.JUNK_FILE]


def _inspect_stream(
    candidates: list[_Candidate], limits: Limits, findings: _Findings, on_image: ImageReceiver | None
) -> None:
    """Read each candidate in turn, judge it on a worker, and settle the results in name order.

    At most ``workers`` files are held at once: each is read while the ones before it are decoded. Duplicates are
    reported after every other skipped file, as the folder check reports them.
    """
    dedupe = _Dedupe(Counter(candidate.size for candidate in candidates))
    workers = max(1, min(MAX_WORKERS, os.cpu_count() or 1, len(candidates)))
    pending: deque[tuple[_Candidate, BinaryIO, Future[FileResult]]] = deque()

    def settle() -> None:
        candidate, data, judged = pending.popleft()
        with data:
            _settle(candidate, data, judged.result(), dedupe, findings, on_image)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            for candidate in candidates:
                data = candidate.read()
                pending.append((candidate, data, pool.submit(_judge, candidate, data, limits)))
                if len(pending) >= workers:
                    settle()
            while pending:
                settle()
        finally:
            # Stopped early (a rejected archive, a failed read): let running judgements end before their bytes go.
            for _, data, judged in pending:
                if not judged.cancel():
                    judged.exception()
                data.close()
    findings.skipped += dedupe.duplicates


@dataclass
class _Dedupe:
    """Byte-identical usable images seen so far: only files of equal size can be identical, so only those are hashed."""

    sizes: Counter[int]
    first_by_digest: dict[str, ImageInfo] = field(default_factory=dict)
    duplicates: list[Issue] = field(default_factory=list)

    def is_duplicate(self, image: ImageInfo, size: int, data: BinaryIO) -> bool:
        if self.sizes[size] < 2:
            return False
        data.seek(0)
        digest = hashlib.file_digest(data, "sha256").hexdigest()  # type: ignore[arg-type]
        original = self.first_by_digest.setdefault(digest, image)
        if original is image:
            return False
        self.duplicates.append(
            Issue(code=Code.DUPLICATE_IMAGES, path=image.relative, message=f"identical to {original.relative}")
        )
        return True


def _judge(candidate: _Candidate, data: BinaryIO, limits: Limits) -> FileResult:
    return inspect_stream(candidate.relative, data, candidate.size, limits)


def _settle(
    candidate: _Candidate,
    data: BinaryIO,
    result: FileResult,
    dedupe: _Dedupe,
    findings: _Findings,
    on_image: ImageReceiver | None,
) -> None:
    """Record one judged file; a usable image identical to an earlier one is skipped, the rest handed over."""
    findings.notes += result.notes
    if result.skip is not None:
        findings.skipped.append(result.skip)
        return
    image = result.image
    if image is None or dedupe.is_duplicate(image, candidate.size, data):
        return
    if on_image is not None:
        data.seek(0)
        kept_at = on_image(image, data)
        if kept_at is not None:
            image = dataclasses.replace(image, path=kept_at)
    findings.images.append(image)


def _inspect_all(candidates: list[tuple[str, Path]], limits: Limits) -> list[FileResult]:
    workers = max(1, min(MAX_WORKERS, os.cpu_count() or 1, len(candidates)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda candidate: inspect_file(*candidate, limits), candidates))


def _drop_duplicates(images: list[ImageInfo], skipped: list[Issue]) -> list[ImageInfo]:
    """Keep the first of each set of byte-identical images: copies add no parallax.

    Only images of equal size can be identical, so only those are hashed: thousands of photos cost a stat each.
    """
    by_size: dict[int, list[ImageInfo]] = defaultdict(list)
    for image in images:
        by_size[image.size_bytes].append(image)
    first_by_digest: dict[str, ImageInfo] = {}
    kept = []
    for image in images:
        if len(by_size[image.size_bytes]) > 1:
            assert image.path is not None  # a folder's images are read where they are
            digest = file_digest(image.path)
            original = first_by_digest.setdefault(digest, image)
            if original is not image:
                skipped.append(
                    Issue(code=Code.DUPLICATE_IMAGES, path=image.relative, message=f"identical to {original.relative}")
                )
                continue
        kept.append(image)
    return kept


def _verdict(findings: _Findings, limits: Limits, shown: str) -> ValidationReport:
    problems = list(findings.problems)
    count = len(findings.images)
    warnings = list(findings.notes)
    if not problems and count < limits.min_images:
        problems.append(Issue(code=Code.TOO_FEW_IMAGES, path=shown, message=_too_few_message(findings, limits)))
        # The skipped files are why there are too few: they belong with the reasons for the rejection.
        problems += findings.skipped
    else:
        warnings = findings.skipped + warnings
    if not problems and count > limits.max_images:
        problems.append(
            Issue(code=Code.TOO_MANY_IMAGES, path=shown, message=f"{count} images; the limit is {limits.max_images}")
        )
    accepted = not problems
    return ValidationReport(
        accepted=accepted,
        images=count if accepted or not findings.problems else 0,
        problems=problems,
        warnings=warnings,
        image_paths=[image.relative for image in findings.images],
    )


def _too_few_message(findings: _Findings, limits: Limits) -> str:
    count = len(findings.images)
    duplicates = sum(issue.code is Code.DUPLICATE_IMAGES for issue in findings.skipped)
    message = f"{count} usable image(s); at least {limits.min_images} photos from different positions are needed"
    if duplicates:
        message += f" ({duplicates} identical copies add no parallax)"
    elif findings.skipped:
        message += f" ({len(findings.skipped)} file(s) skipped, see the other problems)"
    elif count == 0 and not findings.notes:
        message += " (the input is empty)"
    return message
