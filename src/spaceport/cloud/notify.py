"""Status change notifications: an EventBridge event on every change, an SNS message when a job ends, and the
change queued for the job's webhook (``webhook``), whose function the same event invokes."""

from __future__ import annotations

import json
from typing import Any

from spaceport.cloud import aws, webhook
from spaceport.cloud.models import TERMINAL_STATUSES, JobStatus
from spaceport.cloud.settings import CommonSettings

EVENT_SOURCE = "spaceport.jobs"
EVENT_DETAIL_TYPE = "Spaceport Job Status Change"


def status_change(settings: CommonSettings, job: dict[str, Any]) -> None:
    """Publish the job's new status; subscribers get the stage and reason without reading the table."""
    detail = {
        "job_id": job["job_id"],
        "status": job["status"],
        "current_stage": job.get("current_stage"),
        "failed_stage": job.get("failed_stage"),
        "failure_reason": job.get("failure_reason"),
        "queue": job.get("queue"),
        "updated_at": job.get("updated_at"),
    }
    # Queued before the event goes out: the event is what makes the webhook function deliver it.
    webhook.enqueue(settings.jobs_table, job, detail)
    aws.client("events").put_events(
        Entries=[
            {
                "Source": EVENT_SOURCE,
                "DetailType": EVENT_DETAIL_TYPE,
                "Detail": json.dumps(detail),
                "EventBusName": settings.event_bus,
                "Resources": [],
            }
        ]
    )
    if JobStatus(job["status"]) in TERMINAL_STATUSES:
        subject = f"Spaceport job {job['job_id']}: {job['status']}"
        aws.client("sns").publish(
            TopicArn=settings.topic_arn,
            Subject=subject[:99],
            Message=json.dumps(detail, indent=2),
            MessageAttributes={"status": {"DataType": "String", "StringValue": job["status"]}},
        )
