"""Webhooks on the local stack: a receiver that is down when a job changes gets every change later, retried through
the delayed queue, signed with the stack's secret and in order; the job record says how each delivery went."""

from __future__ import annotations

import io
import time
import zipfile

import requests

from spaceport.cloud.jobs import JobsTable
from spaceport.cloud.local_stack.stack import WEBHOOK_SECRET_VALUE, LocalStack
from spaceport.cloud.local_stack.template import JOBS_TABLE
from spaceport.cloud.webhook_signature import verify
from tests.webhook_receiver import Receiver, free_port

from .conftest import client_for


def no_photos() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("notes.txt", "these are not photos")
    return archive.getvalue()


def wait_for(condition, timeout_s: float = 60.0, what: str = ""):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what or condition} not after {timeout_s} s")


def test_a_receiver_that_is_down_gets_every_change_later_signed_and_in_order(tmp_path, monkeypatch):
    # GIVEN a stack whose default webhook is a receiver that is down, retrying from 1 s on
    monkeypatch.setenv("SPACEPORT_CLOUD_CONFIG", str(tmp_path / "cloud.json"))
    port = free_port()
    hooks = f"http://127.0.0.1:{port}/hooks/spaceport"
    environment = {"DEFAULT_WEBHOOK_URL": hooks, "WEBHOOK_RETRY_BASE_SECONDS": "1"}
    with LocalStack(tmp_path / "stack", allow_docker=False, environment=environment) as stack:
        # WHEN a job is uploaded whose archive holds no photo: it is queued, validated, and fails
        job = client_for(stack).api.create_job({"upload": "zip", "archive_bytes": len(no_photos()), "photo_count": 8})
        assert requests.put(job["upload"]["url"], data=no_photos(), timeout=30).status_code == 200
        table = JobsTable(JOBS_TABLE)
        wait_for(lambda: table.get(job["job_id"])["status"] == "FAILED", what="the job failing")
        # THEN the first change was tried and tried again while nobody listened
        first = wait_for(lambda: (table.get(job["job_id"]).get("webhook_events") or [{}])[0].get("attempts", 0) >= 2,
                         what="a second attempt")  # fmt: skip
        assert first
        pending = table.get(job["job_id"])["webhook_events"]
        assert [event["state"] for event in pending] == ["pending"] * 3
        assert "ConnectionRefusedError" in pending[0]["last_result"]
        # WHEN the receiver comes up at that address
        with Receiver(port=port) as receiver:
            received = receiver.wait_for(3, timeout_s=60)
            time.sleep(2)  # nothing more arrives: each change once
            # THEN it got every change, in order, each once and signed with the stack's secret
            assert [delivery.event["status"] for delivery in receiver.deliveries] == ["QUEUED", "RUNNING", "FAILED"]
            for sequence, delivery in enumerate(received, start=1):
                verify(WEBHOOK_SECRET_VALUE, delivery.headers["Spaceport-Signature"], delivery.body)
                assert delivery.event["sequence"] == sequence and delivery.event["job_id"] == job["job_id"]
        # AND the record says each was delivered, the first after the attempts it took
        events = table.get(job["job_id"])["webhook_events"]
        assert [event["state"] for event in events] == ["delivered"] * 3
        assert events[0]["attempts"] >= 3 and events[0]["last_result"] == "HTTP 204"
        # AND GET /jobs/{id} shows the deliveries
        view = client_for(stack).task(job["job_id"]).info()
        assert [item["state"] for item in view["webhook"]["deliveries"]] == ["delivered"] * 3
