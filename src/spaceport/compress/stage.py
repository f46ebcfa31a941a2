"""The compress stage: ``scene.ply`` to ``scene.sog``, ``scene.glb``, ``scene.spz`` and, on the globe, ``tiles/``,
under the SageMaker Processing contract.

Inputs: ``processing/input/model``: ``scene.ply`` (the train stage's ``manifest.json`` beside it, which says where
the sky shell starts), or the training job's ``model.tar.gz`` holding both; ``processing/input/georef`` (optional):
the sfm stage's ``georef.json``.
Output (``processing/output``): ``scene.sog``, the unbundled ``sog/`` (``meta.json`` + WebP images) for viewers
that fetch files separately, the exports of ``spaceport.export.writer`` (``tiles/`` only for a scene registered by
GPS), and ``manifest.json`` written last. Failure reason: ``output/message``.
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.compress.sog import SogConfig, encode_files, encode_sog, write_bundle, write_directory
from spaceport.contract import ProcessingLayout, StageError, begin_output, timed, write_manifest
from spaceport.gaussians import GaussianCloud, read_ply

STAGE = "compress"
PLY_NAME = "scene.ply"
ARCHIVE_NAME = "model.tar.gz"
TRAIN_MANIFEST = "manifest.json"
BUNDLE_NAME = "scene.sog"
UNBUNDLED_DIR = "sog"
INPUT_CHANNEL = "model"
GEOREF_CHANNEL = "georef"

logger = logging.getLogger("spaceport.compress")


@dataclass(frozen=True)
class CompressPaths:
    """Where the stage reads and writes; ``from_layout`` gives the SageMaker defaults."""

    input_dir: Path
    output_dir: Path
    failure_file: Path
    georef_dir: Path | None = None

    @classmethod
    def from_layout(cls, layout: ProcessingLayout) -> CompressPaths:
        return cls(layout.input_dir(INPUT_CHANNEL), layout.output_dir, layout.failure_file,
                   layout.input_dir(GEOREF_CHANNEL))  # fmt: skip


def extract_ply(archive: Path, destination: Path) -> Path:
    """Copy ``scene.ply`` (and the train stage's ``manifest.json``, when there is one) out of a training
    ``model.tar.gz`` without trusting the archive's paths.

    Only regular files named ``scene.ply`` or ``manifest.json`` (at the root or under ``./``) are read, and they are
    written to paths we choose (``destination`` and ``manifest.json`` beside it), so links, ``..`` and absolute
    names in the archive cannot write anywhere.
    """
    wanted = {PLY_NAME: destination, TRAIN_MANIFEST: destination.with_name(TRAIN_MANIFEST)}
    found = set()
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if not member.isfile() or name not in wanted or name in found:
                    continue
                source = tar.extractfile(member)
                if source is None:
                    raise StageError(f"{archive.name}: {name} cannot be read")
                wanted[name].parent.mkdir(parents=True, exist_ok=True)
                with source, wanted[name].open("wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                found.add(name)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise StageError(f"{archive.name} is not a readable tar.gz: {error}") from error
    if PLY_NAME not in found:
        raise StageError(f"{archive.name} has no {PLY_NAME} at its root")
    return destination


def find_input_ply(input_dir: Path, scratch_dir: Path) -> Path:
    """``scene.ply`` from the input channel, extracted from ``model.tar.gz`` when that is what arrived."""
    if (input_dir / PLY_NAME).is_file():
        return input_dir / PLY_NAME
    if (input_dir / ARCHIVE_NAME).is_file():
        return extract_ply(input_dir / ARCHIVE_NAME, scratch_dir / PLY_NAME)
    found = sorted(p.name for p in input_dir.iterdir()) if input_dir.is_dir() else []
    raise StageError(f"no {PLY_NAME} or {ARCHIVE_NAME} in {input_dir} (found: {', '.join(found) or 'nothing'})")


def _declared_payload(data: bytes) -> tuple[int, int] | None:
    """(Gaussians declared, bytes they need) from a PLY header whose vertex properties are all scalars."""
    end = data.find(b"end_header\n")
    if end < 0:
        return None
    sizes = {"char": 1, "uchar": 1, "short": 2, "ushort": 2, "int": 4, "uint": 4, "float": 4, "double": 8}
    sizes |= {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "float32": 4, "float64": 8}
    count, row, in_vertex = 0, 0, False
    for parts in (line.split() for line in data[:end].decode("ascii", "replace").splitlines()):
        if parts[:1] == ["element"] and len(parts) == 3:
            in_vertex = parts[1] == "vertex"
            count = int(parts[2]) if in_vertex and parts[2].isdigit() else count
        elif parts[:1] == ["property"] and in_vertex and parts[1] in sizes:
            row += sizes[parts[1]]
    return count, count * row


def load_cloud(path: Path) -> GaussianCloud:
    """Read the PLY, turning every way it can be broken into a reason the user can act on."""
    data = path.read_bytes()
    declared = _declared_payload(data)
    if declared is not None:
        count, needed = declared
        present = len(data) - data.find(b"end_header\n") - len(b"end_header\n")
        if present < needed:
            raise StageError(
                f"{path.name} is truncated: its header declares {count} Gaussians ({needed} bytes) "
                f"but only {present} bytes follow; the upload or the training job's output was cut short"
            )
    try:
        cloud = read_ply(path)
    except (ValueError, KeyError) as error:
        raise StageError(f"{path.name} is not a 3DGS PLY: {error}") from error
    if len(cloud) == 0:
        raise StageError(f"{path.name} has no Gaussians")
    return cloud


def drop_non_finite(cloud: GaussianCloud) -> tuple[GaussianCloud, int]:
    """Remove Gaussians with NaN or infinite values (a diverged optimisation leaves some); count them."""
    columns = [cloud.means, cloud.sh0, cloud.shN.reshape(len(cloud), -1), cloud.opacities[:, None]]
    columns += [cloud.log_scales, cloud.quats]
    finite = np.all(np.isfinite(np.concatenate(columns, axis=1)), axis=1)
    finite &= np.linalg.norm(cloud.quats, axis=1) > 0
    dropped = int(np.count_nonzero(~finite))
    if dropped == len(cloud):
        raise StageError("every Gaussian has a non-finite value or a zero rotation: the training diverged")
    return (cloud.subset(np.flatnonzero(finite)) if dropped else cloud), dropped


def read_georef_input(georef_dir: Path | None) -> dict[str, Any] | None:
    """The sfm stage's ``georef.json`` from the optional channel (None: no channel, or nothing in it)."""
    from spaceport.sfm.georef import GEOREF_FILE, read_georef

    if georef_dir is None or not (georef_dir / GEOREF_FILE).is_file():
        return None
    try:
        return read_georef(georef_dir / GEOREF_FILE)
    except ValueError as error:
        raise StageError(f"{GEOREF_FILE} from the sfm stage cannot be read: {error}") from error


def export_globe(cloud: GaussianCloud, ply: Path, georef: dict[str, Any] | None, output_dir: Path) -> dict[str, Any]:
    """``scene.glb``, ``scene.spz`` and (registered by GPS) ``tiles/`` beside the SOG; the export's figures."""
    from spaceport.export.sky_shell import find_shell
    from spaceport.export.writer import ExportOptions, export_scene

    try:
        shell = find_shell(cloud, ply)
    except ValueError as error:
        raise StageError(f"the sky shell of {ply.name}: {error}") from error
    return export_scene(cloud, shell, georef, output_dir, ExportOptions())


def compress_stage(paths: CompressPaths, config: SogConfig) -> dict[str, Any]:
    """The stage body: read, encode, write both forms and the exports, then the manifest. Returns the manifest."""
    begin_output(paths.output_dir)
    seconds: dict[str, float] = {}
    started = time.monotonic()
    georef = read_georef_input(paths.georef_dir)
    # Extract beside the output, on the job's data volume: the container's own disk is small.
    with tempfile.TemporaryDirectory(dir=paths.output_dir.parent) as scratch:
        with timed(seconds, "read"):
            ply = find_input_ply(paths.input_dir, Path(scratch))
            ply_bytes = ply.stat().st_size
            trained = load_cloud(ply)
            cloud, dropped = drop_non_finite(trained)
        encoding = encode_sog(cloud, config)
        files = encode_files(encoding, config)
        with timed(seconds, "write"):
            sog_bytes = write_bundle(files, paths.output_dir / BUNDLE_NAME)
            write_directory(files, paths.output_dir / UNBUNDLED_DIR)
        with timed(seconds, "export"):
            exports = export_globe(trained, ply, georef, paths.output_dir)
    seconds |= encoding.seconds
    seconds["total"] = round(time.monotonic() - started, 3)
    figures = {
        "gaussians": len(cloud),
        "dropped_non_finite": dropped,
        "sh_degree": cloud.sh_degree,
        "sh_palette": encoding.meta.get("shN", {}).get("count", 0),
        "ply_bytes": ply_bytes,
        "sog_bytes": sog_bytes,
        "ratio": round(ply_bytes / sog_bytes, 2),
        "seconds": seconds,
        "exports": exports,
    }
    logger.info("compressed %d Gaussians: %d -> %d bytes (%.1fx)", len(cloud), ply_bytes, sog_bytes, figures["ratio"])
    return write_manifest(paths.output_dir, STAGE, figures)
