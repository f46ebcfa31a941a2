"""Validate a folder or .zip of photos: the one validator behind ``spaceport validate``, the sfm stage and the
validate Lambda.

The verdict: accepted when at least ``min_images`` distinct usable images (and no more than ``max_images``)
remain after skipping bad files, and nothing about the input as a whole is unsafe. A skipped file is a warning
when the input is accepted anyway, and a problem when the input is rejected for having too few images, so the
user sees every file that let them down.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from spaceport.contract import file_digest
from spaceport.validation.archive import safe_extract_zip
from spaceport.validation.codes import Code
from spaceport.validation.images import FileResult, ImageInfo, inspect_file, pillow_guard
from spaceport.validation.limits import Limits
from spaceport.validation.report import Issue, ValidationReport
from spaceport.validation.sniff import Kind, read_head, sniff
from spaceport.validation.walk import list_folder

TEMP_PREFIX = "spaceport-validate-"
# Decoding releases the GIL inside Pillow, so a few threads use every core without a process pool.
MAX_WORKERS = 4


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
    with validated_input(path, limits) as validated:
        return validated.report


@contextmanager
def validated_input(path: Path, limits: Limits | None = None) -> Iterator[ValidatedInput]:
    """Validate ``path`` and keep its usable images readable for the block (an archive's extracted copy).

    The sfm stage uses this to read exactly the images the validator accepted. On leaving the block an
    archive's private temporary folder is removed.
    """
    limits = Limits.from_env() if limits is None else limits
    findings = _Findings()
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as scratch, pillow_guard(limits):
        root = _input_root(Path(path), Path(scratch), limits, findings)
        if root is not None and not findings.problems:
            _check_folder(root, limits, findings)
        yield ValidatedInput(report=_verdict(findings, limits, str(path)), images=findings.images)


def _input_root(path: Path, scratch: Path, limits: Limits, findings: _Findings) -> Path | None:
    """The folder to walk: ``path`` itself, or the archive extracted into ``scratch``; None when neither."""
    shown = str(path)
    if not os.path.lexists(path) or (path.is_symlink() and not path.exists()):
        findings.problems.append(Issue(code=Code.NOT_FOUND, path=shown, message="no such file or folder"))
        return None
    if path.is_dir():
        return path.resolve()
    if not path.is_file():
        findings.problems.append(Issue(code=Code.UNSUPPORTED_FILE, path=shown, message="not a file or folder"))
        return None
    kind = sniff(read_head(path))
    if kind is Kind.ZIP:
        extraction = safe_extract_zip(path, scratch, limits)
        # Archive-wide problems carry no member name: name the archive itself.
        findings.problems += [
            problem.model_copy(update={"path": problem.path or shown}) for problem in extraction.problems
        ]
        findings.notes += extraction.warnings
        return scratch.resolve()
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
