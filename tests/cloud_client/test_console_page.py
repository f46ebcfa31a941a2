"""The console page in headless Chromium against the local stack, with jobs in every state: what it lists, on a
desktop and on a phone, what cancel and retry do, and that no credential reaches it."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from pathlib import Path

import pytest

from spaceport.cloud.console.server import Console, start_console
from spaceport.cloud.cost import billing_entry
from spaceport.cloud.jobs import JobsTable
from spaceport.cloud.local_stack.cloudwatch import JobTelemetry
from spaceport.cloud.local_stack.stack import USER
from spaceport.cloud.local_stack.template import BUCKET, JOBS_TABLE
from spaceport.cloud.models import JobStatus, Stage
from spaceport.train.progress import METRIC_DEFINITIONS
from spaceport.train.progress import format_progress as train_line

from .conftest import client_for, finished_job, waiting_for
from .console_page import DESKTOP, PHONE, Traffic, launch, open_console, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

TRAIN_JOB = "sp-job-training-train-a1-abcdef"


def seed_jobs(stack, work: Path) -> dict[str, str]:
    """Jobs as the pipeline leaves them: one succeeded (with its SageMaker bill), one training (its metrics
    published by the stand-in), one failed at validate (an upload of no photos), one awaiting its upload."""
    from spaceport.cloud.settings import api_settings

    finished_job(stack, "job-finished", work / "finished")
    description = {"TrainingJobName": "sp-job-finished-train-a1-abcdef", "TrainingJobStatus": "Completed",
                   "ResourceConfig": {"InstanceType": "ml.g5.xlarge"}, "BillableTimeInSeconds": 1510}  # fmt: skip
    table = JobsTable(JOBS_TABLE)
    table.record_billing("job-finished", description["TrainingJobName"],
                         billing_entry(Stage.TRAIN, description, api_settings().prices))  # fmt: skip
    waiting_for("job-training", Stage.TRAIN, TRAIN_JOB)
    telemetry = JobTelemetry(stack.client, TRAIN_JOB, True, METRIC_DEFINITIONS)
    telemetry.line(train_line(275, 0.041, 24.37, 9841))
    telemetry.close()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("notes.txt", "no photos here")
    stack.client("s3").put_object(Bucket=BUCKET, Key="uploads/job-no-photos/photos.zip", Body=archive.getvalue())
    upload = {"kind": "zip", "key": "uploads/job-no-photos/photos.zip"}
    table.claim_for_start("job-no-photos", {"preset": "fast"}, upload)
    table.begin_stage("job-no-photos", Stage.VALIDATE)
    table.finish("job-no-photos", JobStatus.FAILED, "validate", "validate: notes.txt: not a photo (not_an_image)")
    awaiting = client_for(stack).api.create_job({"upload": "zip", "archive_bytes": 4_000_000, "photo_count": 32})
    return {"awaiting": awaiting["job_id"]}


@pytest.fixture
def console(stack, tmp_path):
    app = Console(client_for(stack), tmp_path / "console", "local stack · us-east-1")
    server = start_console(app)
    yield app, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    app.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        opened = launch(playwright)
        yield opened
        opened.close()


def card(page, job_id: str):
    return page.locator(f'article.job[data-job-id="{job_id}"]')


def test_the_console_lists_every_job_and_its_live_progress_on_a_desktop_and_a_phone(
    stack, console, browser, tmp_path, shots_dir
):
    # GIVEN jobs in every state, and the console serving the stack
    seeded = seed_jobs(stack, tmp_path)
    _, url = console
    traffic = Traffic()
    # WHEN the page is opened on a desktop
    page = open_console(browser, url, DESKTOP, traffic)
    page.wait_for_selector('article.job[data-job-id="job-training"] .live')
    # THEN each job shows its status, its stage, the training one its live step, PSNR and Gaussians
    assert card(page, "job-finished").get_attribute("data-status") == "SUCCEEDED"
    assert card(page, "job-finished").locator(".cost").inner_text() == "0.59 USD"
    live = card(page, "job-training").locator(".live").inner_text()
    assert live == "step 275 / 400 · PSNR 24.37 dB · 9,841 Gaussians"
    assert "validate failed" in card(page, "job-no-photos").locator(".stage").inner_text()
    assert card(page, seeded["awaiting"]).get_attribute("data-status") == "AWAITING_UPLOAD"
    assert card(page, "job-finished").get_by_role("button", name="Open scene").is_visible()
    page.screenshot(path=str(shots_dir / "console-seeded-desktop.png"), full_page=True)
    # AND on a phone every job is a card whose progress and buttons fit the width
    phone = open_console(browser, url, PHONE, traffic)
    phone.wait_for_selector('article.job[data-job-id="job-training"] .live')
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width} px)"
    phone.screenshot(path=str(shots_dir / "console-seeded-phone.png"), full_page=True)
    # WHEN the job awaiting its upload is cancelled, and the failed one retried
    card(page, seeded["awaiting"]).get_by_role("button", name="Cancel").click()
    page.wait_for_selector(f'article.job[data-job-id="{seeded["awaiting"]}"][data-status="CANCELLED"]')
    card(page, "job-no-photos").get_by_role("button", name="Retry").click()
    # THEN the cancelled job can be retried in turn, and the retried one ran validate again and failed again
    assert card(page, seeded["awaiting"]).get_by_role("button", name="Retry").is_visible()
    wait_until(page, "() => { const job = window.spaceportConsole.jobs.find((j) => j.job_id === 'job-no-photos');"
               " return job && job.status === 'FAILED' && job.stages.validate.attempts === 2; }")  # fmt: skip
    # AND no credential reached the page or its traffic, and nothing left 127.0.0.1
    for secret in USER[:2]:
        assert secret not in page.content() and not traffic.mentions(secret)
    assert traffic.hosts == {"127.0.0.1"} and not traffic.errors


def test_the_consoles_api_answers_only_its_own_page(stack, console):
    # GIVEN the console, and requests without its token or through another host name
    import requests

    app, url = console
    finished_job(stack, "job-finished", Path(stack.work_dir) / "finished")
    token = {"X-Spaceport-Console": app.token}
    # WHEN the API is called THEN only the page's own requests (its token, a loopback Host) are answered
    assert requests.get(url + "api/jobs", timeout=10).status_code == 403
    assert requests.get(url + "api/jobs", headers={**token, "Host": "evil.example:80"}, timeout=10).status_code == 403
    answer = requests.get(url + "api/jobs/job-finished", headers=token, timeout=10)
    # AND a finished job's view reaches the page without its presigned links (they name the signing key)
    assert answer.status_code == 200 and answer.json()["status"] == "SUCCEEDED"
    assert "downloads" not in answer.json() and USER[0] not in answer.text
    # AND a staged file may not climb out of its upload's folder
    upload = requests.post(url + "api/uploads", headers=token, json={"name": "x"}, timeout=10).json()
    escape = requests.put(f"{url}api/uploads/{upload['upload_id']}/files/..%2F..%2Fescape.jpg", data=b"x",
                          headers=token, timeout=10)  # fmt: skip
    assert escape.status_code == 400 and not (app.work_dir / "escape.jpg").exists()


def test_an_upload_cut_short_is_resumed_from_the_console_with_only_the_missing_parts(
    stack, console, tmp_path, monkeypatch
):
    # GIVEN photos staged in the console as the page sends them, an archive of three 5 MiB parts, and a link that
    # drops part 2 while the client tries each part once
    from spaceport.cloud.client import upload as client_upload

    from .conftest import noise_photos, pending_uploads, s3_object

    app, _ = console
    photos = noise_photos(tmp_path / "photos", 16)
    staged = app.uploads.create("photos", {"preset": "fast"})
    for path in sorted(photos.iterdir()):
        with path.open("rb") as reader:
            app.uploads.stage_file(staged.upload_id, path.name, reader, path.stat().st_size)
    monkeypatch.setattr(client_upload, "ATTEMPTS", 1)
    stack.faults.drop_parts = {2}
    # WHEN it is sent
    app.uploads.start(staged.upload_id)
    wait_for_state(app, staged.upload_id, "failed")
    # THEN it failed with its job known, so the page offers to resume it
    view = next(item for item in app.uploads.views() if item["upload_id"] == staged.upload_id)
    assert view["resumable"] and view["job_id"] and "part 2" in view["error"]
    # WHEN it is resumed (the link now well)
    monkeypatch.setattr(client_upload, "ATTEMPTS", 8)
    stack.faults.settle()
    sent_before = len(stack.faults.part_requests)
    app.uploads.resume(staged.upload_id)
    wait_for_state(app, staged.upload_id, "done")
    # THEN only the missing part went up again, and S3 holds the archive `submit` would have sent
    again = [request.part_number for request in stack.faults.part_requests[sent_before:] if request.status == 200]
    assert again == [2]
    job_id = view["job_id"]
    from spaceport.cloud.client.archive import prepare_archive

    expected = prepare_archive(photos, tmp_path / "expected").path.read_bytes()
    assert s3_object(stack, f"uploads/{job_id}/photos.zip") == expected and not pending_uploads(stack)


def wait_for_state(app, upload_id: str, state: str, timeout_s: float = 60) -> None:
    done = threading.Event()
    for _ in range(int(timeout_s * 10)):
        if any(item["upload_id"] == upload_id and item["state"] == state for item in app.uploads.views()):
            return
        done.wait(0.1)
    raise AssertionError(f"upload {upload_id} never reached {state}: {json.dumps(app.uploads.views())[:500]}")
