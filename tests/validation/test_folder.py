"""Input-level checks on folders: missing, single file, empty, counts, names, duplicates, links."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from spaceport.validation import Code, Limits, validate_path

from .validation_corpus import photo, photos, snapshot


def codes(issues) -> list[str]:
    return [issue.code for issue in issues]


def test_missing_path_is_not_found(tmp_path: Path):
    # GIVEN a path that does not exist
    missing = tmp_path / "nope"

    # WHEN validated
    report = validate_path(missing)

    # THEN it is rejected with NOT_FOUND naming the path
    assert not report.accepted and report.images == 0
    assert codes(report.problems) == [Code.NOT_FOUND] and report.problems[0].path == str(missing)


@pytest.mark.parametrize(
    ("min_images", "code"), [(3, Code.TOO_FEW_IMAGES), (5, Code.TOO_FEW_IMAGES), (1, Code.UNSUPPORTED_FILE)]
)
def test_single_photo_says_what_input_is_expected(tmp_path: Path, min_images: int, code: Code):
    # GIVEN one photo given directly, where a folder or a .zip of photos is expected
    single = photo(tmp_path / "photo.jpg")

    # WHEN validated with a minimum of 3 (the default), 5 or 1 photos
    report = validate_path(single, Limits(min_images=min_images))

    # THEN it is rejected as too few photos, like a folder holding only that photo (still unsupported when one
    # photo would be enough: the input must be a folder or a .zip), and the message says what to give instead
    assert not report.accepted and report.images == 0
    assert codes(report.problems) == [code] and report.problems[0].path == str(single)
    message = report.problems[0].message
    assert f"a folder or a .zip of {min_images} or more photos" in message and "single photo" in message


def test_single_video_is_told_to_extract_frames(tmp_path: Path):
    # GIVEN one video given directly
    single = tmp_path / "clip.mov"
    single.write_bytes(b"\x00\x00\x00\x14ftypqt  " + bytes(100))

    # WHEN validated
    report = validate_path(single)

    # THEN it is rejected as an unsupported file, saying what is expected and to extract still frames
    assert not report.accepted
    assert codes(report.problems) == [Code.UNSUPPORTED_FILE]
    assert "a folder or a .zip of 3 or more photos" in report.problems[0].message
    assert "frames" in report.problems[0].message


def test_empty_folder_has_too_few_images(tmp_path: Path):
    # GIVEN an empty folder
    # WHEN validated
    report = validate_path(tmp_path)

    # THEN it is rejected with TOO_FEW_IMAGES, saying it is empty
    assert not report.accepted and report.images == 0
    assert codes(report.problems) == [Code.TOO_FEW_IMAGES] and "empty" in report.problems[0].message


def test_only_other_files_are_each_named(tmp_path: Path):
    # GIVEN a folder of documents and no images
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "data.json").write_text("{}")

    # WHEN validated
    report = validate_path(tmp_path)

    # THEN it is rejected, and each document is named as unsupported
    assert not report.accepted and report.images == 0
    assert codes(report.problems) == [Code.TOO_FEW_IMAGES, Code.UNSUPPORTED_FILE, Code.UNSUPPORTED_FILE]
    assert {issue.path for issue in report.problems[1:]} == {"notes.txt", "data.json"}


def test_minimum_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # GIVEN five photos
    photos(tmp_path, 5)

    # WHEN validated with the default minimum, a minimum of six, and a minimum of six from the environment
    default = validate_path(tmp_path)
    stricter = validate_path(tmp_path, Limits(min_images=6))
    monkeypatch.setenv("SPACEPORT_MIN_IMAGES", "6")
    from_env = validate_path(tmp_path)

    # THEN five are enough by default but not for six, however it is set
    assert default.accepted and default.images == 5
    assert codes(stricter.problems) == [Code.TOO_FEW_IMAGES] and codes(from_env.problems) == [Code.TOO_FEW_IMAGES]


def test_too_many_images_is_rejected(tmp_path: Path):
    # GIVEN four photos and a limit of three
    photos(tmp_path, 4)

    # WHEN validated
    report = validate_path(tmp_path, Limits(max_images=3))

    # THEN it is rejected with TOO_MANY_IMAGES
    assert not report.accepted and codes(report.problems) == [Code.TOO_MANY_IMAGES]


def test_names_nesting_and_case_do_not_matter(tmp_path: Path):
    # GIVEN photos with upper-case extensions, spaces and non-ASCII names, in nested folders
    photo(tmp_path / "IMG 0001.JPG", seed=1)
    photo(tmp_path / "día uno" / "фото 2.JPEG", seed=2)
    photo(tmp_path / "a" / "b" / "c" / "写真 3.PNG", seed=3)
    photo(tmp_path / "a" / "scan 4.TIF", seed=4)

    # WHEN validated
    report = validate_path(tmp_path)

    # THEN all four are usable, listed by relative path
    assert report.accepted and report.images == 4 and not report.warnings
    assert report.image_paths == ["IMG 0001.JPG", "a/b/c/写真 3.PNG", "a/scan 4.TIF", "día uno/фото 2.JPEG"]


def test_copies_are_skipped_and_all_copies_means_no_parallax(tmp_path: Path):
    # GIVEN one folder with three photos plus a copy, and another holding one photo four times
    varied, same = tmp_path / "varied", tmp_path / "same"
    photos(varied, 3)
    (varied / "copy.jpg").write_bytes((varied / "img_001.jpg").read_bytes())
    for index in range(4):
        photo(same / f"view_{index}.jpg", seed=42)

    # WHEN both are validated
    varied_report, same_report = validate_path(varied), validate_path(same)

    # THEN the copy is a warning in the first, and the second is rejected: one view has no parallax
    assert varied_report.accepted and varied_report.images == 3
    assert [(issue.code, issue.path) for issue in varied_report.warnings] == [(Code.DUPLICATE_IMAGES, "img_001.jpg")]
    assert not same_report.accepted and same_report.images == 1
    assert codes(same_report.problems) == [Code.TOO_FEW_IMAGES] + [Code.DUPLICATE_IMAGES] * 3
    assert "parallax" in same_report.problems[0].message


def test_links_never_lead_outside_the_folder(tmp_path: Path):
    # GIVEN a folder of three photos with links: to a photo outside, to a folder of photos outside, to nothing,
    # and to one of its own photos
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    photos(inside, 3)
    photos(outside, 3, start=10)
    (inside / "escape.jpg").symlink_to(outside / "img_010.jpg")
    (inside / "escape_dir").symlink_to(outside, target_is_directory=True)
    (inside / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    (inside / "alias.jpg").symlink_to(inside / "img_000.jpg")

    # WHEN validated
    report = validate_path(inside)

    # THEN only the three photos inside count; each link is named, the outside ones unread
    assert report.accepted and report.images == 3
    assert {(issue.path, issue.code) for issue in report.warnings} == {
        ("escape.jpg", Code.SYMLINK_OUTSIDE),
        ("dangling.jpg", Code.SYMLINK_OUTSIDE),
        ("escape_dir", Code.SYMLINK_SKIPPED),
        ("img_000.jpg", Code.DUPLICATE_IMAGES),
    }


def test_junk_and_special_files_are_tolerated(tmp_path: Path):
    # GIVEN photos beside Finder litter and a named pipe (which must not block the validator)
    photos(tmp_path, 3)
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "._img_000.jpg").write_bytes(b"\x00\x05\x16\x07")
    os.mkfifo(tmp_path / "pipe.jpg")

    # WHEN validated
    report = validate_path(tmp_path)

    # THEN the photos are accepted; litter is a JUNK_FILE warning and the pipe unsupported
    assert report.accepted and report.images == 3
    assert {(issue.path, issue.code) for issue in report.warnings} == {
        (".DS_Store", Code.JUNK_FILE),
        ("__MACOSX/", Code.JUNK_FILE),
        ("pipe.jpg", Code.UNSUPPORTED_FILE),
    }


def test_folder_is_only_read(tmp_path: Path, private_tmp: Path):
    # GIVEN a folder with good and bad files
    folder = tmp_path / "in"
    photos(folder, 3)
    (folder / "bad.jpg").write_text("x")
    before = snapshot(folder)

    # WHEN validated
    validate_path(folder)

    # THEN the folder is unchanged, and the private temporary folder is gone
    assert snapshot(folder) == before
    assert list(private_tmp.iterdir()) == []


def test_thousands_of_files_finish_quickly(tmp_path: Path):
    # GIVEN 1500 copies of three photos (a JFIF version byte varied, to keep setup fast) and 200 distinct photos
    template = photo(tmp_path / "template.jpg", size=(96, 72)).read_bytes()
    folder = tmp_path / "many"
    folder.mkdir()
    version = template.index(b"JFIF") + 5
    for index in range(1500):
        (folder / f"f{index:04d}.jpg").write_bytes(template[:version] + bytes([index % 3]) + template[version + 1 :])
    photos(folder, 200)

    # WHEN validated
    started = time.monotonic()
    report = validate_path(folder)

    # THEN it finishes well inside the 60 s budget, counting three plus the 200 distinct photos
    assert time.monotonic() - started < 30
    assert report.accepted and report.images == 203
    assert sum(issue.code is Code.DUPLICATE_IMAGES for issue in report.warnings) == 1497
