"""The console end to end in headless Chromium, on a local stack that runs the real stages: the sample scene's photo
folder dropped on the page becomes a job, the page shows its stage and the training step as it rises, `status
--watch` shows the same step rising beside it, and the finished scene opens in our viewer; no credential reaches the
browser. The screenshots (desktop and phone while it trains, the scene opened) are the ones RESULTS.md keeps."""

from __future__ import annotations

import re
import threading
import time

import pytest

from spaceport.cli import main
from spaceport.cloud.console.server import Console, start_console
from spaceport.cloud.local_stack.stack import USER
from spaceport.train.config import preset_config

from .conftest import client_for
from .console_page import DESKTOP, PHONE, Traffic, drop_folder, launch, open_console, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

STEP = re.compile(r"step (\d+) / (\d+)")
WATCHED_STEP = re.compile(r"RUNNING train \(running\), step (\d+)/(\d+)")
STAGES = ("validate", "sfm", "train", "compress")
# The fast preset's steps on the local stack's CPU stand-in.
FAST_STEPS = preset_config("fast", "cpu").iterations
JOB_TIMEOUT_S = 420
# Where Open scene's tab goes: our viewer, on a port of its own (the tab opens on about:blank at the click).
VIEWER_URL = re.compile(r"^http://127\.0\.0\.1:\d+/")


@pytest.fixture
def console(pipeline_stack, tmp_path):
    app = Console(client_for(pipeline_stack), tmp_path / "console", "local stack · us-east-1")
    server = start_console(app)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    app.close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        opened = launch(playwright)
        yield opened
        opened.close()


def watch_status(job_id: str, api_url: str) -> tuple[threading.Thread, dict[str, int]]:
    """`spaceport cloud status JOB --watch` in a thread (it prints to this test's captured stderr); its exit code."""
    outcome: dict[str, int] = {}
    command = ["cloud", "status", job_id, "--watch", "--interval", "1", "--api-url", api_url, "--region", "us-east-1"]
    thread = threading.Thread(target=lambda: outcome.setdefault("exit", main(command)), daemon=True)
    thread.start()
    return thread, outcome


def follow_card(page, job_id: str, on_training, timeout_s: float) -> tuple[list[str], list[tuple[int, int]]]:
    """Read the job's card as a person would, twice a second, until the job ends: the stages it showed running, in
    order, and each training step it showed, of its total; ``on_training`` is called once, at the first step."""
    card = page.locator(f'article.job[data-job-id="{job_id}"]')
    stages: list[str] = []
    steps: list[tuple[int, int]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = card.get_attribute("data-status")
        if status in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return stages, steps
        shown = card.locator(".stage").inner_text()
        stage = shown.removesuffix(" running") if shown.endswith(" running") else None
        if stage and stage not in stages:
            stages.append(stage)
        if card.locator(".live").count():
            match = STEP.search(card.locator(".live").inner_text())
            if match and (not steps or (int(match[1]), int(match[2])) != steps[-1]):
                steps.append((int(match[1]), int(match[2])))
                if len(steps) == 1:
                    on_training()
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {card.get_attribute('data-status')} after {timeout_s} s")


def test_a_dropped_folder_trains_with_its_live_step_shown_and_the_finished_scene_opens(
    pipeline_stack, console, browser, sample_scene, shots_dir, capsys
):
    # GIVEN the console serving a local stack that runs jobs, its page open on a desktop and on a phone
    traffic = Traffic()
    desktop = open_console(browser, console, DESKTOP, traffic)
    phone = open_console(browser, console, PHONE, traffic)

    # WHEN the sample scene's folder of photos is dropped on the desktop page, with the fast preset
    desktop.select_option('select[name="preset"]', "fast")
    drop_folder(desktop, sample_scene.images_dir)
    # THEN its upload becomes a job, which `status --watch` follows from here on
    job_id = wait_until(desktop, "() => (window.spaceportConsole.uploads.find((u) => u.job_id) || {}).job_id", 120)
    watcher, watched = watch_status(job_id, pipeline_stack.api_url)

    def screenshots_while_training() -> None:
        desktop.screenshot(path=str(shots_dir / "console-training-desktop.png"), full_page=True)
        phone.screenshot(path=str(shots_dir / "console-training-phone.png"), full_page=True)

    # AND the card shows each stage as it runs, and during training the step rising, of the preset's steps
    stages, shown = follow_card(desktop, job_id, screenshots_while_training, JOB_TIMEOUT_S)
    assert desktop.locator(f'article.job[data-job-id="{job_id}"]').get_attribute("data-status") == "SUCCEEDED"
    assert [stage for stage in STAGES if stage in stages] == stages and {"sfm", "train"} <= set(stages)
    steps = [step for step, _ in shown]
    assert {total for _, total in shown} == {FAST_STEPS}, shown
    assert len(steps) >= 2 and steps == sorted(steps) and 0 < steps[0] < steps[-1] <= FAST_STEPS, shown
    # AND on the phone the card fits the screen's width
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width} px)"
    # AND `status --watch` printed a line for each new step, rising, and ended with the job's success
    watcher.join(timeout=60)
    printed = capsys.readouterr().err
    watched_steps = [int(match[1]) for match in WATCHED_STEP.finditer(printed)]
    assert watched.get("exit") == 0 and len(watched_steps) >= 2, printed[-3000:]
    assert watched_steps == sorted(watched_steps) and watched_steps[0] < watched_steps[-1] <= FAST_STEPS
    assert {int(match[2]) for match in WATCHED_STEP.finditer(printed)} == {FAST_STEPS}

    # WHEN the finished job's scene is opened from its card (its tab's traffic recorded from its first request)
    desktop.context.on("page", traffic.watch)
    with desktop.context.expect_page(timeout=120_000) as opening:
        desktop.locator(f'article.job[data-job-id="{job_id}"]').get_by_role("button", name="Open scene").click()
    scene = opening.value
    # THEN the tab, opened blank at the click, goes to our viewer once the scene is downloaded, and renders it
    scene.wait_for_url(VIEWER_URL, timeout=180_000)
    wait_until(scene, "() => ['rendered', 'error'].includes(window.spaceportViewer?.state)", 120)
    assert scene.evaluate("window.spaceportViewer.state") == "rendered"
    scene.screenshot(path=str(shots_dir / "console-scene-opened.png"))
    desktop.screenshot(path=str(shots_dir / "console-succeeded-desktop.png"), full_page=True)
    # AND no credential reached any of the pages or their traffic, and nothing left 127.0.0.1
    for secret in USER[:2]:
        for page in (desktop, phone, scene):
            assert secret not in page.content()
        assert not traffic.mentions(secret)
    assert traffic.hosts == {"127.0.0.1"} and not traffic.errors, traffic.errors
