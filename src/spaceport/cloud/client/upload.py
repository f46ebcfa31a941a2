"""Sending an archive to the presigned URLs the jobs API hands out: one PUT, or the parts of a multipart upload in
parallel, then the completion.

A presigned URL cannot go through boto3's transfer manager; each part is a plain HTTP PUT here, retried on its own:
a broken connection or a 5xx is sent again to the same URL, a 403 (the URL expired, or the credentials that signed
it did) gets a fresh URL from ``POST /jobs/{id}/upload/parts`` first. The completion lists every part's ETag in
``CompleteMultipartUpload`` XML. ``resume`` asks the API which parts S3 holds (ListParts on the service's side),
checks that they are these photos' bytes (an ETag is the MD5 of its part in an SSE-S3 bucket), and sends only the
others: the upload's state lives in S3, so it survives the client.

Progress counts the bytes handed to the network, per part the most any attempt sent, so it only ever rises.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import requests

from spaceport.cloud.client.api import JobsApi
from spaceport.cloud.client.errors import ApiError, UploadError

ProgressCallback = Callable[[int, int], None]
PARALLEL_PARTS = 4
ATTEMPTS = 8
BACKOFF_S = 0.5
BACKOFF_MAX_S = 8.0
TIMEOUT_S = 300
READ_BLOCK = 256 * 1024
PLAIN_MD5 = re.compile(r'^"?([0-9a-f]{32})"?$')


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int


def plan_parts(size: int, part_bytes: int) -> list[Part]:
    count = max(1, math.ceil(size / part_bytes))
    return [Part(n, (n - 1) * part_bytes, min(part_bytes, size - (n - 1) * part_bytes)) for n in range(1, count + 1)]


class _Progress:
    """Bytes sent so far, never going back: per part the most any attempt sent."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self._callback = total, callback
        self._best: dict[int, int] = {}
        self._reported = -1
        self._lock = threading.Lock()

    def sent(self, part: int, count: int) -> None:
        with self._lock:
            if count <= self._best.get(part, 0):
                return
            self._best[part] = count
            done = sum(self._best.values())
            if done > self._reported and self._callback is not None:
                self._reported = done
                self._callback(done, self.total)


class _PartReader:
    """One part of the archive as a request body, counting what the HTTP client reads."""

    def __init__(self, path: Path, part: Part, on_read: Callable[[int], None]) -> None:
        self._file = path.open("rb")
        self._file.seek(part.offset)
        self._left, self._read, self._on_read = part.size, 0, on_read
        self._size = part.size

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        size = self._left if size is None or size < 0 else min(size, self._left)
        block = self._file.read(size)
        self._left -= len(block)
        self._read += len(block)
        self._on_read(self._read)
        return block

    def close(self) -> None:
        self._file.close()


def _backoff(attempt: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_S * 2 ** (attempt - 1))


class Uploader:
    """Uploads one job's archive, with the API at hand to re-sign URLs."""

    def __init__(
        self, api: JobsApi, job_id: str, archive: Path, progress: ProgressCallback | None = None,
        parallel: int = PARALLEL_PARTS,
    ) -> None:  # fmt: skip
        self.api, self.job_id, self.archive = api, job_id, archive
        self.size = archive.stat().st_size
        self.parallel = parallel
        self._progress = _Progress(self.size, progress)
        self._local = threading.local()
        self.parts_sent: list[int] = []

    def upload(self, upload: dict[str, Any]) -> None:
        """Send the archive to the URLs of ``upload`` (POST /jobs's ``upload``), and complete a multipart upload."""
        if upload["kind"] == "zip":
            self._send(Part(1, 0, self.size), upload["url"], multipart=False)
            return
        if upload["kind"] != "zip-multipart":
            raise UploadError(f"job {self.job_id} expects an upload of kind {upload['kind']}, not an archive")
        self._multipart(upload, held={})

    def resume(self) -> list[int]:
        """Send what S3 does not hold yet of this job's upload; returns the part numbers sent.

        Raises:
            UploadError: the job awaits no upload any more, or S3 holds other bytes than this archive's.
        """
        upload = self.api.sign_parts(self.job_id)
        if upload["kind"] == "zip":
            self._send(Part(1, 0, self.size), upload["url"], multipart=False)
            return [1]
        held = {item["part_number"]: item["etag"] for item in upload.get("uploaded_parts", [])}
        self._check_held(upload, held)
        self._multipart(upload, held)
        return sorted(self.parts_sent)

    def _check_held(self, upload: dict[str, Any], held: dict[int, str]) -> None:
        parts = plan_parts(self.size, upload["part_bytes"])
        expected = len(upload["parts"]) + len(held)
        if len(parts) != expected:
            raise UploadError(
                f"{self.archive} is {self.size} bytes ({len(parts)} parts of {upload['part_bytes']}), but job "
                f"{self.job_id} awaits {expected} parts: these are not the photos it was created for"
            )
        for part in parts:
            digest = PLAIN_MD5.match(held.get(part.number, ""))
            if digest and self._md5(part) != digest.group(1):
                raise UploadError(
                    f"S3 holds another part {part.number} for job {self.job_id} than {self.archive}'s: resume with "
                    "the same photos (a folder is zipped the same way each time), or submit them as a new job"
                )

    def _md5(self, part: Part) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        with self.archive.open("rb") as reader:
            reader.seek(part.offset)
            left = part.size
            while left:
                block = reader.read(min(left, 1 << 20))
                digest.update(block)
                left -= len(block)
        return digest.hexdigest()

    def _multipart(self, upload: dict[str, Any], held: dict[int, str]) -> None:
        parts = {part.number: part for part in plan_parts(self.size, upload["part_bytes"])}
        for number in held:
            self._progress.sent(number, parts[number].size)
        etags = dict(held)
        urls = {item["part_number"]: item["url"] for item in upload["parts"]}
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="part") as pool:
            futures = {number: pool.submit(self._send, parts[number], url) for number, url in sorted(urls.items())}
            for number, future in futures.items():
                etags[number] = future.result()
        self._complete(upload["complete_url"], etags)

    def _http(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _send(self, part: Part, url: str, multipart: bool = True) -> str:
        """PUT one part (or the whole archive); its ETag."""
        last = ""
        for attempt in range(1, ATTEMPTS + 1):
            reader = _PartReader(self.archive, part, lambda count, n=part.number: self._progress.sent(n, count))
            try:
                response = self._http().put(url, data=reader, timeout=TIMEOUT_S)
            except requests.RequestException as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if response.status_code == 200:
                    self.parts_sent.append(part.number)
                    return response.headers["ETag"]
                last = f"S3 answered {response.status_code}: {response.text[:300]}"
                if response.status_code == 403:
                    url = self._fresh_url(part.number if multipart else None)
                elif response.status_code < 500 and "RequestTimeout" not in response.text:
                    break  # a refusal that the same request would meet again
            finally:
                reader.close()
            time.sleep(_backoff(attempt))
        raise UploadError(f"part {part.number} of job {self.job_id} was not accepted ({last})")

    def _fresh_url(self, number: int | None) -> str:
        upload = self.api.sign_parts(self.job_id, [number] if number is not None else None)
        return upload["url"] if number is None else upload["parts"][0]["url"]

    def _complete(self, url: str, etags: dict[int, str]) -> None:
        """CompleteMultipartUpload with each part's ETag; S3 may answer 200 with an error in the body."""
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{escape(etag)}</ETag></Part>" for n, etag in sorted(etags.items())
        )
        body = f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()
        last = ""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._http().post(url, data=body, timeout=TIMEOUT_S)
            except requests.RequestException as error:
                last = str(error)
            else:
                if response.status_code == 200 and "<Error>" not in response.text:
                    return
                last = f"S3 answered {response.status_code}: {response.text[:300]}"
                if response.status_code == 403:
                    url = self.api.sign_parts(self.job_id, [])["complete_url"]
                elif response.status_code == 404 and self._already_complete():
                    return  # an earlier attempt completed it; its answer was lost
            time.sleep(_backoff(attempt))
        raise UploadError(f"the upload of job {self.job_id} could not be completed ({last})")

    def _already_complete(self) -> bool:
        try:
            return self.api.get_job(self.job_id)["status"] != "AWAITING_UPLOAD"
        except ApiError:
            return False
