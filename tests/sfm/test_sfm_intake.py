"""Photo intake: awkward uploads become upright 8-bit RGB images under their original relative names."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from spaceport.sfm.intake import intake_folder


def textured(width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def test_every_format_and_mode_becomes_8bit_rgb_under_its_relative_name(tmp_path: Path) -> None:
    # GIVEN nested folders with spaces and non-ASCII names, upper-case extensions and many pixel formats
    source = tmp_path / "in"
    (source / "flight 1" / "Straße").mkdir(parents=True)
    rgb = textured(64, 48)
    Image.fromarray(rgb).save(source / "flight 1" / "Straße" / "IMG 001.JPG", quality=95)
    Image.fromarray(rgb).convert("RGBA").save(source / "flight 1" / "rgba.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(source / "deep16.png")
    Image.fromarray(rgb).convert("CMYK").save(source / "print.jpeg")
    Image.fromarray(rgb).convert("L").save(source / "grey.TIF")
    Image.fromarray(rgb).convert("P").save(source / "palette.bmp")

    # WHEN they go through intake
    result = intake_folder(source, tmp_path / "work", max_image_size=1600)

    # THEN each keeps its relative path as its name and is readable 8-bit RGB at its size
    names = sorted(image.name for image in result.images)
    assert names == sorted(
        ["flight 1/Straße/IMG 001.JPG", "flight 1/rgba.png", "deep16.png", "print.jpeg", "grey.TIF", "palette.bmp"]
    )
    for name in names:
        with Image.open(tmp_path / "work" / name) as converted:
            assert converted.mode == "RGB", name
            assert converted.size == (64, 48), name
    # AND 16-bit values are scaled, not clipped to white
    deep = np.asarray(Image.open(tmp_path / "work" / "deep16.png"))[..., 0]
    assert np.abs(deep.astype(int) - rgb[..., 0]).max() <= 1
    assert not result.skipped


def test_exif_orientation_is_applied_and_large_photos_are_downscaled(tmp_path: Path) -> None:
    # GIVEN a landscape-stored photo whose EXIF says "rotate 90 degrees", larger than the limit
    source = tmp_path / "in"
    source.mkdir()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    exif[0x010F] = "Phone"
    exif.get_ifd(0x8769)[0xA405] = 26  # 35 mm equivalent focal length
    Image.fromarray(textured(400, 300)).save(source / "sideways.jpg", exif=exif, quality=95)

    # WHEN intake limits the longest side to 200
    result = intake_folder(source, tmp_path / "work", max_image_size=200)

    # THEN the written photo is upright (portrait), downscaled, and no longer claims a rotation
    with Image.open(tmp_path / "work" / "sideways.jpg") as converted:
        assert converted.size == (150, 200)
        assert converted.getexif().get(0x0112, 1) == 1
        # AND the camera facts SfM starts from survive the conversion
        assert converted.getexif().get(0x010F) == "Phone"
        assert converted.getexif().get_ifd(0x8769).get(0xA405) == 26
    assert (result.images[0].width, result.images[0].height) == (150, 200)


def test_unreadable_files_are_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    # GIVEN one good photo, one truncated "photo", a text file and a hidden file
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(textured(32, 32)).save(source / "good.jpg")
    (source / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (source / "notes.txt").write_text("hello")
    (source / ".DS_Store").write_bytes(b"\x00")

    # WHEN they go through intake
    with caplog.at_level(logging.WARNING, logger="spaceport.sfm"):
        result = intake_folder(source, tmp_path / "work", max_image_size=1600)

    # THEN only the good photo is kept, and the broken one is reported
    assert [image.name for image in result.images] == ["good.jpg"]
    assert list(result.skipped) == ["broken.jpg"]
    assert any("broken.jpg" in record.message for record in caplog.records)
    assert not (tmp_path / "work" / "broken.jpg").exists()


def test_an_unchanged_jpeg_is_copied_byte_for_byte(tmp_path: Path) -> None:
    # GIVEN an upright RGB JPEG within the size limit
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(textured(80, 60)).save(source / "a.jpg", quality=90)

    # WHEN it goes through intake
    result = intake_folder(source, tmp_path / "work", max_image_size=1600)

    # THEN it is not re-encoded (no second lossy compression), and one camera is detected
    assert (tmp_path / "work" / "a.jpg").read_bytes() == (source / "a.jpg").read_bytes()
    assert result.single_camera


def test_large_jpegs_are_decoded_at_a_reduced_scale_and_converted_in_parallel(tmp_path: Path) -> None:
    # GIVEN smooth, photo-like JPEGs four times larger than the limit, under nested names
    source = tmp_path / "in"
    rng = np.random.default_rng(3)
    for index in range(6):
        coarse = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8))
        photo = coarse.resize((1280, 960), Image.Resampling.BICUBIC)
        target = source / f"strip {index % 2}" / f"DJI_{index:04d}.JPG"
        target.parent.mkdir(parents=True, exist_ok=True)
        photo.save(target, quality=92)

    # WHEN intake limits the longest side to 300, with one worker and with four
    serial = intake_folder(source, tmp_path / "serial", max_image_size=300)
    parallel = intake_folder(source, tmp_path / "parallel", max_image_size=300, workers=4)

    # THEN every photo has the limit's size and looks like a full decode resized (the DCT does most of the shrinking)
    for image in serial.images:
        with Image.open(tmp_path / "serial" / image.name) as converted, Image.open(source / image.name) as original:
            assert converted.size == (300, 225)
            reference = np.asarray(original.convert("RGB").resize((300, 225), Image.Resampling.LANCZOS), np.float64)
            assert np.abs(np.asarray(converted, np.float64) - reference).mean() < 3.0
    # AND the workers change nothing: same photos, same order, same bytes
    assert [image.name for image in parallel.images] == [image.name for image in serial.images]
    assert len(serial.images) == 6
    for image in serial.images:
        assert (tmp_path / "parallel" / image.name).read_bytes() == (tmp_path / "serial" / image.name).read_bytes()
