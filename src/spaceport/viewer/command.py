"""``spaceport view DIR``: serve a run's output folder on localhost and open the viewer in a browser."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from spaceport.viewer import SCENE_FILE, EngineMissingError, engine_path
from spaceport.viewer.server import serve_until_stopped, server_url, start_server

DEFAULT_PORT = 8080


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path, help=f"a run's output folder (holds {SCENE_FILE})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port on 127.0.0.1; 0 picks a free one")
    parser.add_argument("--no-browser", action="store_true", help="print the URL without opening a browser")


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serve until interrupted (Ctrl-C) or until ``stop`` is set (tests).

    Returns:
        0 after a clean stop; 2 when the folder has no scene, the port is taken or the engine is missing.
    """
    directory: Path = args.directory
    if not (directory / SCENE_FILE).is_file():
        print(f"error: {directory / SCENE_FILE} does not exist; pass a run's output folder", file=sys.stderr)
        return 2
    try:
        engine_path()
        server = start_server(directory, args.port)
    except EngineMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot listen on 127.0.0.1:{args.port}: {error.strerror}; try --port 0", file=sys.stderr)
        return 2
    url = server_url(server)
    print(f"Serving {directory} at {url} (Ctrl-C to stop)", flush=True)
    serve_until_stopped(server, url, not args.no_browser, stop)
    return 0
