"""The photos as one archive to upload: checked first by the validator the cloud runs, a folder zipped the same way
every time, so that ``resume`` rebuilds exactly the bytes whose parts S3 already holds."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from spaceport.cloud.client.errors import CloudError

# A fixed date in every entry (zip's earliest) and a fixed mode: the archive's bytes depend on the photos only.
ENTRY_DATE = (1980, 1, 1, 0, 0, 0)
ENTRY_MODE = 0o644 << 16
COPY_BLOCK = 1 << 20
ZIP64_BYTES = (1 << 31) - 1


@dataclass(frozen=True)
class Archive:
    """The archive to upload and what the validator found in it."""

    path: Path
    size: int
    photo_count: int
    warnings: list[str]


class RejectedPhotosError(CloudError):
    """The validator rejects the photos; the cloud would too."""


def prepare_archive(photos: Path, work_dir: Path) -> Archive:
    """Validate ``photos`` (a folder or a .zip) and return the archive to upload: the .zip as given, or the folder's
    usable photos zipped (stored: photos do not compress) into ``work_dir``.

    Raises:
        RejectedPhotosError: the validator's verdict, with every problem.
    """
    from spaceport.validation import validated_input

    with validated_input(photos) as validated:
        report = validated.report
        if not report.accepted:
            problems = "; ".join(f"{issue.path or 'input'}: {issue.message}" for issue in report.problems)
            raise RejectedPhotosError(f"{photos} would be rejected: {problems}")
        warnings = [f"{issue.path or 'input'}: {issue.message}" for issue in report.warnings]
        if photos.is_dir():
            path = work_dir / "photos.zip"
            write_zip(path, sorted((image.relative, image.path) for image in validated.images))
        else:
            path = photos
    return Archive(path, path.stat().st_size, report.images, warnings)


def write_zip(target: Path, members: list[tuple[str, Path]]) -> None:
    """A stored zip of ``members`` (name in the archive, file), byte for byte the same for the same files."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, source in members:
            entry = zipfile.ZipInfo(name, date_time=ENTRY_DATE)
            entry.external_attr = ENTRY_MODE
            # zip64 only where a member needs it: the bytes stay those of a plain zip otherwise.
            large = source.stat().st_size >= ZIP64_BYTES
            with source.open("rb") as reader, archive.open(entry, "w", force_zip64=large) as writer:
                while block := reader.read(COPY_BLOCK):
                    writer.write(block)
