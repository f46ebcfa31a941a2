"""File-level checks: content decides, bad files are named and skipped, every Pillow mode is accepted."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from spaceport.validation import Code, Limits, validate_path, validated_input

from .validation_corpus import photo, photos


def issues_by_path(issues) -> dict[str, str]:
    return {issue.path: issue.code for issue in issues}


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's calling card."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
        + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    )  # fmt: skip
    return path


def test_bad_files_are_named_and_skipped_when_enough_good_ones_remain(tmp_path: Path):
    # GIVEN four good photos beside a truncated, a zero-byte, a text-as-.jpg, a corrupt PNG and a tiny image
    photos(tmp_path, 4)
    good = (tmp_path / "img_000.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(good[: len(good) * 3 // 4])
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a photo")
    png = photo(tmp_path / "corrupt.png", seed=9).read_bytes()
    (tmp_path / "corrupt.png").write_bytes(png[:100] + bytes(len(png) - 100))
    photo(tmp_path / "tiny.png", size=(32, 32))

    # WHEN the folder is validated
    report = validate_path(tmp_path)

    # THEN it is accepted with the four good photos, and each bad file is a named warning
    assert report.accepted and report.images == 4 and not report.problems
    assert issues_by_path(report.warnings) == {
        "truncated.jpg": Code.UNREADABLE_IMAGE,
        "zero.jpg": Code.UNREADABLE_IMAGE,
        "notes.jpg": Code.UNREADABLE_IMAGE,
        "corrupt.png": Code.UNREADABLE_IMAGE,
        "tiny.png": Code.IMAGE_TOO_SMALL,
    }


def test_bad_files_become_problems_when_too_few_good_ones_remain(tmp_path: Path):
    # GIVEN two good photos and one truncated one (the minimum is three)
    photos(tmp_path, 2)
    good = (tmp_path / "img_000.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(good[:-200])

    # WHEN the folder is validated
    report = validate_path(tmp_path)

    # THEN it is rejected for too few images, and the truncated file is named among the reasons
    assert not report.accepted and report.images == 2
    assert [issue.code for issue in report.problems] == [Code.TOO_FEW_IMAGES, Code.UNREADABLE_IMAGE]
    assert report.problems[1].path == "truncated.jpg"


def test_mislabelled_image_is_judged_by_content(tmp_path: Path):
    # GIVEN a PNG named .jpg, a JPEG with no extension, and one good JPEG
    photo(tmp_path / "really_png.jpg", seed=1, format="PNG")
    photo(tmp_path / "no_extension", seed=2, format="JPEG")
    photo(tmp_path / "plain.jpg", seed=3)

    # WHEN validated
    report = validate_path(tmp_path)

    # THEN all three are usable, and the two misnamed ones carry a warning
    assert report.accepted and report.images == 3
    assert issues_by_path(report.warnings) == {
        "really_png.jpg": Code.MISLABELLED_FILE,
        "no_extension": Code.MISLABELLED_FILE,
    }


def test_every_colour_mode_and_bit_depth_is_accepted(tmp_path: Path):
    # GIVEN images in the modes and formats cameras and editors write
    gradient = np.tile(np.arange(0, 65535, 65535 // 160, dtype=np.uint16)[:160], (120, 1))
    Image.fromarray(gradient).save(tmp_path / "grey16.png")
    Image.fromarray(gradient).save(tmp_path / "grey16.tif")
    Image.fromarray(gradient.astype(np.float32)).save(tmp_path / "float.tiff")
    photo(tmp_path / "rgba.png", mode="RGBA")
    photo(tmp_path / "cmyk.jpg", mode="CMYK")
    photo(tmp_path / "grey.JPG", mode="L")
    photo(tmp_path / "bilevel.png", mode="1")
    photo(tmp_path / "palette.png", mode="P")
    photo(tmp_path / "grey_alpha.png", mode="LA")
    photo(tmp_path / "deflate.tif", compression="tiff_deflate")
    photo(tmp_path / "lossless.webp", lossless=True)
    photo(tmp_path / "bitmap.bmp")

    # WHEN validated
    report = validate_path(tmp_path)

    # THEN every one is usable and none draws a warning
    assert report.accepted and report.images == 12, report.summary()
    assert not report.warnings


def test_exif_orientation_is_read_not_rejected(tmp_path: Path):
    # GIVEN photos, one rotated by EXIF (orientation 6: the camera was turned)
    photos(tmp_path, 2)
    exif = Image.Exif()
    exif[0x0112] = 6
    photo(tmp_path / "rotated.jpg", seed=7, exif=exif.tobytes())

    # WHEN validated, keeping the images to look at
    with validated_input(tmp_path) as validated:
        orientations = {image.relative: image.orientation for image in validated.images}

    # THEN the rotated photo is usable and its orientation is reported for the sfm stage
    assert validated.report.accepted and not validated.report.warnings
    assert orientations == {"img_000.jpg": 1, "img_001.jpg": 1, "rotated.jpg": 6}


def test_decompression_bomb_is_refused_without_decoding(tmp_path: Path):
    # GIVEN a 200-byte PNG claiming 60000 x 60000 pixels beside three photos
    photos(tmp_path, 3)
    png_claiming(tmp_path / "bomb.png", 60_000, 60_000)

    # WHEN validated
    started = time.monotonic()
    report = validate_path(tmp_path)

    # THEN the bomb is refused by its header (instantly), and the photos are accepted
    assert time.monotonic() - started < 5
    assert report.accepted and report.images == 3
    assert issues_by_path(report.warnings) == {"bomb.png": Code.IMAGE_TOO_LARGE}


def test_pixel_limit_comes_from_limits(tmp_path: Path):
    # GIVEN three 160x120 photos and a pixel limit below their size
    photos(tmp_path, 3)

    # WHEN validated with that limit
    report = validate_path(tmp_path, Limits(max_image_pixels=10_000))

    # THEN every photo is refused as too large, so the input is rejected
    assert not report.accepted and report.images == 0
    assert [issue.code for issue in report.problems] == [Code.TOO_FEW_IMAGES] + [Code.IMAGE_TOO_LARGE] * 3


def test_video_heic_gif_and_other_files_are_unsupported(tmp_path: Path):
    # GIVEN photos beside an MP4, an AVI, a WebM, a HEIC, a GIF and a text file
    photos(tmp_path, 3)
    (tmp_path / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    (tmp_path / "clip.avi").write_bytes(b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(200))
    (tmp_path / "clip.webm").write_bytes(b"\x1a\x45\xdf\xa3" + bytes(200))
    (tmp_path / "IMG_1.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(200))
    photo(tmp_path / "anim.gif")
    (tmp_path / "readme.txt").write_text("hello")

    # WHEN validated
    report = validate_path(tmp_path)

    # THEN the photos are accepted and every other file is named as unsupported, the video with advice
    assert report.accepted and report.images == 3
    by_path = {issue.path: issue for issue in report.warnings}
    assert set(by_path) == {"clip.mp4", "clip.avi", "clip.webm", "IMG_1.HEIC", "anim.gif", "readme.txt"}
    assert {issue.code for issue in by_path.values()} == {Code.UNSUPPORTED_FILE}
    assert "extract still frames" in by_path["clip.mp4"].message
    assert "convert it to JPEG" in by_path["IMG_1.HEIC"].message
