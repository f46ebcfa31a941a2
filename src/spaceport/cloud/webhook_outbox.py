"""Data access for a job's webhook deliveries, kept in its record of the jobs table.

``webhook_events`` lists the job's status changes in the order they happened; element ``i`` is delivery ``i + 1``:
``event`` (what the body carries), ``state`` (``pending``, ``delivered`` or ``failed``: given up), ``attempts``,
``first_attempt_at`` and ``last_attempt_at`` (epoch seconds), ``last_result`` (``HTTP 204``, or the connection's
error) and ``delivered_at``. ``webhook_lease`` (epoch seconds) is held by the one invocation delivering the job's
events, so that two never post them at once or out of order; ``webhook_retry_at`` is when the retry scheduled for
the job's oldest pending delivery is due (one retry at a time).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from spaceport.cloud import aws
from spaceport.cloud.jobs import from_dynamo, to_dynamo

EVENTS = "webhook_events"


def _conditional_failed(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class WebhookOutbox:
    """A job's webhook deliveries in the jobs table."""

    def __init__(self, table_name: str) -> None:
        self._table = aws.table(table_name)

    def append(self, job_id: str, event: dict[str, Any]) -> int:
        """Add a status change to deliver, after every earlier one; returns its sequence number (1 is the first)."""
        response = self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET #events = list_append(if_not_exists(#events, :none), :event)",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeNames={"#events": EVENTS},
            ExpressionAttributeValues={
                ":none": [],
                ":event": [{"event": to_dynamo(event), "state": "pending", "attempts": 0}],
            },
            ReturnValues="UPDATED_NEW",
        )
        return len(response["Attributes"][EVENTS])

    def get(self, job_id: str) -> dict[str, Any]:
        item = self._table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else {}

    def take_lease(self, job_id: str, now: float, seconds: float) -> bool:
        """Become the job's one deliverer until ``now + seconds``; False while another invocation is."""
        return self._conditional(
            job_id,
            "SET webhook_lease = :until",
            "attribute_exists(job_id) AND (attribute_not_exists(webhook_lease) OR webhook_lease < :now)",
            {":until": to_dynamo(now + seconds), ":now": to_dynamo(now)},
        )

    def release_lease(self, job_id: str) -> None:
        self._table.update_item(Key={"job_id": job_id}, UpdateExpression="REMOVE webhook_lease")

    def record_attempt(self, job_id: str, index: int, attempt: dict[str, Any]) -> None:
        """Write one attempt's outcome on delivery ``index`` (0-based): its state, count, times and result."""
        sets = [f"#events[{index}].#{key} = :{key}" for key in attempt]
        self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames={"#events": EVENTS, **{f"#{key}": key for key in attempt}},
            ExpressionAttributeValues={f":{key}": to_dynamo(value) for key, value in attempt.items()},
        )

    def schedule_retry(self, job_id: str, due: float, now: float) -> bool:
        """Claim the job's next retry for ``due``; False when one is already scheduled later than ``now``."""
        return self._conditional(
            job_id,
            "SET webhook_retry_at = :due",
            "attribute_not_exists(webhook_retry_at) OR webhook_retry_at <= :now",
            {":due": to_dynamo(due), ":now": to_dynamo(now)},
        )

    def _conditional(self, job_id: str, update: str, condition: str, values: dict[str, Any]) -> bool:
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True
