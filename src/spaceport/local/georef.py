"""``spaceport georef DIR``: put a finished run into the georeferenced (or at least upright) frame, without retraining.

The frame is chosen as the sfm stage chooses it (``spaceport.sfm.georef``), from ``DIR/sfm/sparse/0`` and the
photos' EXIF GPS (by default the run's own copies, ``DIR/work/sfm/processing/input/images``); then every published
output is carried into it: ``scene.ply`` (means, rotations, scales and SH coefficients), ``scene.sog`` (re-encoded),
``scene.glb``, ``scene.spz`` and ``tiles/`` (exported again; tiles only on Earth), ``sfm/sparse/0``,
``georef.json``, the viewer page (its start view, scale bar and north arrow) and ``report.json``'s ``georef``. A run
that is registered already gets the small correction a new fit finds.

The stage outputs under ``DIR/work`` keep the frame the sfm stage gave them: a later ``spaceport run`` into DIR
publishes that frame again (the registered one, unless it runs with ``--no-georef``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from spaceport.contract import configure_logging, write_json_atomic

PHOTOS_IN_RUN = Path("work") / "sfm" / "processing" / "input" / "images"


class GeorefInputError(Exception):
    """The folder is not a finished run, or its photos are missing; the message says what to pass."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help="a finished run's output folder (spaceport run --out DIR)")
    parser.add_argument("--images", type=Path,
                        help=f"the photos, for their EXIF GPS (default: DIR/{PHOTOS_IN_RUN.as_posix()})")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Re-register the run; returns 0, or 2 when DIR is not a finished run."""
    configure_logging()
    try:
        registration = georeference_run(args.directory, args.images)
    except GeorefInputError as error:
        print(f"spaceport georef: {error}", file=sys.stderr)
        return 2
    from spaceport.local.report import frame_summary

    print(f"{args.directory}: {frame_summary(registration.document)}")
    origin = registration.document.get("origin")
    if origin:
        print(f"  origin: {origin['latitude']}, {origin['longitude']}, {origin['altitude_m']:g} m (WGS 84)")
    for warning in registration.document["warnings"]:
        print(f"  warning: {warning}")
    return 0


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise GeorefInputError(f"{path} is missing: {what}")
    return path


def georeference_run(out_dir: Path, images_dir: Path | None = None) -> Any:
    """Fit the frame of the run in ``out_dir`` and carry its published outputs into it.

    Args:
        out_dir: a finished run's folder (``scene.ply``, ``scene.sog``, ``sfm/sparse/0``).
        images_dir: the photos under the model's image names (default: the run's own copies).

    Returns:
        The ``Registration`` applied (its ``document`` is the new ``georef.json``).

    Raises:
        GeorefInputError: ``out_dir`` is not a finished run, or the photos are not where they were looked for.
    """
    import pycolmap

    from spaceport.gaussians import read_ply, write_ply
    from spaceport.sfm.georef import GEOREF_FILE, GeorefConfig, apply_registration, composed, read_georef, register
    from spaceport.transform import transform_cloud

    ply = _require(out_dir / "scene.ply", "pass the output folder of a finished `spaceport run`")
    sparse = _require(out_dir / "sfm" / "sparse" / "0", "pass the output folder of a finished `spaceport run`")
    photos = _require(images_dir or out_dir / PHOTOS_IN_RUN, "pass the photos with --images")
    reconstruction = pycolmap.Reconstruction(sparse)
    registration = register(reconstruction, photos, GeorefConfig())
    apply_registration(reconstruction, registration)
    registration = composed(registration, read_georef(out_dir / GEOREF_FILE))
    # Everything is computed before anything is replaced, so a failure leaves the run in one frame.
    cloud = transform_cloud(read_ply(ply), registration.similarity)
    sog_files = _encode_sog(cloud)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".georef-") as scratch:
        staged = Path(scratch) / "sparse"
        staged.mkdir()
        reconstruction.write(staged)
        write_ply(cloud, ply)
        _write_sog(sog_files, out_dir / "scene.sog")
        shutil.rmtree(sparse)
        shutil.move(staged, sparse)
    write_json_atomic(out_dir / GEOREF_FILE, registration.document)
    _refresh_exports(out_dir, cloud, registration.document)
    _refresh_viewer(out_dir, reconstruction, registration.document)
    _update_report(out_dir, registration.document)
    return registration


def _encode_sog(cloud: Any) -> dict[str, bytes]:
    """The SOG of ``cloud``, encoded as the compress stage encodes it (its default configuration)."""
    from spaceport.compress.sog import SogConfig, encode_files, encode_sog
    from spaceport.compress.stage import drop_non_finite

    config = SogConfig()
    finite, _ = drop_non_finite(cloud)
    return encode_files(encode_sog(finite, config), config)


def _write_sog(files: dict[str, bytes], path: Path) -> None:
    from spaceport.compress.sog import write_bundle

    write_bundle(files, path)


def _refresh_exports(out_dir: Path, cloud: Any, georef: dict[str, Any]) -> None:
    """``scene.glb``, ``scene.spz`` and ``tiles/`` written again in the new frame (tiles only when it is on Earth)."""
    from spaceport.export.sky_shell import find_shell
    from spaceport.export.writer import TILES_DIR, ExportOptions, export_scene

    shutil.rmtree(out_dir / TILES_DIR, ignore_errors=True)
    export_scene(cloud, find_shell(cloud, out_dir / "scene.ply"), georef, out_dir, ExportOptions())


def _refresh_viewer(out_dir: Path, reconstruction: Any, georef: dict[str, Any]) -> None:
    """The page carries its start view inline, so it is rewritten for the new frame."""
    from spaceport.local.views import oblique_camera
    from spaceport.viewer import write_viewer

    report = out_dir / "report.json"
    train = json.loads(report.read_text(encoding="utf-8")).get("train", {}) if report.is_file() else {}
    write_viewer(out_dir, oblique_camera(reconstruction), georef, sky_shell=bool(train.get("sky_shell")))


def _update_report(out_dir: Path, georef: dict[str, Any]) -> None:
    from spaceport.sfm.georef import GEOREF_FILE

    path = out_dir / "report.json"
    if not path.is_file():
        return
    report = json.loads(path.read_text(encoding="utf-8"))
    report["georef"] = georef
    report.setdefault("outputs", {})[GEOREF_FILE] = str(out_dir / GEOREF_FILE)
    write_json_atomic(path, report)
