"""Benchmark: our SOG encoder against ``splat-transform -g cpu`` on the same synthetic scene.

``python -m spaceport.compress.bench [--count 20000] [--degree 3] [--out DIR] [--skip-splat-transform]``
prints one JSON object: bytes, seconds and render PSNR (each SOG decoded by splat-transform, rendered from
orbit cameras, scored against the PLY's renders) for both encoders.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from spaceport.compress.evaluate import orbit_cameras, render_psnr, synthetic_cloud
from spaceport.compress.sog import SogConfig, encode_files, encode_sog, write_bundle
from spaceport.gaussians import GaussianCloud, read_ply, write_ply

DEFAULT_SPLAT_TRANSFORM = Path("node_modules/.bin/splat-transform")


def splat_transform(tool: Path, source: Path, target: Path) -> float:
    """Run splat-transform on the CPU; return its wall time in seconds."""
    started = time.monotonic()
    subprocess.run([str(tool), "-q", "-g", "cpu", "-w", str(source), str(target)], check=True, capture_output=True)
    return time.monotonic() - started


def measure_ours(ply: Path, target: Path) -> dict[str, Any]:
    """Time reading the PLY, encoding and writing the bundle, as the command does."""
    started = time.monotonic()
    config = SogConfig()
    encoding = encode_sog(read_ply(ply), config)
    sog_bytes = write_bundle(encode_files(encoding, config), target)
    return {"seconds": round(time.monotonic() - started, 2), "bytes": sog_bytes, "steps": encoding.seconds}


def fidelity(tool: Path, cloud: GaussianCloud, sog: Path, scratch: Path) -> float:
    """Render PSNR of splat-transform's decode of ``sog`` against ``cloud`` (the order does not matter to a render)."""
    decoded_ply = scratch / f"{sog.stem}-decoded.ply"
    splat_transform(tool, sog, decoded_ply)
    return round(render_psnr(cloud, read_ply(decoded_ply), orbit_cameras(4)), 2)


def run_benchmark(count: int, degree: int, out: Path, tool: Path, compare: bool) -> dict[str, Any]:
    cloud = synthetic_cloud(count, degree, seed=0)
    ply = out / "scene.ply"
    write_ply(cloud, ply)
    report: dict[str, Any] = {"gaussians": count, "sh_degree": degree, "ply_bytes": ply.stat().st_size}
    ours = measure_ours(ply, out / "ours.sog")
    ours["ratio"] = round(report["ply_bytes"] / ours["bytes"], 2)
    ours["psnr_db"] = fidelity(tool, cloud, out / "ours.sog", out)
    report["spaceport"] = ours
    if compare:
        seconds = splat_transform(tool, ply, out / "splat-transform.sog")
        size = (out / "splat-transform.sog").stat().st_size
        reference = {"seconds": round(seconds, 2), "bytes": size, "ratio": round(report["ply_bytes"] / size, 2)}
        reference["psnr_db"] = fidelity(tool, cloud, out / "splat-transform.sog", out)
        report["splat_transform"] = reference
        report["speedup"] = round(seconds / ours["seconds"], 1)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--degree", type=int, default=3)
    parser.add_argument("--out", type=Path, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--splat-transform", type=Path, default=DEFAULT_SPLAT_TRANSFORM)
    parser.add_argument("--skip-splat-transform", action="store_true", help="skip its encode (minutes on CPU)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        out.mkdir(parents=True, exist_ok=True)
        report = run_benchmark(args.count, args.degree, out, args.splat_transform, not args.skip_splat_transform)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
