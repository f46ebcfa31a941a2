"""A local static server for a run's output folder, bound to loopback only.

Files come from the folder first. The viewer's own files fall back to the package, so a folder that holds
only ``scene.sog`` (an older run, or a SOG from elsewhere) can be viewed without writing into it.
"""

from __future__ import annotations

import functools
import logging
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from spaceport.viewer import STATIC_DIR, STATIC_FILES, engine_path, render_index

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
# Python's guesses vary with the platform's mime.types: a module script served as anything but
# JavaScript is refused by browsers.
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".sog": "application/octet-stream",
    ".ply": "application/octet-stream",
    ".webp": "image/webp",
}


class ViewerRequestHandler(SimpleHTTPRequestHandler):
    """Serves one folder, with the viewer's page and static files as fallbacks."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        fallback = self._fallback_body()
        if fallback is None:
            super().do_GET()
            return
        body, content_type = fallback
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def end_headers(self) -> None:
        # A re-run rewrites scene.sog under the same name: never let the browser show a stale one.
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def _fallback_body(self) -> tuple[bytes, str] | None:
        """The page or a static file from the package, when the folder lacks it."""
        path = urlsplit(self.path).path
        local = Path(self.translate_path(path))
        if local.is_file() or (local.is_dir() and (local / "index.html").is_file()):
            return None
        if path in ("/", "/index.html"):
            # A folder without its page may still say its frame (georef.json): open it upright.
            from spaceport.local.views import folder_view

            camera, georef = folder_view(Path(self.directory))
            return render_index(camera, georef=georef).encode("utf-8"), MIME_TYPES[".html"]
        name = path.removeprefix("/static/")
        if name in STATIC_FILES:
            source = engine_path() if name.endswith(".mjs") else STATIC_DIR / name
            return source.read_bytes(), MIME_TYPES[Path(name).suffix]
        return None

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s %s", self.address_string(), format % args)


def start_server(directory: Path, port: int = 0) -> ThreadingHTTPServer:
    """Serve ``directory`` on 127.0.0.1 from a daemon thread.

    Args:
        directory: the folder to serve (a run's output folder).
        port: the TCP port; 0 picks a free one (read it from ``server.server_address``).

    Returns:
        The running server; call ``shutdown()`` then ``server_close()`` to stop it.
    """
    handler = functools.partial(ViewerRequestHandler, directory=str(directory))
    server = ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="spaceport-viewer", daemon=True)
    thread.start()
    return server


def server_url(server: ThreadingHTTPServer) -> str:
    """The page's URL for a server from ``start_server``."""
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def serve_until_stopped(server: ThreadingHTTPServer, url: str, open_browser: bool,
                        stop: threading.Event | None = None) -> None:  # fmt: skip
    """Open ``url`` in a browser (unless told not to), then serve until Ctrl-C or ``stop`` is set (tests), and
    close the server."""
    import webbrowser

    if open_browser:
        webbrowser.open(url)
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
