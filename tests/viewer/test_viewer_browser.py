"""The viewer page in a real browser: Debian's chromium, headless, WebGL2 on SwiftShader, driven by playwright.

Needs ``apt-get install -y chromium`` (``make test`` installs it) and ``make setup`` (the engine in the package
and splat-transform in node_modules). A missing browser fails these tests: a skipped browser test would let
a broken viewer pass CI.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from spaceport.viewer import BACKGROUND, camera_from_pose, write_viewer
from spaceport.viewer.server import server_url, start_server

from .viewer_scene import BLUE, GREEN, RED, sphere_cloud, write_scene_sog

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]

CHROMIUM = Path("/usr/bin/chromium")
# From NOTES.md: WebGL2 without a GPU, and no traffic of the browser's own.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
WIDTH, HEIGHT = 480, 360
SPLAT_COUNT = 4000
SPHERE_RADIUS = 1.0
CAMERA_DISTANCE = 4.0
# A COLMAP camera 4 units in front of the sphere, looking along +z with y down (R = I, t = (0, 0, 4)).
FOCAL_Y, IMAGE_HEIGHT = 300.0, 480
RENDER_TIMEOUT_MS = 30_000
# The page's text and buttons over the canvas.
TEXT_OVERLAYS = "#viewer-message, #viewer-help, #viewer-help-show"


class Viewer:
    """A loaded viewer page and what the browser did while loading it."""

    def __init__(self, page, console_errors: list[str], request_urls: list[str]) -> None:
        self.page = page
        self.console_errors = console_errors
        self.request_urls = request_urls

    def state(self) -> dict:
        return self.page.evaluate("({...window.spaceportViewer})")

    def screenshot(self) -> np.ndarray:
        """The page as an (H, W, 3) uint8 array, with the text overlays hidden (they are not the render)."""
        self.page.evaluate(f"document.querySelectorAll('{TEXT_OVERLAYS}').forEach(e => e.hidden = true)")
        return np.asarray(Image.open(io.BytesIO(self.page.screenshot())).convert("RGB"))

    def settled_screenshot(self, attempts: int = 50) -> np.ndarray:
        """A screenshot once the view stops changing: the page renders on demand, and a depth sort
        finishes in a worker some frames after an interaction."""
        previous = self.screenshot()
        for _ in range(attempts):
            current = self.screenshot()
            if np.array_equal(current, previous):
                return current
            previous = current
        raise AssertionError(f"the view still changed after {attempts} screenshots")


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get update && apt-get install -y chromium`")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("run")
    write_scene_sog(out_dir, sphere_cloud(SPLAT_COUNT, SPHERE_RADIUS))
    camera = camera_from_pose(np.eye(3), np.array([0.0, 0.0, CAMERA_DISTANCE]), FOCAL_Y, IMAGE_HEIGHT, CAMERA_DISTANCE)
    write_viewer(out_dir, camera)
    return out_dir


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@contextmanager
def _open_viewer(browser, run_dir: Path) -> Iterator[Viewer]:
    """Serve ``run_dir``, open its page and wait until the page reports 'rendered' or 'error'."""
    server = start_server(run_dir)
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    try:
        console_errors: list[str] = []
        request_urls: list[str] = []
        page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
        page.on("pageerror", lambda error: console_errors.append(str(error)))
        page.on("request", lambda request: request_urls.append(request.url))
        page.goto(server_url(server))
        page.wait_for_function(
            "['rendered', 'error'].includes(window.spaceportViewer?.state)", timeout=RENDER_TIMEOUT_MS
        )
        yield Viewer(page, console_errors, request_urls)
    finally:
        page.close()
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def viewer(browser, run_dir: Path) -> Iterator[Viewer]:
    with _open_viewer(browser, run_dir) as opened:
        yield opened


def _object_mask(image: np.ndarray) -> np.ndarray:
    background = np.round(np.array(BACKGROUND) * 255)
    return np.abs(image.astype(np.int16) - background).max(axis=2) > 40


def _colour_fraction(image: np.ndarray, mask: np.ndarray, colour: tuple[float, float, float]) -> float:
    """The fraction of masked pixels closest to ``colour`` among the scene's three colours."""
    palette = np.array([RED, BLUE, GREEN]) * 255
    nearest = np.argmin(np.linalg.norm(image[mask][:, None, :].astype(float) - palette[None], axis=2), axis=1)
    return float(np.mean(nearest == [RED, BLUE, GREEN].index(colour)))


def test_renders_scene_from_training_camera(viewer: Viewer) -> None:
    # GIVEN a run folder with a 4000-Gaussian sphere (red top, blue lower left, green lower right in the
    # camera's image) and a viewer whose initial camera is a COLMAP camera 4 units in front of it
    # WHEN the page has loaded in headless chromium
    state = viewer.state()
    image = viewer.screenshot()

    # THEN the page reports a render of every splat, with no console errors and no request off loopback
    assert state["state"] == "rendered", state
    assert state["splats"] == SPLAT_COUNT
    assert viewer.console_errors == []
    hosts = {urlsplit(url.removeprefix("blob:")).hostname for url in viewer.request_urls}
    assert hosts == {"127.0.0.1"}, viewer.request_urls
    # AND the corners show the background, the sphere sits at the centre with the size the camera implies
    mask = _object_mask(image)
    assert not mask[:20, :20].any() and not mask[-20:, -20:].any()
    rows, cols = np.nonzero(mask)
    assert abs(rows.mean() - HEIGHT / 2) < 8 and abs(cols.mean() - WIDTH / 2) < 8
    fov_half_tan = 0.5 * IMAGE_HEIGHT / FOCAL_Y
    expected_radius_px = np.tan(np.arcsin(SPHERE_RADIUS / CAMERA_DISTANCE)) / fov_half_tan * HEIGHT / 2
    radius_px = np.sqrt(mask.sum() / np.pi)
    assert abs(radius_px - expected_radius_px) < 0.12 * expected_radius_px, (radius_px, expected_radius_px)
    # AND it is the right way up and not mirrored: the camera's up vector reached lookAt
    centre_r, centre_c, quarter = int(rows.mean()), int(cols.mean()), int(expected_radius_px / 2)
    top = mask.copy()
    top[centre_r - quarter // 2 :] = False
    lower_left = mask.copy()
    lower_left[: centre_r + quarter // 2, :] = False
    lower_left[:, centre_c - quarter // 2 :] = False
    lower_right = mask.copy()
    lower_right[: centre_r + quarter // 2, :] = False
    lower_right[:, : centre_c + quarter // 2] = False
    assert _colour_fraction(image, top, RED) > 0.9
    assert _colour_fraction(image, lower_left, BLUE) > 0.9
    assert _colour_fraction(image, lower_right, GREEN) > 0.9


def test_mouse_orbits_and_wheel_zooms(viewer: Viewer) -> None:
    # GIVEN the page showing the sphere from the training camera
    before = viewer.settled_screenshot()
    before_mask = _object_mask(before)
    before_blue = _colour_fraction(before, before_mask, BLUE)

    # WHEN the user drags to the right across the canvas
    viewer.page.mouse.move(WIDTH / 2, HEIGHT / 2)
    viewer.page.mouse.down()
    viewer.page.mouse.move(WIDTH / 2 + 80, HEIGHT / 2, steps=4)
    viewer.page.mouse.up()
    orbited = viewer.settled_screenshot()

    # THEN the sphere turns with the mouse: its left (blue) side comes round to the front
    orbited_mask = _object_mask(orbited)
    assert _colour_fraction(orbited, orbited_mask, BLUE) > before_blue + 0.1

    # WHEN the user scrolls the wheel towards the scene
    viewer.page.mouse.wheel(0, -300)
    zoomed = viewer.settled_screenshot()

    # THEN the camera moves closer and the sphere covers more of the view
    assert _object_mask(zoomed).sum() > 1.3 * orbited_mask.sum()
    assert viewer.state()["state"] == "rendered"
    assert viewer.console_errors == []


def test_reports_an_error_when_the_scene_is_missing(browser, tmp_path: Path) -> None:
    # GIVEN a viewer page whose scene.sog was never written (a failed run)
    write_viewer(tmp_path, None)

    # WHEN the page loads
    with _open_viewer(browser, tmp_path) as viewer:
        state = viewer.state()

        # THEN it reports the error instead of waiting forever, and says so on the page
        assert state["state"] == "error"
        assert "scene.sog" in state["error"]
        assert viewer.page.locator("#viewer-message").is_visible()


def _relative_luminance(rgb: np.ndarray) -> float:
    """WCAG 2's relative luminance of an sRGB colour given as 0-255 values."""
    channels = rgb / 255.0
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


def _contrast_ratio(first: np.ndarray, second: np.ndarray) -> float:
    lighter, darker = sorted((_relative_luminance(first), _relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _css_colour(text: str) -> tuple[np.ndarray, float]:
    """``rgb(r, g, b)`` or ``rgba(r, g, b, a)`` as computed by the browser: the colour and its alpha."""
    values = [float(value) for value in text[text.index("(") + 1 : -1].split(",")]
    return np.array(values[:3]), values[3] if len(values) == 4 else 1.0


def test_help_line_is_readable_on_any_scene_and_can_be_hidden(browser, run_dir: Path) -> None:
    # GIVEN a freshly loaded page, whose help line shows at first
    with _open_viewer(browser, run_dir) as viewer:
        page = viewer.page
        help_line, show_help = page.locator("#viewer-help"), page.locator("#viewer-help-show")
        assert help_line.is_visible() and not show_help.is_visible()

        # WHEN its colours are read
        style = page.evaluate("(({color, backgroundColor}) => ({color, backgroundColor}))"
                              "(getComputedStyle(document.getElementById('viewer-help')))")  # fmt: skip
        text, _ = _css_colour(style["color"])
        backdrop, alpha = _css_colour(style["backgroundColor"])

        # THEN the text sits on a backdrop of its own that keeps WCAG AA contrast (4.5:1) over the brightest and
        # the darkest scene behind it
        for scene in (np.array([255.0, 255.0, 255.0]), np.zeros(3)):
            seen_backdrop = alpha * backdrop + (1 - alpha) * scene
            assert _contrast_ratio(text, seen_backdrop) >= 4.5, (style, scene)

        # WHEN the user presses H, THEN the help hides and a button to bring it back shows; H again brings it back
        page.keyboard.press("h")
        assert not help_line.is_visible() and show_help.is_visible()
        page.keyboard.press("h")
        assert help_line.is_visible() and not show_help.is_visible()

        # WHEN the user clicks the help's hide button, THEN it hides; the show button brings it back
        page.locator("#viewer-help-hide").click()
        assert not help_line.is_visible()
        show_help.click()
        assert help_line.is_visible()
        assert viewer.console_errors == []


# A georeferenced scene (x east, y north, z up, metres), seen from the south, 30 degrees above the horizon.
GEO_DISTANCE, GEO_ELEVATION_DEG, GEO_FOV = 6.0, 30.0, 50.0
GEOREF = {"method": "gps"}
MAP_OVERLAYS = "#viewer-scale, #viewer-north"


@pytest.fixture(scope="module")
def georeferenced_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("georeferenced")
    write_scene_sog(out_dir, sphere_cloud(SPLAT_COUNT, SPHERE_RADIUS))
    elevation = np.radians(GEO_ELEVATION_DEG)
    position = [0.0, -GEO_DISTANCE * np.cos(elevation), GEO_DISTANCE * np.sin(elevation)]
    camera = {"position": position, "target": [0.0, 0.0, 0.0], "up": [0.0, 0.0, 1.0], "fov": GEO_FOV}
    write_viewer(out_dir, camera, GEOREF)
    return out_dir


def test_scene_without_georef_shows_no_scale_bar_or_north_arrow(viewer: Viewer) -> None:
    # GIVEN the page of a scene in SfM's own frame (no georef.json)
    # THEN it shows neither a scale bar nor a north arrow: its units and directions mean nothing
    assert not viewer.page.locator("#viewer-scale").is_visible()
    assert not viewer.page.locator("#viewer-north").is_visible()
    assert viewer.state()["scaleBar"] is None


def test_georeferenced_scene_orbits_about_world_up_with_scale_bar_and_north_arrow(
    browser, georeferenced_run_dir: Path
) -> None:
    # GIVEN a georeferenced scene's page, its camera south of the scene looking north and down
    with _open_viewer(browser, georeferenced_run_dir) as viewer:
        page = viewer.page
        state = viewer.state()
        assert state["state"] == "rendered", state

        # THEN it shows a scale bar of a round length (1, 2 or 5 x 10^k metres) whose pixels are that length at
        # the target's depth, as the camera's field of view and the window's height imply
        assert page.locator("#viewer-scale").is_visible() and page.locator("#viewer-north").is_visible()
        metres, pixels = state["scaleBar"]["metres"], state["scaleBar"]["pixels"]
        mantissa = metres / 10 ** np.floor(np.log10(metres))
        assert min(abs(mantissa - step) for step in (1, 2, 5)) < 1e-9
        metres_per_pixel = 2 * GEO_DISTANCE * np.tan(np.radians(GEO_FOV / 2)) / HEIGHT
        assert metres / pixels == pytest.approx(metres_per_pixel, rel=0.01)
        assert 48 < pixels <= 120
        bar_width = page.evaluate("document.getElementById('viewer-scale-bar').getBoundingClientRect().width")
        assert bar_width == pytest.approx(pixels, abs=1.0)
        assert page.locator("#viewer-scale-label").inner_text().endswith(" m") or "cm" in page.locator(
            "#viewer-scale-label").inner_text()  # fmt: skip
        # AND the north arrow points up the screen (the camera looks north)
        assert abs(state["northDegrees"]) < 1.0
        # AND the orbit axis is world up, and the view has no roll
        assert state["view"]["orbitAxis"] == pytest.approx([0.0, 0.0, 1.0])
        assert abs(state["view"]["right"][2]) < 1e-6

        # WHEN the user drags right, then down
        page.mouse.move(WIDTH / 2, HEIGHT / 2)
        page.mouse.down()
        page.mouse.move(WIDTH / 2 + 100, HEIGHT / 2, steps=4)
        page.mouse.up()
        turned = viewer.state()
        page.mouse.move(WIDTH / 2, HEIGHT / 2)
        page.mouse.down()
        page.mouse.move(WIDTH / 2, HEIGHT / 2 + 60, steps=3)
        page.mouse.up()
        pitched = viewer.state()

        # THEN the camera turned 30 degrees about world up at the same height, and the arrow turned with it
        assert turned["view"]["position"][2] == pytest.approx(state["view"]["position"][2], abs=1e-4)
        assert abs(abs(turned["northDegrees"] - state["northDegrees"]) - 30.0) < 0.5
        # AND neither move rolled the view: its right vector stays horizontal
        assert abs(turned["view"]["right"][2]) < 1e-6 and abs(pitched["view"]["right"][2]) < 1e-6
        assert pitched["view"]["position"][2] != pytest.approx(turned["view"]["position"][2], abs=1e-3)
        assert viewer.console_errors == []


SKY = (0.35, 0.6, 0.95)


def test_a_scene_with_its_sky_baked_in_shows_the_sky_and_keeps_the_camera_inside_it(browser, tmp_path: Path) -> None:
    # GIVEN the sphere inside a baked sky shell of one blue, and a page told that the scene carries its sky
    import torch

    from spaceport.gaussians import concatenate
    from spaceport.train.background import SkyModel, bake_sky_shell

    sky = SkyModel(degree=0, learning_rate=0.01, device="cpu")
    with torch.no_grad():
        sky.coefficients[0] = (torch.tensor(SKY) - 0.5) / 0.28209479177387814
    shell = bake_sky_shell(sky, np.zeros(3), radius=40.0, sh_rest=0, count=2048)
    write_scene_sog(tmp_path, concatenate([sphere_cloud(SPLAT_COUNT, SPHERE_RADIUS), shell]))
    camera = camera_from_pose(np.eye(3), np.array([0.0, 0.0, CAMERA_DISTANCE]), FOCAL_Y, IMAGE_HEIGHT, CAMERA_DISTANCE)
    write_viewer(tmp_path, camera, sky_shell=True)

    with _open_viewer(browser, tmp_path) as viewer:
        # WHEN the page opens
        opened = viewer.settled_screenshot()
        sky_pixels = np.abs(opened.astype(np.int16) - np.round(np.array(SKY) * 255)).max(axis=2) < 30

        # THEN the sky fills what the sphere does not cover, not the page's background
        assert sky_pixels[:20].mean() > 0.95 and sky_pixels.mean() > 0.5
        sphere = ~sky_pixels
        # AND WHEN the user zooms far out, the camera stops well inside the shell: the sky stays behind the sphere
        for _ in range(20):
            viewer.page.mouse.wheel(0, 3000)
        zoomed_out = viewer.settled_screenshot()
        far_sky = np.abs(zoomed_out.astype(np.int16) - np.round(np.array(SKY) * 255)).max(axis=2) < 30
        assert far_sky[:20].mean() > 0.95 and 0 < (~far_sky).sum() < sphere.sum()
        assert viewer.console_errors == []
