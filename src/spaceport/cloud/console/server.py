"""The console's server on 127.0.0.1: the static page, and a small JSON API in front of the jobs API that it signs
(SigV4, with the credentials of the command's profile) so that no credential ever reaches the browser.

What the page may call, all under ``/api/``, each with the page's token in ``X-Spaceport-Console`` (a page of
another site can neither read the token nor send the header without a CORS grant, which is never given) and a
``Host`` of 127.0.0.1 or localhost (a rebound DNS name is refused):

- ``GET /api/jobs`` and ``GET /api/jobs/{id}``: the API's job views without presigned links (a presigned URL names
  the access key that signed it), ``POST /api/jobs/{id}/cancel`` and ``/retry``;
- ``POST /api/uploads`` (a name and options), ``PUT /api/uploads/{id}/files/{path}`` (each photo, or one zip),
  ``POST /api/uploads/{id}/start`` and ``/resume``, ``GET /api/uploads`` (``uploads.py``);
- ``POST /api/jobs/{id}/open``: download the finished job, every file verified, and serve it in our viewer on a
  port of its own; answers the viewer's URL.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from spaceport.cloud.client.errors import ApiError, CloudError
from spaceport.cloud.client.tasks import Client
from spaceport.cloud.console.uploads import UploadRequestError, Uploads

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}  # fmt: skip
TOKEN_HEADER = "X-Spaceport-Console"  # noqa: S105  # nosec B105: a header name
# The page's scripts, styles and requests come from this server only.
CONTENT_SECURITY_POLICY = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'"
JOB_PATH = re.compile(r"^/api/jobs/(?P<job_id>[a-z0-9-]{3,40})(?:/(?P<action>cancel|retry|open))?$")
UPLOAD_PATH = re.compile(r"^/api/uploads/(?P<upload_id>[a-z0-9]{12})/(?P<action>start|resume|files/(?P<path>.+))$")
# What of a job view the page never gets: presigned links name the credentials that signed them.
PRIVATE_VIEW_KEYS = ("downloads", "expires_in", "upload")
LIST_LIMIT = 50


def page_view(view: dict[str, Any]) -> dict[str, Any]:
    """A job view for the page: everything but presigned links."""
    return {key: value for key, value in view.items() if key not in PRIVATE_VIEW_KEYS}


class Console:
    """What the console serves: the client (its API calls, uploads and downloads) and the open scenes' viewers.

    Args:
        client: the deployment and the caller the console acts for.
        work_dir: staged uploads (``uploads/``) and downloaded scenes (``scenes/``).
        description: a line naming the deployment, for the page's header (no credentials).
    """

    def __init__(self, client: Client, work_dir: Path, description: str) -> None:
        self.client, self.work_dir, self.description = client, work_dir, description
        self.token = secrets.token_urlsafe(24)
        self.uploads = Uploads(work_dir / "uploads", client)
        self._viewers: dict[str, Any] = {}
        self._opening = threading.Lock()

    def jobs(self) -> dict[str, Any]:
        page = self.client.api.list_jobs(limit=LIST_LIMIT)
        return {"jobs": [page_view(view) for view in page["jobs"]], "uploads": self.uploads.views()}

    def job(self, job_id: str, action: str | None, body: dict[str, Any]) -> dict[str, Any]:
        task = self.client.task(job_id)
        if action == "cancel":
            return page_view(task.cancel())
        if action == "retry":
            return page_view(task.restart(body.get("from_stage") or None))
        if action == "open":
            return {"url": self.open_scene(job_id)}
        return page_view(task.info())

    def open_scene(self, job_id: str) -> str:
        """Download the job's scene (once; every file checked against its manifest) and serve it in our viewer."""
        from spaceport.cloud.client.download import JOB_FILE
        from spaceport.viewer.server import server_url, start_server

        with self._opening:
            if job_id not in self._viewers:
                folder = self.work_dir / "scenes" / job_id
                if not (folder / "scene.sog").is_file() or not (folder / JOB_FILE).is_file():
                    self.client.task(job_id).download_assets(folder)
                self._viewers[job_id] = start_server(folder)
            return server_url(self._viewers[job_id])

    def close(self) -> None:
        for server in self._viewers.values():
            server.shutdown()
            server.server_close()

    def index(self) -> bytes:
        page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        return (
            page.replace("__CONSOLE_TOKEN__", self.token).replace("__DEPLOYMENT__", _escape(self.description)).encode()
        )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class ConsoleHandler(BaseHTTPRequestHandler):
    """One request to the console."""

    console: Console
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.console.index(), STATIC_TYPES[".html"])
        elif path.removeprefix("/static/") in _static_files():
            name = path.removeprefix("/static/")
            self._send(HTTPStatus.OK, (STATIC_DIR / name).read_bytes(), STATIC_TYPES[Path(name).suffix])
        else:
            self._api("GET", path)

    def do_POST(self) -> None:  # noqa: N802
        self._api("POST", urlsplit(self.path).path)

    def do_PUT(self) -> None:  # noqa: N802
        self._api("PUT", urlsplit(self.path).path)

    def _api(self, method: str, path: str) -> None:
        if not self._trusted():
            self._drain()
            self._json(HTTPStatus.FORBIDDEN, {"message": "not a request of the console's page"})
            return
        try:
            self._json(HTTPStatus.OK, self._route(method, path))
        except UploadRequestError as error:
            self._json(HTTPStatus.BAD_REQUEST, {"message": str(error)})
        except ApiError as error:
            self._json(HTTPStatus(error.status) if 400 <= error.status < 600 else HTTPStatus.BAD_GATEWAY,
                       {"message": str(error)})  # fmt: skip
        except CloudError as error:
            self._json(HTTPStatus.BAD_GATEWAY, {"message": str(error)})
        except LookupError:
            self._json(HTTPStatus.NOT_FOUND, {"message": f"no {method} {path}"})

    def _route(self, method: str, path: str) -> dict[str, Any]:
        console = self.console
        if path == "/api/jobs" and method == "GET":
            return console.jobs()
        if path == "/api/uploads" and method == "GET":
            return {"uploads": console.uploads.views()}
        if path == "/api/uploads" and method == "POST":
            body = self._body()
            return console.uploads.create(str(body.get("name", "")), body.get("options") or {}).view()
        upload = UPLOAD_PATH.match(path)
        if upload and method == "PUT" and upload["path"]:
            length = int(self.headers.get("Content-Length") or 0)
            console.uploads.stage_file(upload["upload_id"], unquote(upload["path"]), self.rfile, length)
            return {"staged": unquote(upload["path"])}
        if upload and method == "POST" and upload["action"] in ("start", "resume"):
            self._drain()
            action = console.uploads.start if upload["action"] == "start" else console.uploads.resume
            return action(upload["upload_id"]).view()
        job = JOB_PATH.match(path)
        if job and (method == "GET") == (job["action"] is None):
            return console.job(job["job_id"], job["action"], self._body() if method == "POST" else {})
        raise LookupError(path)

    def _trusted(self) -> bool:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        token = self.headers.get(TOKEN_HEADER) or ""
        return host in (HOST, "localhost") and secrets.compare_digest(token, self.console.token)

    def _body(self) -> dict[str, Any]:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError as error:
            raise UploadRequestError("the body is not JSON") from error
        return body if isinstance(body, dict) else {}

    def _drain(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body).encode(), "application/json")

    def _send(self, status: HTTPStatus, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def _static_files() -> set[str]:
    return {path.name for path in STATIC_DIR.iterdir() if path.suffix in STATIC_TYPES and path.name != "index.html"}


def start_console(console: Console, port: int = 0) -> ThreadingHTTPServer:
    """Serve ``console`` on 127.0.0.1 from a daemon thread; ``shutdown()`` and ``server_close()`` stop it."""
    handler = type("BoundConsoleHandler", (ConsoleHandler,), {"console": console})
    server = ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="spaceport-console", daemon=True).start()
    return server
