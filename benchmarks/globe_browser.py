"""A tileset on the globe in CesiumJS 1.145 (npm ``cesium``, served from 127.0.0.1), in headless Chromium.

The page (``globe_page.html``) has no imagery, terrain or ion; the harness refuses every request that leaves
127.0.0.1 and reports it. The camera is an east-north-up pose about the scene's origin, which the page turns into
ECEF with CesiumJS's own ``Transforms.eastNorthUpToFixedFrame`` (not our root transform, which is what is checked).
:class:`EnuCamera` also projects east-north-up points to pixels as a pinhole camera does, for where things must land.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CESIUM_BUILD = ROOT / "node_modules" / "cesium" / "Build" / "Cesium"
PAGE = Path(__file__).resolve().parent / "globe_page.html"
CHROMIUM = Path("/usr/bin/chromium")
SETTLED_FRAMES = 3
WATCH_S = 20.0
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                  "--ignore-gpu-blocklist", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-dev-shm-usage"]  # fmt: skip


@dataclass(frozen=True)
class EnuCamera:
    """A pinhole camera in the scene's east-north-up metres.

    Attributes:
        position, target, up: where it is, what it looks at, and its up direction (east, north, up).
        fov: vertical field of view, degrees.
    """

    position: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov: float = 50.0

    def axes(self) -> np.ndarray:
        """(3, 3) rows: the camera's right, down and forward directions in ENU."""
        forward = np.subtract(self.target, self.position).astype(np.float64)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, self.up)
        right /= np.linalg.norm(right)
        return np.stack([right, np.cross(forward, right), forward])

    def focal(self, height: int) -> float:
        return 0.5 * height / math.tan(math.radians(self.fov) / 2)

    def project(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """(N, 2) pixel coordinates (x right, y down, pixel centres at half-integers) of ENU points."""
        local = (np.asarray(points, dtype=np.float64) - self.position) @ self.axes().T
        focal = self.focal(height)
        return np.stack([width / 2 + focal * local[:, 0] / local[:, 2],
                         height / 2 + focal * local[:, 1] / local[:, 2]], axis=1)  # fmt: skip

    def viewmat(self) -> np.ndarray:
        """(4, 4) world-to-camera (x right, y down, z forward), as the training renderer takes it."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.axes()
        matrix[:3, 3] = -self.axes() @ np.asarray(self.position, dtype=np.float64)
        return matrix


@dataclass
class GlobeFrame:
    """What the page showed for one camera: the canvas (None when not waited for) and the page's account of it."""

    image: np.ndarray | None
    state: dict[str, Any]
    seconds: float


@dataclass
class GlobeSession:
    """Frames taken, every request the page made (with those refused for leaving 127.0.0.1), and the console's
    errors while it showed the frames (those of the ``outside_urls`` probes apart)."""

    frames: list[GlobeFrame] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    probe_errors: list[str] = field(default_factory=list)


def page_html(origin: dict[str, float], camera: EnuCamera, maximum_screen_space_error: float) -> str:
    config = {"latitude": origin["latitude"], "longitude": origin["longitude"], "height": origin["height"],
              "camera": asdict(camera), "maximumScreenSpaceError": maximum_screen_space_error}  # fmt: skip
    return PAGE.read_text(encoding="utf-8").replace("__CONFIG__", json.dumps(config))


@contextmanager
def served_globe(tiles_dir: Path, html: str) -> Iterator[str]:
    """A folder with the page, CesiumJS's build and the tiles (linked), served on 127.0.0.1; yields its URL."""
    from spaceport.viewer.server import server_url, start_server

    if not (CESIUM_BUILD / "Cesium.js").is_file():
        raise FileNotFoundError(f"{CESIUM_BUILD} is missing: run `make setup` (npm ci installs cesium)")
    with tempfile.TemporaryDirectory(prefix="spaceport-globe-") as scratch:
        folder = Path(scratch)
        (folder / "index.html").write_text(html, encoding="utf-8")
        os.symlink(CESIUM_BUILD, folder / "cesium")
        os.symlink(tiles_dir.resolve(), folder / "tiles")
        server = start_server(folder)
        try:
            yield server_url(server)
        finally:
            server.shutdown()
            server.server_close()


def _canvas(page: Any) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(page.locator("#globe canvas").screenshot())).convert("RGB"))


def _settled(page: Any, attempts: int = 80, pause_s: float = 0.25) -> np.ndarray:
    """The canvas once, for ``SETTLED_FRAMES`` frames drawn since the camera last moved, every tile is loaded and
    the splats drawn are the selected tiles' sorted for this view, and two captures in a row agree. (SwiftShader
    on a busy CPU can take longer than a pause for one frame: without counting frames since the move, the last
    frame before it, unchanged on screen, passed for settled.)"""
    previous = _canvas(page)
    for _ in range(attempts):
        time.sleep(pause_s)
        current = _canvas(page)
        settled = page.evaluate(f"window.globe.settledFrames >= {SETTLED_FRAMES}")
        if np.array_equal(current, previous) and settled:
            return current
        previous = current
    raise AssertionError(f"the globe still changed after {attempts} captures")


def _watched(page: Any, state: dict[str, Any]) -> None:
    """Adds to ``state`` how many frames the page drew in the ``WATCH_S`` after it (no canvas is captured)."""
    time.sleep(WATCH_S)
    state["framesAfterWatch"] = page.evaluate("window.globe.frames") - state["frames"]


STATE_FIELDS = ("state", "error", "frames", "firstFrameMs", "firstFrameTiles", "loaded", "visible", "tilesLoaded",
                "splats")  # fmt: skip


def _state(page: Any) -> dict[str, Any]:
    return page.evaluate("(names) => Object.fromEntries(names.map((name) => [name, window.globe[name]]))", STATE_FIELDS)


def view_globe(tiles_dir: Path, origin: dict[str, float], cameras: list[EnuCamera], width: int = 480,
               height: int = 360, errors: list[float] | None = None, timeout_s: float = 120.0,
               outside_urls: tuple[str, ...] = (), settle: bool = True) -> GlobeSession:  # fmt: skip
    """Open ``tiles_dir/tileset.json`` in CesiumJS, look from each camera in turn, and capture each settled view.

    Args:
        tiles_dir: a tileset folder (``tileset.json`` and its content).
        origin: ``latitude``, ``longitude`` (degrees) and ``height`` (metres above the ellipsoid) of the frame's
            origin, as the root transform should place it.
        cameras: the poses, the first one set before the tileset loads (its first frame is timed).
        errors: for each camera, the tileset's maximum screen-space error in pixels (CesiumJS's default 16); a
            small one makes the viewer refine to the leaves.
        outside_urls: fetched by the page after the last view, to show that the harness refuses other hosts (they
            must end up in ``refused``).
        settle: capture each view once it has settled; without, only the page's account after the first frame
            that draws something, and after ``WATCH_S`` more (its ``framesAfterWatch``), with no canvas: a view
            that SwiftShader takes longer than a screenshot's 30 s to draw a frame of never settles.

    Raises:
        RuntimeError: Chromium is missing, or the page failed.
    """
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    session = GlobeSession()
    errors = errors or [16.0] * len(cameras)
    with served_globe(tiles_dir, page_html(origin, cameras[0], errors[0])) as url:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": height})
                console_sinks = [session.console_errors]
                page.on("console", lambda m: m.type == "error" and console_sinks[-1].append(m.text))
                page.on("pageerror", lambda error: console_sinks[-1].append(str(error)))

                def route(request_route: Any) -> None:
                    session.requests.append(request_route.request.url)
                    if urlsplit(request_route.request.url).hostname in ("127.0.0.1", "localhost"):
                        request_route.continue_()
                    else:
                        session.refused.append(request_route.request.url)
                        request_route.abort()

                page.route("**/*", route)
                for index, camera in enumerate(cameras):
                    started = time.monotonic()
                    if index == 0:
                        page.goto(url)
                    else:
                        page.evaluate("([camera, error]) => { window.globe.tileset.maximumScreenSpaceError = error; "
                                      "window.globe.look(camera); }", [asdict(camera), errors[index]])  # fmt: skip
                    page.wait_for_function("['rendered', 'error'].includes(window.globe.state)",
                                           timeout=timeout_s * 1000)  # fmt: skip
                    state = _state(page)
                    if state["state"] == "error":
                        raise RuntimeError(f"the globe page failed: {state['error']}")
                    image = _settled(page) if settle else _watched(page, state)
                    session.frames.append(GlobeFrame(image, state if not settle else _state(page),
                                                     round(time.monotonic() - started, 2)))  # fmt: skip
                console_sinks.append(session.probe_errors)
                for outside in outside_urls:
                    page.evaluate("(url) => fetch(url).then(() => 'fetched', () => 'refused')", outside)
            finally:
                browser.close()
    return session


def save_image(image: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)


def cesium_version() -> str:
    """Which CesiumJS renders here (its package.json's version)."""
    package = CESIUM_BUILD.parent.parent / "package.json"
    return json.loads(package.read_text(encoding="utf-8"))["version"] if package.is_file() else "missing"
