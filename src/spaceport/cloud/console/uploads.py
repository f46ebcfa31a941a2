"""The console's uploads: photos the page hands over (a dropped folder's files, or a zip) are staged on this machine,
then go up through the client's own code (``Client.create_task``, as ``submit``: validation, the archive, parts in
parallel, retries, the completion), in a thread, with its progress kept for the page to show.

The staging folder outlives the console: an upload cut short (the network, Ctrl-C, a reboot) is resumed from it
(``Task.resume_upload``, as ``resume``: only the parts S3 does not hold go up again), since the same files zip to
the same bytes. Each upload's state is in ``UPLOADS/<id>/upload.json``.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from spaceport.cloud.client.errors import CloudError
from spaceport.cloud.client.tasks import Client, Created

STATE_FILE = "upload.json"
UPLOAD_ID = re.compile(r"^[a-z0-9]{12}$")
# Options the page may set on a job (POST /jobs validates them again).
OPTIONS = ("preset", "iterations", "webhook_url", "georef")


class UploadRequestError(ValueError):
    """The page asked for something this upload cannot do (a bad path, an upload already sent)."""


@dataclass
class Upload:
    """One upload and where it stands: ``staging`` (files arriving from the page), ``uploading``, ``done``,
    ``failed`` (``error`` says why; with a ``job_id`` it can be resumed) or ``interrupted`` (the console stopped)."""

    upload_id: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    state: str = "staging"
    job_id: str | None = None
    sent: int = 0
    total: int = 0
    staged_files: int = 0
    error: str | None = None
    estimate: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        return asdict(self) | {"resumable": self.state in ("failed", "interrupted") and bool(self.job_id)}


class Uploads:
    """Every upload staged under ``root``, and the threads sending them."""

    def __init__(self, root: Path, client: Client) -> None:
        self.root, self.client = root, client
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._uploads: dict[str, Upload] = {}
        self._load()

    def _load(self) -> None:
        for state in sorted(self.root.glob(f"*/{STATE_FILE}")):
            upload = Upload(**json.loads(state.read_text()))
            if upload.state in ("uploading", "staging"):
                upload.state = "interrupted" if upload.job_id else "failed"
                upload.error = upload.error or "the console stopped before the upload finished"
            self._uploads[upload.upload_id] = upload

    def views(self) -> list[dict[str, Any]]:
        with self._lock:
            return [upload.view() for upload in self._uploads.values()]

    def create(self, name: str, options: dict[str, Any]) -> Upload:
        chosen = {key: value for key, value in options.items() if key in OPTIONS and value not in (None, "")}
        upload = Upload(secrets.token_hex(6), name[:200] or "photos", chosen)
        (self.root / upload.upload_id / "photos").mkdir(parents=True)
        self._save(upload)
        return upload

    def get(self, upload_id: str) -> Upload:
        with self._lock:
            upload = self._uploads.get(upload_id) if UPLOAD_ID.match(upload_id) else None
        if upload is None:
            raise UploadRequestError(f"no upload {upload_id}")
        return upload

    def stage_file(self, upload_id: str, relative: str, reader: Any, length: int) -> None:
        """Write one of the page's files under the upload's folder, by its path in the dropped folder."""
        upload = self.get(upload_id)
        if upload.state != "staging":
            raise UploadRequestError(f"upload {upload_id} is {upload.state}; it takes no more files")
        parts = PurePosixPath(relative).parts
        if not parts or relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise UploadRequestError(f"not a relative path: {relative!r}")
        target = self.root / upload_id / "photos" / PurePosixPath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            shutil.copyfileobj(_Limited(reader, length), out)
        with self._lock:
            upload.staged_files += 1

    def photos(self, upload: Upload) -> Path:
        """What ``submit`` would be given: the one zip the page dropped, else the folder of photos."""
        folder = self.root / upload.upload_id / "photos"
        entries = list(folder.iterdir())
        if len(entries) == 1 and entries[0].is_file() and entries[0].suffix.lower() == ".zip":
            return entries[0]
        return folder

    def start(self, upload_id: str) -> Upload:
        """Create the job and send the photos, in a thread, as ``submit`` does."""
        upload = self.get(upload_id)
        if upload.state != "staging":
            raise UploadRequestError(f"upload {upload_id} is {upload.state}")
        self._set(upload, state="uploading")
        threading.Thread(target=self._submit, args=(upload,), name=f"upload-{upload_id}", daemon=True).start()
        return upload

    def resume(self, upload_id: str) -> Upload:
        """Send what S3 does not hold yet of an upload cut short, from its staged files, as ``resume`` does."""
        upload = self.get(upload_id)
        if upload.state not in ("failed", "interrupted") or not upload.job_id:
            raise UploadRequestError(f"upload {upload_id} is {upload.state}; nothing to resume")
        self._set(upload, state="uploading", error=None)
        threading.Thread(target=self._resume, args=(upload,), name=f"resume-{upload_id}", daemon=True).start()
        return upload

    def _progress(self, upload: Upload) -> Any:
        return lambda sent, total: self._set(upload, sent=sent, total=total, save=False)

    def _submit(self, upload: Upload) -> None:
        def created(job: Created) -> None:
            self._set(upload, job_id=job.job["job_id"], total=job.archive.size, estimate=job.job.get("estimate"))

        try:
            self.client.create_task(self.photos(upload), upload.options, self._progress(upload), on_created=created)
        except (CloudError, OSError) as error:
            self._set(upload, state="failed", error=str(error))
            return
        self._set(upload, state="done", sent=upload.total)

    def _resume(self, upload: Upload) -> None:
        assert upload.job_id is not None
        try:
            self.client.task(upload.job_id).resume_upload(self.photos(upload), self._progress(upload))
        except (CloudError, OSError) as error:
            self._set(upload, state="failed", error=str(error))
            return
        self._set(upload, state="done", sent=upload.total)

    def _set(self, upload: Upload, save: bool = True, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(upload, key, value)
            self._uploads[upload.upload_id] = upload
        if save:
            self._save(upload)

    def _save(self, upload: Upload) -> None:
        with self._lock:
            self._uploads[upload.upload_id] = upload
            state = self.root / upload.upload_id / STATE_FILE
            partial = state.with_name(f".{STATE_FILE}.partial")
            partial.write_text(json.dumps(asdict(upload), indent=2))
            partial.replace(state)


class _Limited:
    """A request body read up to its Content-Length."""

    def __init__(self, reader: Any, length: int) -> None:
        self._reader, self._left = reader, length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        block = self._reader.read(self._left if size < 0 else min(size, self._left))
        self._left -= len(block)
        return block
