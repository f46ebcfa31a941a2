"""The local server behind ``spaceport view`` (loopback HTTP only, no browser)."""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from spaceport.viewer import ENGINE_FILE, write_viewer
from spaceport.viewer.command import configure, run
from spaceport.viewer.server import server_url, start_server


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # only http://127.0.0.1 here
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], b""


@pytest.fixture
def served(tmp_path: Path):
    (tmp_path / "scene.sog").write_bytes(b"PK\x05\x06" + bytes(18))
    (tmp_path / "meta.json").write_text("{}")
    server = start_server(tmp_path)
    yield tmp_path, server_url(server)
    server.shutdown()
    server.server_close()


def test_serves_the_run_folder_with_types_browsers_accept(served: tuple[Path, str]) -> None:
    # GIVEN a run folder with its viewer written
    run_dir, url = served
    write_viewer(run_dir, None)

    # WHEN the browser asks for the page, the module scripts and the scene
    # THEN each comes back with a type the browser accepts (a module script must be JavaScript)
    expected = {
        "": "text/html",
        "static/viewer.js": "text/javascript",
        f"static/{ENGINE_FILE}": "text/javascript",
        "scene.sog": "application/octet-stream",
        "meta.json": "application/json",
    }
    for path, content_type in expected.items():
        status, served_type, body = _get(url + path)
        assert (status, served_type.split(";")[0]) == (200, content_type), path
        assert body == (run_dir / (path or "index.html")).read_bytes()
    # AND it listens on loopback only
    assert url.startswith("http://127.0.0.1:")


def test_serves_the_viewer_from_the_package_when_the_folder_has_only_a_scene(served: tuple[Path, str]) -> None:
    # GIVEN a folder holding only scene.sog
    run_dir, url = served

    # WHEN the browser asks for the page and its scripts
    page = _get(url)
    script = _get(url + "static/viewer.js")
    engine = _get(url + f"static/{ENGINE_FILE}")

    # THEN the package provides them, nothing is written into the folder, and other paths are still 404
    assert page[0] == 200 and b'"camera": null' in page[2]
    assert script[:2] == (200, "text/javascript; charset=utf-8")
    assert engine[0] == 200 and len(engine[2]) > 1_000_000
    assert sorted(p.name for p in run_dir.iterdir()) == ["meta.json", "scene.sog"]
    assert _get(url + "static/other.js")[0] == 404


def test_view_command_serves_until_stopped(served: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN `spaceport view DIR --port 0 --no-browser`
    run_dir, _ = served
    args = _parse_view_args([str(run_dir), "--port", "0", "--no-browser"])
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run(args, stop)))

    # WHEN it runs
    thread.start()
    url = _wait_for_url(capsys)

    # THEN it prints a loopback URL that serves the page, and exits 0 when stopped
    assert _get(url)[0] == 200
    stop.set()
    thread.join(timeout=10)
    assert result == [0]


def test_view_command_refuses_a_folder_without_a_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a folder with no scene.sog
    args = _parse_view_args([str(tmp_path), "--no-browser"])

    # WHEN viewed THEN the command fails with a message naming the missing file
    assert run(args) == 2
    assert "scene.sog does not exist" in capsys.readouterr().err


def _parse_view_args(argv: list[str]) -> argparse.Namespace:
    # The command's own parser, as `spaceport view` builds it (cli.py calls configure on a subparser).
    parser = argparse.ArgumentParser(prog="spaceport view")
    configure(parser)
    return parser.parse_args(argv)


def _wait_for_url(capsys: pytest.CaptureFixture[str], timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for word in capsys.readouterr().out.split():
            if word.startswith("http://127.0.0.1:"):
                return word
        time.sleep(0.05)
    raise AssertionError("spaceport view printed no URL")


def test_a_folder_with_georef_json_and_no_page_opens_upright(served: tuple[Path, str]) -> None:
    # GIVEN a folder holding a scene and its georef.json, z up, but no page (a downloaded cloud job, a copied SOG)
    run_dir, url = served
    (run_dir / "georef.json").write_text(json.dumps({"method": "upright", "georeferenced": False, "warnings": []}))

    # WHEN the browser asks for the page
    status, _, page = _get(url)

    # THEN the page orbits about +z, the frame georef.json gives, instead of SfM's own (looking up from below)
    config = json.loads(page.split(b'id="spaceport-config">')[1].split(b"</script>")[0])
    assert status == 200 and config["frame"]["up"] == [0.0, 0.0, 1.0]
