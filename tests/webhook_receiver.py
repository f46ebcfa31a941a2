"""A webhook receiver for tests: an HTTP server on 127.0.0.1 that keeps every POST and answers as told."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Delivery:
    """One POST the receiver got: its headers and exact body."""

    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


def free_port() -> int:
    """A port nothing listens on (yet): a receiver that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Receiver:
    """Start with ``with Receiver() as receiver``; ``receiver.url`` takes the deliveries, ``deliveries`` keeps the
    ones it answered with a 2xx and ``refused`` the others; ``status`` is what it answers (a 5xx refuses), or
    ``answer`` decides per delivery."""

    def __init__(self, port: int = 0, status: int = 204, answer: Callable[[Delivery], int] | None = None) -> None:
        self.status, self.answer = status, answer
        self.deliveries: list[Delivery] = []
        self.refused: list[Delivery] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/spaceport"

    def __enter__(self) -> Receiver:
        threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout_s: float = 60.0) -> list[Delivery]:
        """The deliveries taken, once there are at least ``count`` (fails after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.deliveries) >= count:
                    return list(self.deliveries)
            time.sleep(0.1)
        raise AssertionError(f"{len(self.deliveries)} deliveries after {timeout_s} s, expected {count}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                delivery = Delivery(dict(self.headers.items()), body)
                with receiver._lock:
                    status = receiver.answer(delivery) if receiver.answer else receiver.status
                    (receiver.deliveries if 200 <= status < 300 else receiver.refused).append(delivery)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        return Handler
