"""Archives: extracted only into a private folder, with every unsafe entry refused before anything is written."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spaceport.validation import Code, Limits, safe_extract_zip, validate_path

from .validation_corpus import snapshot


def photo_bytes(seed: int) -> bytes:
    """A JPEG of noise, in memory, for writing straight into an archive."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def make_zip(path: Path, entries: dict[str, bytes], photos: int = 3) -> Path:
    """A zip of ``photos`` good photos under ``scan/`` plus ``entries``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(photos):
            archive.writestr(f"scan/img_{index}.jpg", photo_bytes(index))
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def patch_zip(path: Path, name: bytes, offset_local: int, offset_central: int, value: bytes) -> None:
    """Overwrite a field of ``name``'s local and central headers, as a hand-crafted hostile archive would."""
    data = bytearray(path.read_bytes())
    for signature, offset, name_at in ((b"PK\x03\x04", offset_local, 30), (b"PK\x01\x02", offset_central, 46)):
        at = data.find(signature)
        while data[at + name_at : at + name_at + len(name)] != name:
            at = data.find(signature, at + 4)
        data[at + offset : at + offset + len(value)] = value
    path.write_bytes(bytes(data))


def test_good_archive_is_extracted_privately_and_removed(tmp_path: Path, private_tmp: Path):
    # GIVEN a zip of three photos
    archive = make_zip(tmp_path / "photos.zip", {})
    before = snapshot(tmp_path)

    # WHEN validated
    report = validate_path(archive)

    # THEN it is accepted with the member names, and nothing is left behind anywhere
    assert report.accepted and report.images == 3
    assert report.image_paths == ["scan/img_0.jpg", "scan/img_1.jpg", "scan/img_2.jpg"]
    assert list(private_tmp.iterdir()) == []
    assert snapshot(tmp_path).keys() == before.keys()


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../evil.jpg", Code.UNSAFE_ARCHIVE),
        ("scan/../../evil.jpg", Code.UNSAFE_ARCHIVE),
        ("/tmp/evil.jpg", Code.UNSAFE_ARCHIVE),
        ("..\\evil.jpg", Code.UNSAFE_ARCHIVE),
        ("C:/evil.jpg", Code.UNSAFE_ARCHIVE),
    ],
)
def test_paths_escaping_the_target_reject_the_archive(tmp_path: Path, private_tmp: Path, name: str, code: Code):
    # GIVEN three photos and one entry whose name escapes the extraction folder
    archive = make_zip(tmp_path / "evil.zip", {name: photo_bytes(9)})

    # WHEN validated
    report = validate_path(archive)

    # THEN the archive is rejected, the entry named, and no evil.jpg exists anywhere near
    assert not report.accepted
    assert [(issue.code, issue.path) for issue in report.problems] == [(code, name)]
    assert not list(tmp_path.rglob("evil.jpg")) and not Path("/tmp/evil.jpg").exists()
    assert list(private_tmp.iterdir()) == []


def test_symlink_entry_rejects_the_archive(tmp_path: Path):
    # GIVEN a zip holding a symlink entry pointing at /etc/passwd
    archive = make_zip(tmp_path / "link.zip", {})
    link = zipfile.ZipInfo("scan/link.jpg")
    link.external_attr = 0o120777 << 16
    with zipfile.ZipFile(archive, "a") as handle:
        handle.writestr(link, "/etc/passwd")

    # WHEN validated
    report = validate_path(archive)

    # THEN it is rejected as unsafe, naming the link
    assert [(issue.code, issue.path) for issue in report.problems] == [(Code.UNSAFE_ARCHIVE, "scan/link.jpg")]


def test_encrypted_entry_rejects_the_archive(tmp_path: Path):
    # GIVEN a zip whose last entry has the encryption flag set
    archive = make_zip(tmp_path / "locked.zip", {"scan/secret.jpg": photo_bytes(8)})
    patch_zip(archive, b"scan/secret.jpg", 6, 8, struct.pack("<H", 0x1))

    # WHEN validated
    report = validate_path(archive)

    # THEN it is rejected as encrypted
    assert not report.accepted
    assert [(issue.code, issue.path) for issue in report.problems] == [(Code.ENCRYPTED_ARCHIVE, "scan/secret.jpg")]


def test_nested_zip_and_junk_are_skipped_with_warnings(tmp_path: Path):
    # GIVEN a zip of photos that also holds a zip of photos, __MACOSX/ resource forks and a .DS_Store
    inner = make_zip(tmp_path / "inner.zip", {}).read_bytes()
    junk = {"__MACOSX/scan/._img_0.jpg": b"\x00\x05\x16\x07", "__MACOSX/._scan": b"x", "scan/.DS_Store": b"Bud1"}
    archive = make_zip(tmp_path / "outer.zip", {"more/inner.zip": inner, **junk})

    # WHEN validated
    report = validate_path(archive)

    # THEN the outer photos are accepted; the inner zip and the junk are named warnings
    assert report.accepted and report.images == 3
    assert [(issue.code, issue.path) for issue in report.warnings] == [
        (Code.NESTED_ARCHIVE, "more/inner.zip"),
        (Code.JUNK_FILE, "__MACOSX/"),
        (Code.JUNK_FILE, "scan/.DS_Store"),
    ]


def test_zip_holding_only_a_zip_is_rejected(tmp_path: Path):
    # GIVEN a zip whose only content is another zip of photos
    inner = make_zip(tmp_path / "inner.zip", {}).read_bytes()
    archive = make_zip(tmp_path / "outer.zip", {"inner.zip": inner}, photos=0)

    # WHEN validated
    report = validate_path(archive)

    # THEN it is rejected for too few images, naming the unopened inner archive
    assert [issue.code for issue in report.problems] == [Code.TOO_FEW_IMAGES, Code.NESTED_ARCHIVE]


def test_expansion_limit_counts_declared_sizes(tmp_path: Path, private_tmp: Path):
    # GIVEN a zip with 20 MB of zeros (honestly declared) and an expansion limit of 8 MB
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(20 << 20)})

    # WHEN validated
    report = validate_path(archive, Limits(max_expanded_bytes=8 << 20))

    # THEN it is refused before extraction
    assert [issue.code for issue in report.problems] == [Code.ARCHIVE_TOO_LARGE]
    assert list(private_tmp.iterdir()) == []


def test_expansion_limit_counts_bytes_written_not_declared(tmp_path: Path, private_tmp: Path):
    # GIVEN a zip bomb whose 20 MB of zeros declares itself as 1 KB
    archive = make_zip(tmp_path / "liar.zip", {"zeros.bin": bytes(20 << 20)})
    patch_zip(archive, b"zeros.bin", 22, 24, struct.pack("<I", 1024))

    # WHEN extracted directly, with an 8 MB limit
    dest = tmp_path / "dest"
    dest.mkdir()
    extraction = safe_extract_zip(archive, dest, Limits(max_expanded_bytes=8 << 20))

    # THEN extraction stops at the limit on bytes really written
    assert [issue.code for issue in extraction.problems] == [Code.ARCHIVE_TOO_LARGE]
    assert sum(path.stat().st_size for path in dest.rglob("*") if path.is_file()) <= 8 << 20


def test_compression_ratio_caps_small_archives(tmp_path: Path):
    # GIVEN 20 MB of zeros compressed ~1000:1, under the 8 GiB expansion limit, and a floor lowered to 1 MB
    archive = tmp_path / "ratio.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("zeros.bin", bytes(20 << 20))
    limits = Limits(expansion_floor_bytes=1 << 20)

    # WHEN validated
    report = validate_path(archive, limits)

    # THEN it is refused as too large: a 20 kB archive may write at most 100 times its size
    assert limits.expansion_cap(archive.stat().st_size) < 20 << 20
    assert [issue.code for issue in report.problems] == [Code.ARCHIVE_TOO_LARGE]


def test_archive_size_limit_and_corrupt_archives(tmp_path: Path):
    # GIVEN a good zip, a text file named .zip, and a truncated zip
    good = make_zip(tmp_path / "good.zip", {})
    fake = tmp_path / "fake.zip"
    fake.write_text("not a zip")
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-100])

    # WHEN validated, the good one with a 1 KB archive limit
    too_large = validate_path(good, Limits(max_archive_bytes=1024))
    reports = [validate_path(fake), validate_path(cut)]

    # THEN the first is too large and the others corrupt
    assert [issue.code for issue in too_large.problems] == [Code.ARCHIVE_TOO_LARGE]
    assert [[issue.code for issue in report.problems] for report in reports] == [[Code.CORRUPT_ARCHIVE]] * 2


def test_zip_is_recognised_by_content(tmp_path: Path):
    # GIVEN a zip of photos named .jpg, and an empty zip
    archive = make_zip(tmp_path / "photos.jpg", {})
    empty = tmp_path / "empty.zip"
    zipfile.ZipFile(empty, "w").close()

    # WHEN validated
    report, empty_report = validate_path(archive), validate_path(empty)

    # THEN the first is opened as the archive it is; the empty one has too few images
    assert report.accepted and report.images == 3
    assert [issue.code for issue in empty_report.problems] == [Code.TOO_FEW_IMAGES]
