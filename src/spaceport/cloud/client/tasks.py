"""The client in pyodm's shape: ``Client.create_task(photos, options, progress)`` returns a ``Task``, whose
``wait_for_completion`` and ``download_assets`` follow the job to a verified scene, raising on failure."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spaceport.cloud.client.api import JobsApi
from spaceport.cloud.client.archive import Archive, prepare_archive
from spaceport.cloud.client.config import Deployment
from spaceport.cloud.client.download import Downloader
from spaceport.cloud.client.errors import TaskCancelledError, TaskFailedError
from spaceport.cloud.client.session import AwsSession
from spaceport.cloud.client.upload import ProgressCallback, Uploader

ENDED = ("SUCCEEDED", "FAILED", "CANCELLED")
StatusCallback = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Created:
    """What POST /jobs answered, and the archive it was made for."""

    job: dict[str, Any]
    archive: Archive


class Client:
    """A deployment, called as the caller of ``session``."""

    def __init__(self, deployment: Deployment, session: AwsSession, parallel: int = 4) -> None:
        self.deployment, self.session = deployment, session
        self.api = JobsApi(deployment.api_url, session)
        self.parallel = parallel

    def task(self, job_id: str) -> Task:
        return Task(self, job_id)

    def create_job(self, photos: Path, options: dict[str, Any], work_dir: Path) -> Created:
        """Validate and archive ``photos`` (into ``work_dir``), then create the job: its upload URLs and estimate."""
        archive = prepare_archive(photos, work_dir)
        request = {"upload": "zip", "archive_bytes": archive.size, "photo_count": archive.photo_count, **options}
        return Created(self.api.create_job(request), archive)

    def create_task(
        self, photos: Path, options: dict[str, Any] | None = None, progress_callback: ProgressCallback | None = None,
        on_created: Callable[[Created], None] | None = None,
    ) -> Task:  # fmt: skip
        """Create a job for ``photos`` (a folder or a .zip) and upload them; the job starts when the upload completes.

        Args:
            photos: what to reconstruct; checked by the cloud's own validator first.
            options: job options (``preset``, ``iterations``, ``georef``, ...).
            progress_callback: called with (bytes sent, bytes in all) as they rise.
            on_created: called once the job exists, before the upload (to show its id and estimate).
        """
        with tempfile.TemporaryDirectory(prefix="spaceport-upload-") as scratch:
            created = self.create_job(photos, options or {}, Path(scratch))
            if on_created is not None:
                on_created(created)
            task = Task(self, created.job["job_id"])
            task.upload(created.archive.path, created.job["upload"], progress_callback)
        return task


class Task:
    """One job of the deployment."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.client, self.job_id = client, job_id

    @property
    def api(self) -> JobsApi:
        return self.client.api

    def info(self) -> dict[str, Any]:
        """GET /jobs/{id}: status, stage, queue, cost, figures, failure (and download links once SUCCEEDED)."""
        return self.api.get_job(self.job_id)

    def upload(self, archive: Path, upload: dict[str, Any], progress: ProgressCallback | None = None) -> None:
        Uploader(self.api, self.job_id, archive, progress, self.client.parallel).upload(upload)

    def resume_upload(self, photos: Path, progress: ProgressCallback | None = None) -> list[int]:
        """Send what S3 does not hold yet of this job's upload, from the same photos; the part numbers sent."""
        with tempfile.TemporaryDirectory(prefix="spaceport-upload-") as scratch:
            archive = prepare_archive(photos, Path(scratch))
            return Uploader(self.api, self.job_id, archive.path, progress, self.client.parallel).resume()

    def wait_for_completion(
        self, status_callback: StatusCallback | None = None, interval: float = 5.0, timeout: float | None = None
    ) -> dict[str, Any]:
        """Poll until the job ends; its final view when it SUCCEEDED.

        Raises:
            TaskFailedError: it FAILED (stage and reason attached).
            TaskCancelledError: it was CANCELLED.
            TimeoutError: ``timeout`` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            view = self.info()
            if status_callback is not None:
                status_callback(view)
            if view["status"] in ENDED:
                return raise_for_outcome(view)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.job_id} is still {view['status']} after {timeout} s")
            time.sleep(interval)

    def download_assets(self, out_dir: Path, on_file: Callable[[str], None] | None = None) -> dict[str, Path]:
        """Download the scene (its exports, frame, model and viewer page too) into ``out_dir``, each file verified."""
        return Downloader(self.api, self.job_id, out_dir, on_file).run()

    def cancel(self) -> dict[str, Any]:
        return self.api.cancel(self.job_id)

    def restart(self, from_stage: str | None = None) -> dict[str, Any]:
        """Retry a FAILED or CANCELLED job from ``from_stage`` (default: the stage that failed)."""
        return self.api.retry(self.job_id, from_stage)


def raise_for_outcome(view: dict[str, Any]) -> dict[str, Any]:
    """``view`` when its job SUCCEEDED; raises for FAILED or CANCELLED."""
    if view["status"] == "FAILED":
        raise TaskFailedError(view["job_id"], view.get("failed_stage"), view.get("failure_reason"))
    if view["status"] == "CANCELLED":
        raise TaskCancelledError(view["job_id"])
    return view
