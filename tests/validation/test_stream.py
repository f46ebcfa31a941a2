"""Archives are validated as they are read, member by member, from any seekable reader: nothing is extracted,
and a zip, the same photos as a folder, and the same zip read from elsewhere all get the same verdict."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from spaceport.validation import Code, Limits, validate_archive, validate_path, validated_input

from .validation_corpus import mixed_capture, photos, zip_folder


def verdict(report) -> dict:
    """What must agree between doors: acceptance, the usable images, and every finding's code and path."""
    return {
        "accepted": report.accepted,
        "images": report.image_paths,
        "problems": sorted((issue.code, issue.path) for issue in report.problems),
        "warnings": sorted((issue.code, issue.path) for issue in report.warnings),
    }


class CountingReader(io.RawIOBase):
    """A seekable reader over bytes that counts what is read, standing in for ranged reads of a remote object."""

    def __init__(self, data: bytes) -> None:
        self._data, self._position, self.bytes_read = data, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: len(self._data)}[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer) -> int:
        chunk = self._data[self._position : self._position + len(buffer)]
        buffer[: len(chunk)] = chunk
        self._position += len(chunk)
        self.bytes_read += len(chunk)
        return len(chunk)


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflated", "stored"])
def test_a_zip_and_its_folder_get_the_same_verdict(tmp_path: Path, private_tmp: Path, method: int):
    # GIVEN a realistic capture as a folder, and the same files zipped
    folder = mixed_capture(tmp_path / "capture")
    archive = zip_folder(folder, tmp_path / "capture.zip", method)
    # WHEN both are validated
    from_folder, from_zip = validate_path(folder), validate_path(archive)
    # THEN the verdicts agree: same usable photos, same findings for the same files
    assert from_zip.accepted and from_zip.images == 7
    assert verdict(from_zip) == verdict(from_folder)
    assert (Code.UNREADABLE_IMAGE, "scan/truncated.jpg") in verdict(from_zip)["warnings"]
    assert (Code.DUPLICATE_IMAGES, "scan/img_000.jpg") in verdict(from_zip)["warnings"]
    assert list(private_tmp.iterdir()) == []


def test_an_archive_is_validated_from_a_seekable_reader_without_writing_it_anywhere(tmp_path: Path, private_tmp):
    # GIVEN the capture's zip, held only in memory behind a reader that counts the bytes read
    archive = zip_folder(mixed_capture(tmp_path / "capture"), tmp_path / "capture.zip")
    data = archive.read_bytes()
    reader = CountingReader(data)
    # WHEN it is validated from that reader
    report = validate_archive(reader, len(data), Limits(), name="capture.zip")
    # THEN the verdict is the file's, each member was read about once, and no temporary file was made
    assert report == validate_path(archive)
    assert reader.bytes_read < 1.2 * len(data)
    assert list(private_tmp.iterdir()) == []


def test_each_usable_photo_is_handed_over_once_with_its_bytes(tmp_path: Path):
    # GIVEN the capture's zip
    folder = mixed_capture(tmp_path / "capture")
    archive = zip_folder(folder, tmp_path / "capture.zip")
    handed: dict[str, bytes] = {}

    # WHEN it is validated with a receiver for the usable photos (what the Lambda publishes)
    def receive(image, data) -> None:
        handed.setdefault(image.relative, data.read())

    with archive.open("rb") as handle:
        report = validate_archive(handle, archive.stat().st_size, Limits(), name="capture.zip", on_image=receive)
    # THEN every usable photo, and only those, arrived once, byte for byte, duplicates left out
    assert sorted(handed) == report.image_paths
    for relative, data in handed.items():
        assert data == (folder / relative).read_bytes()


def test_validated_input_of_a_zip_keeps_its_usable_photos_readable(tmp_path: Path, private_tmp: Path):
    # GIVEN a zip of photos (the local run copies the validated photos into its sfm input)
    folder = tmp_path / "capture"
    photos(folder / "scan", 3)
    archive = zip_folder(folder, tmp_path / "capture.zip")
    # WHEN it is validated keeping the images
    with validated_input(archive) as validated:
        copies = {image.relative: image.path.read_bytes() for image in validated.images}
    # THEN each usable photo was readable, byte for byte, and nothing is left behind
    assert copies == {name: (folder / name).read_bytes() for name in validated.report.image_paths}
    assert list(private_tmp.iterdir()) == []


def test_a_member_whose_bytes_do_not_match_its_checksum_rejects_the_archive(tmp_path: Path):
    # GIVEN a stored zip of photos with one byte of one photo changed after zipping
    folder = tmp_path / "capture"
    photos(folder, 4)
    archive = zip_folder(folder, tmp_path / "capture.zip", zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as handle:
        info = handle.getinfo("img_002.jpg")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 5000] ^= 0xFF
    archive.write_bytes(bytes(data))
    # WHEN validated THEN the archive is corrupt (never a silently different photo)
    report = validate_path(archive)
    assert [issue.code for issue in report.problems] == [Code.CORRUPT_ARCHIVE]
