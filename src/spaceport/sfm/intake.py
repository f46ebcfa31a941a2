"""Photo intake: whatever people upload, turned into upright 8-bit RGB images COLMAP reads reliably.

Every image keeps its path relative to the input folder (nested folders, spaces and non-ASCII names
included) as its COLMAP image name, so the model's names point back at the user's own files. The file
format follows the extension, so a name never lies about its content; a JPEG that needs no change is
copied byte for byte (no second lossy encode, EXIF intact).
"""

from __future__ import annotations

import logging
import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger("spaceport.sfm")

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}
TAG_ORIENTATION = 0x0112
TAG_MAKE, TAG_MODEL = 0x010F, 0x0110
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
# Focal-plane resolutions are in pixels per unit at the original size; after a resize they would lie.
TAGS_INVALID_AFTER_RESIZE = (0xA20E, 0xA20F, 0xA210)
JPEG_QUALITY = 95


@dataclass
class IntakeImage:
    """One accepted photo.

    Attributes:
        name: path relative to the input folder, with forward slashes (the COLMAP image name).
        width, height: size after orientation and downscaling.
        camera_key: make, model and size; photos sharing it can share one camera.
        has_gps: the photo carries GPS EXIF (spatial matching becomes possible).
    """

    name: str
    width: int
    height: int
    camera_key: tuple[str, str, int, int]
    has_gps: bool


@dataclass
class IntakeResult:
    images: list[IntakeImage] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def single_camera(self) -> bool:
        """All photos come from one camera at one size, so COLMAP should estimate one set of intrinsics."""
        return len({image.camera_key for image in self.images}) == 1


def find_images(input_dir: Path) -> list[Path]:
    """Image files under ``input_dir`` at any depth (extensions in any case), hidden files left out."""
    found = []
    for path in sorted(input_dir.rglob("*")):
        relative = path.relative_to(input_dir)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            found.append(path)
        else:
            logger.info("intake: ignoring %s (not an image extension)", relative.as_posix())
    return found


def to_rgb8(image: Image.Image) -> Image.Image:
    """Any Pillow mode and bit depth to 8-bit RGB; transparency is composited on white, not black."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit and 32-bit integer greyscale: Pillow's own convert clips to 255, so scale by the real range.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max() > 255 else 255.0
        return Image.fromarray(np.clip(values / top * 255 + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        top = 1.0 if values.max() <= 1.0 else values.max()
        return Image.fromarray(np.clip(values / top * 255 + 0.5, 0, 255).astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def carried_exif(image: Image.Image, resized: bool) -> Image.Exif:
    """Camera facts worth keeping (make, model, focal length, GPS) in a fresh EXIF block.

    A fresh block rather than the source's: a TIFF's "EXIF" also holds its strip layout, which would
    corrupt the written file, and the orientation must go because the pixels are upright now.
    """
    source = image.getexif()
    exif = Image.Exif()
    for tag in (TAG_MAKE, TAG_MODEL):
        if tag in source:
            exif[tag] = source[tag]
    for ifd in (EXIF_IFD, GPS_IFD):
        values = dict(source.get_ifd(ifd))
        if resized and ifd == EXIF_IFD:
            for tag in TAGS_INVALID_AFTER_RESIZE:
                values.pop(tag, None)
        if values:
            exif.get_ifd(ifd).update(values)
    return exif


def intake_image(source: Path, target: Path, name: str, max_image_size: int) -> IntakeImage | None:
    """Convert one photo to ``target``; returns None (after a warning naming ``name``) when it cannot be read."""
    try:
        with Image.open(source) as original:
            full_size = original.size
            longest = max(full_size)
            scale = max_image_size / longest if max_image_size > 0 and longest > max_image_size else 1.0
            drafted = False
            if scale <= 0.5 and original.format == "JPEG":
                # Decode at 1/2, 1/4 or 1/8 scale in the DCT (still at least the target size; LANCZOS does the
                # rest): a 12 MP photo bound for 1600 px decodes a quarter of its pixels, half its intake time.
                original.draft(original.mode, (math.ceil(full_size[0] * scale), math.ceil(full_size[1] * scale)))
                drafted = original.size != full_size
                scale = min(1.0, max_image_size / max(original.size))
            original.load()
            exif = original.getexif()
            upright = ImageOps.exif_transpose(original)
            needs_orientation = exif.get(TAG_ORIENTATION, 1) not in (0, 1)
            unchanged_jpeg = original.format == "JPEG" and original.mode == "RGB"
            target.parent.mkdir(parents=True, exist_ok=True)
            if unchanged_jpeg and scale == 1.0 and not drafted and not needs_orientation:
                shutil.copyfile(source, target)
                image = upright
            else:
                image = to_rgb8(upright)
                if scale < 1.0:
                    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
                    image = image.resize(size, Image.Resampling.LANCZOS)
                save_image(image, target, carried_exif(original, resized=scale < 1.0 or drafted))
            make, model = str(exif.get(TAG_MAKE, "")).strip(), str(exif.get(TAG_MODEL, "")).strip()
            key = (make, model, image.width, image.height)
            return IntakeImage(name, image.width, image.height, key, has_gps=bool(exif.get_ifd(GPS_IFD)))
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        # Pillow raises SyntaxError for some corrupt headers; any of these means "not a usable photo".
        logger.warning("intake: skipping %s: %s", name, error)
        target.unlink(missing_ok=True)
        return None


def save_image(image: Image.Image, target: Path, exif: Image.Exif) -> None:
    suffix = target.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        image.save(target, format="JPEG", quality=JPEG_QUALITY, subsampling=0, exif=exif)
    elif suffix == ".webp":
        image.save(target, format="WEBP", lossless=True, exif=exif)
    elif suffix in (".tif", ".tiff"):
        image.save(target, format="TIFF", compression="tiff_deflate", exif=exif)
    elif suffix == ".png":
        image.save(target, format="PNG", exif=exif)
    else:
        image.save(target)


def intake_folder(
    input_dir: Path, work_images_dir: Path, max_image_size: int, names: list[str] | None = None, workers: int = 1
) -> IntakeResult:
    """Convert every readable photo under ``input_dir`` into ``work_images_dir`` under the same relative name.

    Args:
        input_dir: the user's photos, nested folders allowed.
        work_images_dir: where the converted photos go.
        max_image_size: longest side after downscaling; 0 or less keeps the original size.
        names: only these photos (paths relative to ``input_dir``), e.g. the ones the validator accepted.
        workers: photos converted at once (Pillow decodes, resizes and encodes outside the GIL, so threads use
            every core; a thousand 12 MP photos take minutes on one).

    Returns:
        The accepted photos in name order, and the skipped files with the reason for each.
    """
    result = IntakeResult()
    sources = find_images(input_dir) if names is None else [input_dir / name for name in sorted(names)]
    relative = [source.relative_to(input_dir).as_posix() for source in sources]

    def convert(index: int) -> IntakeImage | None:
        return intake_image(sources[index], work_images_dir / relative[index], relative[index], max_image_size)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        converted = list(pool.map(convert, range(len(sources))))
    for name, accepted in zip(relative, converted, strict=True):
        if accepted is None:
            result.skipped[name] = "unreadable image"
        else:
            result.images.append(accepted)
    logger.info("intake: %d images accepted, %d skipped", len(result.images), len(result.skipped))
    return result
