"""A finished job's deliverables, each file checked against the manifest of the stage that wrote it (size and
SHA-256), into a folder the viewer opens: ``scene.sog`` and its exports ``scene.glb``, ``scene.spz`` and, for a
scene on the globe, ``tiles/`` (compress's manifest), ``georef.json`` and the SfM model ``sfm/sparse/0`` (sfm's
manifest), the viewer page, and ``cloud-job.json`` (the job as the API reported it).

Everything lands in a private folder beside the target first and moves into place only once every file verified:
a corrupt byte fails the download and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from spaceport.cloud.client.api import JobsApi
from spaceport.cloud.client.errors import CloudError, VerificationError

ATTEMPTS = 5
TIMEOUT_S = 300
BLOCK = 1 << 20
# Where each download lands in the folder, and which manifest, under which name, vouches for it.
SCENE = ("scene", "scene.sog", "compress_manifest", "scene.sog")
GEOREF = ("georef", "georef.json", "sfm_manifest", "georef.json")
# The compress stage's exports (GET /jobs/{id}'s link names): each lands, and is listed, under the same name.
EXPORTS = {"glb": "scene.glb", "spz": "scene.spz"}
MODEL_DIR = "sfm"
TILES_DIR = "tiles"
JOB_FILE = "cloud-job.json"


def _get(url: str, sink: Path | None = None) -> bytes:
    """GET a presigned URL (into ``sink``, or returned); a broken connection or a 5xx is tried again."""
    last = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with requests.get(url, stream=True, timeout=TIMEOUT_S) as response:
                if response.status_code == 200:
                    if sink is None:
                        return response.content
                    with sink.open("wb") as out:
                        for block in response.iter_content(BLOCK):
                            out.write(block)
                    return b""
                last = f"S3 answered {response.status_code}: {response.text[:200]}"
                if response.status_code < 500:
                    break
        except requests.RequestException as error:
            last = str(error)
        time.sleep(0.5 * 2 ** (attempt - 1))
    raise CloudError(f"download failed ({last})")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        while block := reader.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected: dict[str, Any], name: str, manifest: str) -> None:
    """Raises VerificationError when ``path`` is not the file ``manifest`` lists as ``name``."""
    size, digest = path.stat().st_size, file_sha256(path)
    if size != expected["bytes"] or digest != expected["sha256"]:
        raise VerificationError(
            f"{name} does not match {manifest}: {size} bytes with SHA-256 {digest}, expected {expected['bytes']} "
            f"bytes with {expected['sha256']}; nothing was kept, download again"
        )


def _inside(folder: Path, relative: str) -> Path:
    """``folder / relative``, refused when a link's name would put the file outside ``folder``."""
    target = folder / relative
    if ".." in Path(relative).parts or Path(relative).is_absolute():
        raise CloudError(f"a download link names {relative!r}, outside the job's folder")
    return target


class Downloader:
    """Downloads one succeeded job into ``out_dir``."""

    def __init__(self, api: JobsApi, job_id: str, out_dir: Path, on_file: Callable[[str], None] | None = None) -> None:
        self.api, self.job_id, self.out_dir = api, job_id, out_dir
        self._on_file = on_file or (lambda name: None)

    def run(self) -> dict[str, Path]:
        """Download, verify, write the viewer, then move everything into ``out_dir``; the files by name.

        Raises:
            CloudError: the job has not succeeded, or a download failed.
            VerificationError: a file differs from its manifest (nothing is left behind).
        """
        job = self.api.get_job(self.job_id)
        if job["status"] != "SUCCEEDED":
            raise CloudError(f"job {self.job_id} is {job['status']}: only a SUCCEEDED job has a scene to download")
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.partial-", dir=self.out_dir.parent))
        try:
            names = self._fetch_all(job["downloads"], staging)
            (staging / JOB_FILE).write_text(json.dumps({k: v for k, v in job.items() if k != "downloads"}, indent=2))
            names.append(JOB_FILE)
            names += write_viewer_files(staging)
            return self._publish(staging, names)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _fetch_all(self, links: dict[str, Any], staging: Path) -> list[str]:
        manifests = {
            name: json.loads(_get(links[name])) for name in ("compress_manifest", "sfm_manifest") if name in links
        }
        names = []
        for link, target, manifest, listed in (SCENE, GEOREF):
            if link in links and manifest in manifests:
                self._fetch(links[link], staging / target, manifests[manifest], listed, manifest)
                names.append(target)
        if "scene.sog" not in names:
            raise CloudError(f"job {self.job_id} links no scene with its manifest: {sorted(links)}")
        for link, name in EXPORTS.items():
            if link in links:  # the scene came with compress's manifest, which lists its exports too
                self._fetch(links[link], staging / name, manifests["compress_manifest"], name, "compress_manifest")
                names.append(name)
        # The manifests list the model under sparse/0/ (sfm's output) and the tileset under tiles/ (compress's).
        for folder, link, manifest, listed_under in (
            (MODEL_DIR, "sfm_model", "sfm_manifest", ""),
            (TILES_DIR, "tiles", "compress_manifest", f"{TILES_DIR}/"),
        ):
            for relative, url in sorted((links.get(link) or {}).items()):
                target = _inside(staging, f"{folder}/{relative}")
                self._fetch(url, target, manifests.get(manifest, {}), listed_under + relative, manifest)
                names.append(f"{folder}/{relative}")
        return names

    def _fetch(self, url: str, target: Path, manifest: dict[str, Any], listed: str, manifest_name: str) -> None:
        expected = manifest.get("files", {}).get(listed)
        if expected is None:
            raise VerificationError(f"{listed} is not in the {manifest_name.replace('_', ' ')}: it cannot be verified")
        target.parent.mkdir(parents=True, exist_ok=True)
        _get(url, target)
        verify_file(target, expected, listed, f"the {manifest_name.replace('_', ' ')}")
        self._on_file(listed)

    def _publish(self, staging: Path, names: list[str]) -> dict[str, Path]:
        """Move the verified files into ``out_dir`` (replacing older copies); the viewer's static files too."""
        placed = {}
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            relative = path.relative_to(staging)
            target = self.out_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            placed[relative.as_posix()] = target
        return {name: placed[name] for name in names if name in placed}


def write_viewer_files(folder: Path) -> list[str]:
    """The viewer page beside ``scene.sog``, upright when ``georef.json`` says the frame is, starting as the local
    run's does. Returns the names written (none without the engine: ``spaceport view`` then serves the page)."""
    from spaceport.local.views import folder_view
    from spaceport.viewer import EngineMissingError, write_viewer

    camera, georef = folder_view(folder)
    try:
        write_viewer(folder, camera, georef)
    except EngineMissingError:
        return []
    return ["index.html"]
