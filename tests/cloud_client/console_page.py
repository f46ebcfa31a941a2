"""The console page in headless Chromium (Debian's, driven by playwright, as the viewer's tests do): a recorder of
everything the page sends and receives, and a folder dropped on it as a browser hands a dropped folder over."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.viewer.test_viewer_browser import CHROMIUM, CHROMIUM_FLAGS

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

# A drop event whose DataTransfer holds one folder, as Chromium gives it to the page: items whose
# webkitGetAsEntry() is a directory entry, read in batches through createReader().readEntries(), its files through
# entry.file(). (A page cannot build a DataTransfer that holds a directory; the entries are the browser's API.)
DROP_FOLDER = """
([folder, files]) => {
  const fileEntry = (name, path, file) => ({isFile: true, isDirectory: false, name, fullPath: path,
                                            file: (ok) => setTimeout(() => ok(file))});
  const directory = (name, path, children) => ({isFile: false, isDirectory: true, name, fullPath: path,
    createReader: () => { let given = false;
      return {readEntries: (ok) => setTimeout(() => { ok(given ? [] : children); given = true; })}; }});
  const tree = {};
  for (const [path, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const parts = path.split('/');
    let node = tree;
    for (const part of parts.slice(0, -1)) node = node[part] = node[part] || {};
    node[parts.at(-1)] = new File([bytes], parts.at(-1), {type: 'image/jpeg'});
  }
  const build = (name, path, node) => directory(name, path, Object.entries(node).map(([child, value]) =>
    value instanceof File ? fileEntry(child, `${path}/${child}`, value) : build(child, `${path}/${child}`, value)));
  const root = build(folder, `/${folder}`, tree);
  const transfer = {items: [{kind: 'file', webkitGetAsEntry: () => root}], files: [], types: ['Files']};
  const drop = document.querySelector('#drop');
  for (const type of ['dragover', 'drop']) {
    const event = new Event(type, {bubbles: true, cancelable: true});
    Object.defineProperty(event, 'dataTransfer', {value: transfer});
    drop.dispatchEvent(event);
  }
}
"""


@dataclass
class Traffic:
    """Every request a page made (URL, headers, body) and every response body it received, as text."""

    requests: list[str] = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    hosts: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Any) -> None:
        page.on("request", self._request)
        page.on("response", self._response)
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _request(self, request: Any) -> None:
        # A blob: URL (the viewer's worker) names the page that made it and never leaves the browser.
        self.hosts.add(urlsplit(request.url.removeprefix("blob:")).hostname or request.url)
        body = request.post_data_buffer or b""
        self.requests.append(f"{request.method} {request.url} {request.headers} {body.decode('latin-1')}")

    def _response(self, response: Any) -> None:
        try:
            body = response.body().decode("latin-1")
        except Exception:  # a response without a body (a redirect, an aborted fetch)
            body = ""
        self.responses.append(f"{response.url} {response.headers} {body}")

    def mentions(self, secret: str) -> list[str]:
        return [text[:200] for text in self.requests + self.responses if secret in text]


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)


def drop_folder(page: Any, folder: Path) -> None:
    """Drop ``folder`` (its files, nested folders kept) on the console's drop zone."""
    files = [[path.relative_to(folder).as_posix(), base64.b64encode(path.read_bytes()).decode()]
             for path in sorted(folder.rglob("*")) if path.is_file()]  # fmt: skip
    page.evaluate(DROP_FOLDER, [folder.name, files])


def wait_until(page: Any, function: str, timeout_s: float = 60.0, argument: Any = None) -> Any:
    """Poll ``function`` (JavaScript, given ``argument``) in the page until it returns something truthy; that value.

    Playwright's ``wait_for_function`` evaluates its predicate with ``eval``, which the console's Content Security
    Policy forbids (as it should); ``evaluate`` is not subject to it.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = page.evaluate(function, argument)
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"not true after {timeout_s} s: {function}")


def open_console(browser: Any, url: str, viewport: dict, traffic: Traffic) -> Any:
    """A new page on the console, its traffic recorded, once it has listed the jobs."""
    page = browser.new_page(viewport=viewport)
    traffic.watch(page)
    page.goto(url)
    wait_until(page, "() => window.spaceportConsole && window.spaceportConsole.ready", 30)
    return page
