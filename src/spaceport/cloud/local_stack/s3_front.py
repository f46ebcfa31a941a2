"""What stands between a client and moto's S3: the rules S3 enforces on presigned URLs that moto does not, and the
faults a test asks for, each one applied to the requests it names.

moto's server accepts a presigned URL at any age. S3 refuses one past ``X-Amz-Date + X-Amz-Expires`` with 403
AccessDenied "Request has expired"; so does this front. The faults are what a long upload meets on a real network:
a part whose connection drops, URLs that stop working partway (S3 answers 403 once the credentials that signed
them expire, whatever ``X-Amz-Expires`` said), and a download whose bytes arrive changed.
"""

from __future__ import annotations

import socket
import threading
import time
from calendar import timegm
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
AMZ_DATE = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class PartRequest:
    """One PUT of a part of a multipart upload, and what it was answered (0: the connection was dropped)."""

    upload_id: str
    part_number: int
    status: int


@dataclass
class S3Faults:
    """Faults to inject, and a record of the part uploads the front saw.

    Attributes:
        drop_parts: part numbers whose next PUT loses its connection halfway through the body (once each).
        expire_after_parts: once this many part PUTs have succeeded, every URL signed until then answers 403, as
            S3 does when the credentials that signed them expire.
        corrupt_keys: key suffixes whose next GET arrives with one byte changed (once each).
        part_seconds: how long each part takes to arrive, at least (a slow link).
        part_requests: every part PUT seen, in order.
    """

    drop_parts: set[int] = field(default_factory=set)
    expire_after_parts: int | None = None
    corrupt_keys: set[str] = field(default_factory=set)
    part_seconds: float = 0.0
    part_requests: list[PartRequest] = field(default_factory=list)
    _signed_before: float | None = None
    _in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def settle(self, timeout_s: float = 30.0) -> None:
        """Wait until no part request is being answered (one a killed client left in flight may still land)."""
        deadline = time.monotonic() + timeout_s
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)

    def parts_sent(self, upload_id: str) -> list[int]:
        """The part numbers S3 accepted for ``upload_id``, in the order they arrived."""
        with self._lock:
            return [r.part_number for r in self.part_requests if r.upload_id == upload_id and r.status == 200]

    def take_drop(self, part_number: int) -> bool:
        with self._lock:
            if part_number in self.drop_parts:
                self.drop_parts.discard(part_number)
                return True
            return False

    def take_corruption(self, key: str) -> bool:
        with self._lock:
            hit = next((suffix for suffix in self.corrupt_keys if key.endswith(suffix)), None)
            if hit is not None:
                self.corrupt_keys.discard(hit)
            return hit is not None

    def record(self, request: PartRequest) -> None:
        with self._lock:
            self.part_requests.append(request)
            accepted = sum(1 for r in self.part_requests if r.status == 200)
            if self.expire_after_parts is not None and accepted >= self.expire_after_parts:
                # X-Amz-Date has whole seconds: every URL signed in this second or before stops working.
                self._signed_before = float(int(time.time()) + 1)
                self.expire_after_parts = None

    def expired_by_fault(self, signed_at: float) -> bool:
        with self._lock:
            return self._signed_before is not None and signed_at < self._signed_before


def _error(start_response: Callable[..., Any], status: str, code: str, message: str) -> list[bytes]:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body.encode()]


class S3Front:
    """WSGI middleware over moto's server for S3's presigned requests: expiry, then the faults."""

    def __init__(self, app: WsgiApp, faults: S3Faults) -> None:
        self._app, self.faults = app, faults

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = {key: values[0] for key, values in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if "X-Amz-Signature" not in query or "/s3/aws4_request" not in query.get("X-Amz-Credential", ""):
            return self._app(environ, start_response)
        method = environ["REQUEST_METHOD"]
        part = method == "PUT" and "partNumber" in query and "uploadId" in query
        signed_at = timegm(time.strptime(query["X-Amz-Date"], AMZ_DATE))
        if time.time() > signed_at + int(query.get("X-Amz-Expires", "0")) or self.faults.expired_by_fault(signed_at):
            if part:
                environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))  # S3 reads the body it refuses
                self.faults.record(PartRequest(query["uploadId"], int(query["partNumber"]), 403))
            return _error(start_response, "403 Forbidden", "AccessDenied", "Request has expired")
        if part:
            return self._part(environ, start_response, query["uploadId"], int(query["partNumber"]))
        if method == "GET" and self.faults.take_corruption(environ.get("PATH_INFO", "")):
            return self._corrupted(environ, start_response)
        return self._app(environ, start_response)

    def _part(self, environ: dict[str, Any], start_response: Callable[..., Any], upload_id: str, number: int) -> Any:
        with self.faults._lock:
            self.faults._in_flight += 1
        try:
            return self._answer_part(environ, start_response, upload_id, number)
        finally:
            with self.faults._lock:
                self.faults._in_flight -= 1

    def _answer_part(
        self, environ: dict[str, Any], start_response: Callable[..., Any], upload_id: str, number: int
    ) -> Any:
        if self.faults.take_drop(number):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            environ["wsgi.input"].read(length // 2)
            # A connection lost mid-body: the client sees a reset, never an answer.
            connection = environ["werkzeug.socket"]
            connection.shutdown(socket.SHUT_RDWR)
            self.faults.record(PartRequest(upload_id, number, 0))
            start_response("400 Bad Request", [("Content-Length", "0")])
            return [b""]
        time.sleep(self.faults.part_seconds)
        seen: dict[str, int] = {}

        def recording_start(status: str, headers: list, *args: Any) -> Any:
            seen["status"] = int(status.split()[0])
            return start_response(status, headers, *args)

        answer = list(self._app(environ, recording_start))
        self.faults.record(PartRequest(upload_id, number, seen.get("status", 500)))
        return answer

    def _corrupted(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, *args: Any) -> Any:
            captured.update(status=status, headers=headers)
            return lambda data: None

        body = bytearray(b"".join(self._app(environ, capture)))
        if body:
            body[len(body) // 2] ^= 0x01
        start_response(captured["status"], captured["headers"])
        return [bytes(body)]
