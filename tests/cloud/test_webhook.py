"""Webhooks: every status change of a job POSTed to its URL, signed with the stack's secret, in order, retried
through a delayed queue while the receiver refuses, and each delivery's outcome kept in the job record."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from spaceport.cloud import notify, webhook
from spaceport.cloud.jobs import JobsTable
from spaceport.cloud.models import JobStatus, Stage
from spaceport.cloud.settings import common_settings, webhook_settings
from spaceport.cloud.webhook_signature import InvalidSignatureError, sign, verify
from tests.webhook_receiver import Receiver

from . import harness
from .harness import REGION
from .test_api import create

SECRET = "receiver-and-stack-share-this"


@pytest.fixture
def hooks(world, monkeypatch):
    """The webhook function's secret and retry queue, as the template deploys them; retries 1 s apart."""
    arn = boto3.client("secretsmanager", region_name=REGION).create_secret(Name="hooks", SecretString=SECRET)["ARN"]
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName="webhook-retries")["QueueUrl"]
    for key, value in {"WEBHOOK_SECRET_ARN": arn, "WEBHOOK_RETRY_QUEUE_URL": queue, "WEBHOOK_RETRY_HOURS": "24",
                       "WEBHOOK_RETRY_BASE_SECONDS": "1", "WEBHOOK_HTTPS_ONLY": "false"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    webhook._secret_cache.clear()
    from spaceport.cloud import settings

    settings.clear_cache()
    return queue


def job_with_webhook(world, url: str) -> str:
    status, body = create(world, body={"upload": "zip", "archive_bytes": 1000, "photo_count": 8, "webhook_url": url})
    assert status == 201, body
    return body["job_id"]


def change(job_id: str, status: JobStatus, stage: Stage | None = None) -> None:
    """A status change as the functions make it: the record first, then notify."""
    table = JobsTable(harness.TABLE)
    if status is JobStatus.QUEUED:
        table.claim_for_start(job_id, table.get(job_id)["options"], {"kind": "zip", "key": "uploads/x.zip"})
    elif status is JobStatus.RUNNING:
        table.begin_stage(job_id, stage or Stage.VALIDATE)
    else:
        table.finish(job_id, status)
    notify.status_change(common_settings(), table.get(job_id))


def invoke(world, event: dict) -> dict:
    return world.handlers["webhook"].lambda_handler(event, harness.FakeContext())


def status_event(job_id: str) -> dict:
    """The EventBridge event notify put on the bus, as the rule delivers it."""
    return {"source": "spaceport.jobs", "detail-type": "Spaceport Job Status Change", "detail": {"job_id": job_id}}


def due_retries(queue: str) -> dict:
    """The retry queue's messages as Lambda's SQS event source hands them over (delays elapsed)."""
    sqs = boto3.client("sqs", region_name=REGION)
    deadline, messages = time.monotonic() + 10, []
    while not messages and time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return {"Records": [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]}


def test_a_signature_verifies_only_with_the_secret_the_body_and_in_time():
    # GIVEN a body signed now
    body, header = b'{"id":"job/1"}', sign(SECRET, b'{"id":"job/1"}')
    # WHEN the receiver checks it THEN the right secret and body pass
    assert abs(verify(SECRET, header, body) - time.time()) < 5
    # AND another secret, a changed body, or a replay ten minutes later are refused
    for secret, received, now in ((SECRET + "x", body, None), (SECRET, body + b" ", None),
                                  (SECRET, body, time.time() + 600)):  # fmt: skip
        with pytest.raises(InvalidSignatureError):
            verify(secret, header, received, now=now)


def test_each_change_is_posted_once_signed_in_order_and_recorded(world, hooks):
    with Receiver() as receiver:
        # GIVEN a job created with a webhook URL, which then changes status three times
        job_id = job_with_webhook(world, receiver.url)
        change(job_id, JobStatus.QUEUED)
        change(job_id, JobStatus.RUNNING)
        change(job_id, JobStatus.SUCCEEDED)
        # WHEN the three status change events invoke the function (the first delivers all three)
        for _ in range(3):
            invoke(world, status_event(job_id))
        # THEN the receiver got each change once, in order, each signed with the stack's secret
        received = receiver.wait_for(3)
        assert [d.event["status"] for d in received] == ["QUEUED", "RUNNING", "SUCCEEDED"]
        assert [d.event["sequence"] for d in received] == [1, 2, 3] and len(receiver.deliveries) == 3
        for delivery in received:
            verify(SECRET, delivery.headers["Spaceport-Signature"], delivery.body)
            assert delivery.event["id"] == f"{job_id}/{delivery.event['sequence']}"
        # AND the record says each was delivered at the first attempt
        events = world.job(job_id)["webhook_events"]
        assert [(e["state"], e["attempts"], e["last_result"]) for e in events] == [("delivered", 1, "HTTP 204")] * 3


def test_a_receiver_that_refuses_gets_the_changes_later_in_order(world, hooks):
    with Receiver(status=503) as receiver:
        # GIVEN a job whose receiver answers 503 when it is queued
        job_id = job_with_webhook(world, receiver.url)
        change(job_id, JobStatus.QUEUED)
        invoke(world, status_event(job_id))
        # THEN the refusal is recorded and a retry is scheduled, one second on
        first = world.job(job_id)["webhook_events"][0]
        assert (first["state"], first["attempts"], first["last_result"]) == ("pending", 1, "HTTP 503")
        # WHEN the job runs while the receiver still refuses THEN the queued change is tried again first, and the
        # running change waits behind it (never overtaking)
        change(job_id, JobStatus.RUNNING)
        invoke(world, status_event(job_id))
        events = world.job(job_id)["webhook_events"]
        assert [(e["state"], e["attempts"]) for e in events] == [("pending", 2), ("pending", 0)]
        assert [d.event["status"] for d in receiver.refused] == ["QUEUED", "QUEUED"]
        # WHEN the receiver is back and the due retry arrives through the queue
        receiver.status = 200
        answer = invoke(world, due_retries(hooks))
        # THEN both changes arrive, in order, and the record says how many attempts each took
        assert answer == {"batchItemFailures": []}
        assert [d.event["status"] for d in receiver.wait_for(2)] == ["QUEUED", "RUNNING"]
        events = world.job(job_id)["webhook_events"]
        assert [(e["state"], e["attempts"]) for e in events] == [("delivered", 3), ("delivered", 1)]


def test_a_delivery_refused_past_the_retry_window_is_given_up_and_the_next_ones_go_on(world, hooks, monkeypatch):
    # GIVEN a retry window of a fraction of a second, and a receiver that refuses the job's first change only
    monkeypatch.setenv("WEBHOOK_RETRY_HOURS", str(0.5 / 3600))
    from spaceport.cloud import settings

    settings.clear_cache()
    with Receiver(answer=lambda delivery: 500 if delivery.event["status"] == "QUEUED" else 204) as receiver:
        job_id = job_with_webhook(world, receiver.url)
        change(job_id, JobStatus.QUEUED)
        invoke(world, status_event(job_id))
        # WHEN the window has passed and the next change comes
        time.sleep(0.6)
        change(job_id, JobStatus.RUNNING)
        webhook.deliver(webhook_settings(), job_id)
        # THEN the first change was tried once more and given up, and the next one was delivered after it
        events = world.job(job_id)["webhook_events"]
        assert [(e["state"], e["attempts"]) for e in events] == [("failed", 2), ("delivered", 1)]
        assert [d.event["status"] for d in receiver.refused + receiver.deliveries] == ["QUEUED", "QUEUED", "RUNNING"]


def test_the_api_applies_the_stacks_default_webhook_and_refuses_plain_http_when_deployed(world, monkeypatch):
    # GIVEN a stack with a default webhook, deployed (https only)
    monkeypatch.setenv("DEFAULT_WEBHOOK_URL", "https://hooks.example.com/spaceport")
    from spaceport.cloud import settings

    settings.clear_cache()
    # WHEN a job names none THEN it gets the default
    status, body = create(world, body={"upload": "zip", "archive_bytes": 1000, "photo_count": 8})
    assert status == 201 and world.job(body["job_id"])["options"]["webhook_url"].startswith("https://hooks.")
    # WHEN a job names a plain http URL THEN it is refused, naming the field
    status, body = create(world, body={"upload": "zip", "archive_bytes": 1000, "webhook_url": "http://example.com/"})
    assert status == 400 and "webhook_url must be an https:// URL" in json.dumps(body)
