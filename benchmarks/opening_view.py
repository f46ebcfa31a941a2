"""The viewer's opening view: what a user sees first, measured and photographed.

The page opens where the local run puts its first camera (:func:`spaceport.local.views.start_camera`): for an
upright scene, obliquely from above and outside the capture path. Two figures per scene:

- ``outside_opacity``: the mean accumulated opacity, over that view, of the Gaussians whose centres lie outside the
  scene's bounds: the box holding every SfM point, i.e. everywhere structure from motion found a surface. A splat
  that explains its photos with the scene has little there; a veil of sky-painting Gaussians near the capture path,
  or a dome of fog around the scene, shows as opacity here. (A box of the central percentiles was tried first: on
  the drone capture it cut off real ground, which then counted as fog.) The baked sky shell is not counted: it is
  the background;
- a screenshot of our viewer in headless Chromium (the browser tests' flags), the page's own first frame.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from spaceport.train.backend import Renderer
    from spaceport.train.data import CameraView

WIDTH, HEIGHT = 480, 360
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                  "--ignore-gpu-blocklist", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-dev-shm-usage"]  # fmt: skip
RENDER_TIMEOUT_MS = 120_000


def opening_camera(sfm_dir: Path) -> dict[str, Any]:
    """The viewer's first camera for the sfm stage's output, as the local run writes it into the page."""
    from spaceport.local.views import start_camera
    from spaceport.sfm.georef import GEOREF_FILE, read_georef

    return start_camera(sfm_dir, read_georef(sfm_dir / GEOREF_FILE))


def camera_view(camera: dict[str, Any], width: int = WIDTH, height: int = HEIGHT) -> CameraView:
    """A render-only view (black image) of a viewer camera (position, target, up, vertical fov in degrees)."""
    import torch

    from spaceport.train.data import CameraView

    position, target, up = (np.asarray(camera[key], dtype=np.float64) for key in ("position", "target", "up"))
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    viewmat = np.eye(4)
    viewmat[:3, :3] = np.stack([right, down, forward])
    viewmat[:3, 3] = -viewmat[:3, :3] @ position
    focal = 0.5 * height / math.tan(math.radians(camera["fov"]) / 2)
    K = np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    as_tensor = lambda array: torch.as_tensor(array, dtype=torch.float32)  # noqa: E731
    return CameraView("opening", torch.zeros((height, width, 3)), as_tensor(K), as_tensor(viewmat), width, height)


def scene_bounds(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scene's box: the smallest one holding every SfM point."""
    return points.min(axis=0), points.max(axis=0)


def outside_opacity(params: dict[str, torch.Tensor], view: CameraView, bounds: tuple[np.ndarray, np.ndarray],
                    renderer: Renderer) -> float:  # fmt: skip
    """Mean accumulated opacity over ``view`` of the Gaussians centred outside ``bounds``."""
    import torch

    low, high = (torch.as_tensor(edge, dtype=torch.float32) for edge in bounds)
    means = params["means"].detach()
    outside = ~((means >= low) & (means <= high)).all(dim=1)
    if not bool(outside.any()):
        return 0.0
    with torch.no_grad():
        subset = {name: params[name].detach()[outside] for name in ("means", "quats", "log_scales", "opacity_logits")}
        colours = torch.zeros((int(outside.sum()), 3))
        result = renderer(subset["means"], subset["quats"], subset["log_scales"], subset["opacity_logits"], colours,
                          view.viewmat, view.K, view.width, view.height, torch.zeros(3))  # fmt: skip
    return float(result.alpha.mean())


def screenshot(run_dir: Path, target: Path) -> None:
    """Open ``run_dir``'s viewer page (index.html beside scene.sog) in headless Chromium and save its first frame.

    Raises:
        RuntimeError: the page reported an error, or Chromium is missing.
    """
    from playwright.sync_api import sync_playwright

    from spaceport.viewer.server import server_url, start_server

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    server = start_server(run_dir)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(server_url(server))
            page.wait_for_function("['rendered', 'error'].includes(window.spaceportViewer?.state)",
                                   timeout=RENDER_TIMEOUT_MS)  # fmt: skip
            state = page.evaluate("({...window.spaceportViewer})")
            if state.get("state") != "rendered":
                raise RuntimeError(f"the viewer failed on {run_dir}: {state}")
            page.evaluate("document.querySelectorAll('#viewer-message, #viewer-help, #viewer-help-show')"
                          ".forEach(e => e.hidden = true)")  # fmt: skip
            _settle(page)
            from PIL import Image

            Image.open(io.BytesIO(page.screenshot())).convert("RGB").save(target)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()


def _settle(page: Any, attempts: int = 50) -> None:
    """Wait until two screenshots agree: the page sorts splats in a worker some frames after loading."""
    previous = page.screenshot()
    for _ in range(attempts):
        current = page.screenshot()
        if current == previous:
            return
        previous = current
