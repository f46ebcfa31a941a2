"""Webhooks: each status change of a job is POSTed to its ``webhook_url`` (or the stack's ``DefaultWebhookUrl``),
signed with the stack's secret (``webhook_signature``), in the order the changes happened, retried until the
receiver takes it, and each delivery's outcome kept in the job record (``webhook_outbox``).

Why a function of ours and not an EventBridge API destination: a destination's endpoint is fixed when it is
created (one destination, connection and rule per job would be needed for per-job URLs, against an account quota),
its connection authenticates with a static header (Basic, OAuth or an API key) but signs nothing the receiver could
check the body against, it does not keep one job's events in order, and what became of a delivery lands in a
dead-letter queue and metrics, never in the job's record. Here:

- ``notify.status_change`` appends every change to the job's ``webhook_events`` (its order is the record's);
- the status change event (EventBridge) invokes the webhook function, which takes the job's lease and posts every
  pending delivery oldest first, stopping at the first the receiver does not take (so none overtakes another);
- a failed attempt is recorded and schedules one retry through an SQS queue with a delay (30 s doubling, at most
  15 minutes, SQS's longest), which invokes the function again; a new change retries at once too. A delivery still
  refused ``WebhookRetryHours`` after its first attempt is marked ``failed`` and the next ones go on.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from spaceport.cloud import aws
from spaceport.cloud.settings import WebhookSettings
from spaceport.cloud.webhook_outbox import EVENTS, WebhookOutbox
from spaceport.cloud.webhook_signature import SIGNATURE_HEADER, sign

logger = Logger(child=True)

EVENT_TYPE = "job.status_changed"
USER_AGENT = "Spaceport-Webhook/1"
# SQS delays a message by at most 15 minutes.
MAX_DELAY_S = 900
LEASE_S = 90
ROUNDS = 5
SECRET_TTL_S = 300
_secret_cache: dict[str, tuple[str, float]] = {}


class WebhookUrlError(ValueError):
    """A webhook URL the stack does not post to."""


def check_url(url: str, https_only: bool) -> str:
    """``url`` when the stack may post to it: https (plain http only where the stack allows it, locally)."""
    if url.startswith("https://") or (not https_only and url.startswith("http://")):
        return url
    raise WebhookUrlError(f"webhook_url must be an https:// URL, not {url[:80]!r}")


def with_webhook(options: dict[str, Any], default_url: str, https_only: bool) -> dict[str, Any]:
    """A new job's options with its webhook: its own ``webhook_url``, else the stack's default, else none.

    Raises:
        WebhookUrlError: the job's own URL is not one the stack posts to.
    """
    url = options.get("webhook_url") or default_url
    return {**options, "webhook_url": check_url(url, https_only)} if url else options


def deliveries_view(job: dict[str, Any]) -> dict[str, Any] | None:
    """What the API shows of a job's webhook: its URL and how each delivery went (None without a webhook)."""
    url = (job.get("options") or {}).get("webhook_url")
    if not url:
        return None
    shown = ("state", "attempts", "last_result", "delivered_at")
    deliveries = [
        {"sequence": index + 1, "status": entry["event"].get("status"), **{k: entry[k] for k in shown if k in entry}}
        for index, entry in enumerate(job.get(EVENTS, []))
    ]
    return {"url": url, "deliveries": deliveries}


def enqueue(table_name: str, job: dict[str, Any], event: dict[str, Any]) -> int | None:
    """Queue a status change for the job's webhook, if it has one; its delivery's sequence number."""
    if not (job.get("options") or {}).get("webhook_url"):
        return None
    return WebhookOutbox(table_name).append(job["job_id"], event)


@dataclass(frozen=True)
class Outcome:
    """What became of one POST: taken (a 2xx answer) or not, and the answer or the error, in a few words."""

    ok: bool
    result: str


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a refusal: the signed body goes to the URL the job named and nowhere else."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, secret: str, delivery_id: str, attempt: int, timeout_s: float) -> Outcome:
    """POST one signed delivery."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, SIGNATURE_HEADER: sign(secret, body),
               "Spaceport-Delivery": delivery_id, "Spaceport-Attempt": str(attempt)}  # fmt: skip
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (checked URL)
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:  # nosec B310: https, or http where allowed
            return Outcome(200 <= response.status < 300, f"HTTP {response.status}")
    except urllib.error.HTTPError as error:
        return Outcome(False, f"HTTP {error.code}")
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return Outcome(False, f"{type(reason).__name__}: {reason}"[:300])


def body(job_id: str, sequence: int, event: dict[str, Any]) -> bytes:
    """What a delivery carries: the change, its place in the job's sequence, and an id to deduplicate on."""
    payload = {"id": f"{job_id}/{sequence}", "type": EVENT_TYPE, "sequence": sequence, **event}
    return json.dumps(payload, separators=(",", ":")).encode()


def secret(arn: str) -> str:
    """The stack's webhook secret, read again every few minutes (so a new value is used soon after it is set)."""
    cached = _secret_cache.get(arn)
    if cached is None or time.monotonic() - cached[1] > SECRET_TTL_S:
        value = aws.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        cached = _secret_cache[arn] = (value, time.monotonic())
    return cached[0]


def deliver(settings: WebhookSettings, job_id: str) -> dict[str, Any]:
    """Post the job's pending deliveries in order, as the one deliverer of the job; what was delivered.

    A change recorded while this ran is delivered in another round, once the lease is given back and taken again.
    """
    outbox, delivered = WebhookOutbox(settings.jobs_table), []
    for _ in range(ROUNDS):
        if not outbox.take_lease(job_id, time.time(), LEASE_S):
            return {"job_id": job_id, "delivered": delivered, "busy": True}
        try:
            stopped = _deliver_pending(settings, outbox, job_id, delivered)
        finally:
            outbox.release_lease(job_id)
        fresh = [e for e in outbox.get(job_id).get(EVENTS, []) if e["state"] == "pending" and not e["attempts"]]
        if stopped or not fresh:
            break
    return {"job_id": job_id, "delivered": delivered}


def _deliver_pending(settings: WebhookSettings, outbox: WebhookOutbox, job_id: str, delivered: list[int]) -> bool:
    """One pass over the pending deliveries; True when one was refused (the rest wait for its retry)."""
    job = outbox.get(job_id)
    url = (job.get("options") or {}).get("webhook_url")
    for index, entry in enumerate(job.get(EVENTS, [])):
        if entry["state"] != "pending" or not url:
            continue
        sequence, attempt, at = index + 1, int(entry["attempts"]) + 1, time.time()
        outcome = post(url, body(job_id, sequence, entry["event"]), secret(settings.secret_arn),
                       f"{job_id}/{sequence}", attempt, settings.timeout_s)  # fmt: skip
        first = float(entry.get("first_attempt_at") or at)
        state = "delivered" if outcome.ok else "pending"
        if not outcome.ok and at - first >= settings.give_up_after_s:
            state = "failed"
        record = {"state": state, "attempts": attempt, "first_attempt_at": first, "last_attempt_at": at,
                  "last_result": outcome.result} | ({"delivered_at": at} if outcome.ok else {})  # fmt: skip
        outbox.record_attempt(job_id, index, record)
        logger.info("webhook delivery", extra={"job_id": job_id, "sequence": sequence, **record})
        if outcome.ok:
            delivered.append(sequence)
        elif state == "pending":
            _schedule_retry(settings, outbox, job_id, attempt)
            return True
    return False


def retry_delay(settings: WebhookSettings, attempt: int) -> float:
    """Seconds before the next attempt after ``attempt`` failed ones: the base doubling, at most 15 minutes."""
    return min(float(MAX_DELAY_S), settings.retry_base_s * 2 ** (attempt - 1))


def _schedule_retry(settings: WebhookSettings, outbox: WebhookOutbox, job_id: str, attempt: int) -> None:
    """One retry at a time per job: a message to the retry queue, delayed, unless a later one is already due."""
    now = time.time()
    delay = retry_delay(settings, attempt)
    if outbox.schedule_retry(job_id, now + delay, now):
        aws.client("sqs").send_message(
            QueueUrl=settings.retry_queue_url,
            MessageBody=json.dumps({"job_id": job_id, "attempt": attempt}),
            DelaySeconds=min(MAX_DELAY_S, math.ceil(delay)),
        )


def handle(settings: WebhookSettings, event: dict[str, Any]) -> dict[str, Any]:
    """The function's two triggers: a job status change event (EventBridge), or a batch of due retries (SQS),
    whose failed messages are reported for SQS to deliver again."""
    if "Records" not in event:
        return deliver(settings, event["detail"]["job_id"])
    failures = []
    for record in event["Records"]:
        try:
            deliver(settings, json.loads(record["body"])["job_id"])
        except Exception:  # any failure: SQS delivers this message again, the others are done
            logger.exception("webhook retry failed", extra={"message_id": record.get("messageId")})
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
