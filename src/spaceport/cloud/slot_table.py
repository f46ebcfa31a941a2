"""Data access for the slots table: a counting semaphore per SageMaker stage, its holders and its queue.

Items (``pool`` is the hash key, ``entry`` the range key):

- ``<stage>`` / ``count``: ``held``, how many of the stage's slots are held. Only a transaction changes it, together
  with the holder item it adds or removes, so the count and the holders never disagree.
- ``<stage>`` / ``holder#<execution name>``: ``job_id``, ``execution`` (ARN), ``ticket``, ``token`` (the task token
  the grant resumed), ``resumed`` (whether Step Functions accepted it), ``since``, ``plan``, ``quota_wait``
  (SageMaker refused its job with ResourceLimitExceeded and it retries: grants to the waiters planned for the
  refused instance type pause meanwhile), ``quota_instance`` (that type, which a stage sized again at its start may
  have changed from ``plan``). A slot belongs to an execution: a retried job's new execution never inherits its old
  one's slot, and the sweeper can ask whether the holder ended.
- ``<stage>`` / ``waiting#<ticket, 12 digits>``: ``job_id``, ``execution``, ``ticket``, ``token``, ``since``,
  ``plan``: an execution parked on its task token. A consistent query of the partition reads the queue in ticket
  order. ``plan`` is the instance type the validate step planned for the job's stage (``resources``), empty where
  the stage runs on its configured type (train): each instance type has its own SageMaker quota.
- ``<stage>`` / ``queue``: ``version``, how many times an entry joined the stage's queue (or took a new token).
  The same transaction that writes a waiting entry raises it.
- ``tickets`` / ``next``: ``value``, the last ticket handed out. The trigger takes one per upload (and a retry one per
  retry), so tickets are upload order.

A grant is one transaction: count below the limit, the waiting entry still there with the same token, no slot held by
that execution yet, the job not ended, and the queue's version the one read before the queue was: no entry has
joined since, so none with a lower ticket can be waiting unseen (one that joined between the grant's read of the
queue and its write would be skipped otherwise). The count goes up, the entry becomes a holder. A release is the
reverse, and only for a holder that exists: nobody gives back a slot they do not hold.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from spaceport.cloud import aws
from spaceport.cloud.jobs import from_dynamo, now
from spaceport.cloud.models import TERMINAL_STATUSES, JobStatus, Stage

TICKETS = "tickets"
COUNT = "count"
HOLDER = "holder#"
WAITING = "waiting#"
QUEUE = "queue"
CONFLICT_RETRIES = 5
# A transaction's cancellation reasons that say only that the moment was bad (another transaction held an item, the
# table was throttled): the same transaction may go through if tried again.
TRANSIENT_REASONS = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
# DynamoDB's answers to a request it could not serve now (after the SDK's own retries). A single-item write to an
# item that a transaction is changing is refused with TransactionConflictException, which the SDK does not retry.
BUSY_CODES = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
     "TransactionInProgressException", "TransactionConflictException", "InternalServerError"}
)  # fmt: skip


class SlotTableBusyError(Exception):
    """DynamoDB kept cancelling a slot table transaction (others touched the same items) or throttling the table,
    past this function's own tries; nothing was changed. Not the job's fault: the state machine retries the task
    with backoff."""


class SlotCountMismatchError(Exception):
    """A holder exists but its stage's count says no slot is held: the table contradicts itself, no release of that
    holder can go through, and no retry helps (a person has to look)."""


@contextmanager
def busy_is_retryable() -> Iterator[None]:
    """DynamoDB's refusals to serve now (throttling past the SDK's retries) become ``SlotTableBusyError``."""
    try:
        yield
    except ClientError as error:
        if error.response["Error"]["Code"] in BUSY_CODES:
            raise SlotTableBusyError(f"the slots table is busy: {error}") from error
        raise


class Grant(StrEnum):
    """What a grant attempt found."""

    GRANTED = "granted"
    FULL = "full"  # every slot is held
    GONE = "gone"  # the entry left the queue (granted by another caller, or removed)
    JOB_ENDED = "job ended"  # the job is SUCCEEDED, FAILED or CANCELLED: its entry is stale
    ALREADY_HELD = "already held"  # the execution holds a slot of the stage already
    CONFLICT = "conflict"  # other transactions kept touching the same items: try again later
    STALE = "stale"  # an entry joined the queue since it was read: read it again


@dataclass(frozen=True)
class Waiter:
    """An execution waiting for (or granted) a slot of ``stage``."""

    stage: Stage
    ticket: int
    job_id: str
    execution: str
    token: str
    since: str
    plan: str = ""  # the instance type planned for the job's stage; "" for the stage's configured one

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Waiter:
        return cls(
            stage=Stage(item["pool"]),
            ticket=int(item["ticket"]),
            job_id=item["job_id"],
            execution=item["execution"],
            token=item["token"],
            since=item["since"],
            plan=item.get("plan", ""),
        )


def waiting_key(stage: Stage, ticket: int) -> dict[str, str]:
    return {"pool": stage.value, "entry": f"{WAITING}{ticket:012d}"}


def holder_key(stage: Stage, execution: str) -> dict[str, str]:
    """Keyed by the execution's name (unique per state machine), the last part of its ARN."""
    return {"pool": stage.value, "entry": HOLDER + execution.rsplit(":", 1)[-1]}


def _reasons(error: ClientError) -> list[str]:
    """Per item of a cancelled transaction, DynamoDB's reason code ("None" for an item that was fine)."""
    return [str(reason.get("Code") or "None") for reason in error.response.get("CancellationReasons", [])]


class SlotTable:
    """Reads and writes the slots table (and, inside transactions, the job record a slot is for)."""

    def __init__(self, slots_table: str, jobs_table: str) -> None:
        self._table = aws.table(slots_table)
        self._name = slots_table
        self._jobs = jobs_table

    # ------------------------------------------------------------ tickets and the queue

    def next_ticket(self) -> int:
        """A new ticket, one above the last: the queues serve tickets in ascending order."""
        response = self._table.update_item(
            Key={"pool": TICKETS, "entry": "next"},
            UpdateExpression="ADD #value :one",
            ExpressionAttributeNames={"#value": "value"},
            ExpressionAttributeValues={":one": 1},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["value"])

    def enqueue(self, waiter: Waiter) -> None:
        """Park ``waiter`` in its stage's queue (a retried wait replaces its own entry, with the new token), and
        raise the queue's version with it, so that a grant that read the queue before cannot skip it.

        Raises:
            SlotTableBusyError: DynamoDB kept refusing the transaction; nothing changed.
        """
        entry = {
            **waiting_key(waiter.stage, waiter.ticket),
            "job_id": waiter.job_id,
            "execution": waiter.execution,
            "ticket": waiter.ticket,
            "token": waiter.token,
            "since": waiter.since,
            "plan": waiter.plan,
        }
        reasons = self._transact(
            [
                {"Put": {"TableName": self._name, "Item": entry}},
                {
                    "Update": {
                        "TableName": self._name,
                        "Key": {"pool": waiter.stage.value, "entry": QUEUE},
                        "UpdateExpression": "ADD version :one",
                        "ExpressionAttributeValues": {":one": 1},
                    }
                },
            ]
        )
        if reasons is not None:
            raise RuntimeError(f"queue entry of {waiter.job_id} not written: {reasons}")  # it has no condition

    def queue_version(self, stage: Stage) -> int:
        """How many times an entry has joined the stage's queue; read before the queue, it dates that reading."""
        item = self._table.get_item(Key={"pool": stage.value, "entry": QUEUE}, ConsistentRead=True).get("Item")
        return int(item.get("version", 0)) if item else 0

    def waiting(self, stage: Stage) -> Iterator[Waiter]:
        """The stage's queue, lowest ticket first, read consistently page by page."""
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pool").eq(stage.value) & Key("entry").begins_with(WAITING),
            "ConsistentRead": True,
            "Limit": 25,
        }
        while True:
            response = self._table.query(**query)
            for item in response.get("Items", []):
                yield Waiter.from_item(from_dynamo(item))
            if "LastEvaluatedKey" not in response:
                return
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def position(self, stage: Stage, ticket: int) -> int | None:
        """1 for the head of the queue; None when the ticket no longer waits (granted, or gone)."""
        if not self._table.get_item(Key=waiting_key(stage, ticket), ConsistentRead=True).get("Item"):
            return None
        return self._count(stage, Key("entry").between(WAITING, waiting_key(stage, ticket)["entry"]))

    def length(self, stage: Stage) -> int:
        """How many wait in the stage's queue."""
        return self._count(stage, Key("entry").begins_with(WAITING))

    def _count(self, stage: Stage, entries: Any) -> int:
        """How many of the stage's items match ``entries`` (a key condition on ``entry``), counted by DynamoDB."""
        query = {
            "KeyConditionExpression": Key("pool").eq(stage.value) & entries,
            "ConsistentRead": True,
            "Select": "COUNT",
        }
        count = 0
        while True:
            response = self._table.query(**query)
            count += int(response["Count"])
            if "LastEvaluatedKey" not in response:
                return count
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def dequeue(self, stage: Stage, ticket: int, execution: str | None = None, token: str | None = None) -> bool:
        """Remove a waiting entry (only that execution's, or only with that token, when given); False if absent."""
        condition, values = "attribute_exists(entry)", {}
        if execution:
            condition += " AND execution = :execution"
            values[":execution"] = execution
        if token:
            condition += " AND #token = :token"
            values[":token"] = token
        extra: dict[str, Any] = {"ExpressionAttributeValues": values} if values else {}
        if token:
            extra["ExpressionAttributeNames"] = {"#token": "token"}
        try:
            self._table.delete_item(Key=waiting_key(stage, ticket), ConditionExpression=condition, **extra)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _own_queue_entry(self, waiter: Waiter) -> dict[str, Any]:
        """A transaction item's target: ``waiter``'s queue entry, while it still holds its own token (a retry or a
        sweep may have replaced or removed it)."""
        return {
            "TableName": self._name,
            "Key": waiting_key(waiter.stage, waiter.ticket),
            "ConditionExpression": "#token = :token",
            "ExpressionAttributeNames": {"#token": "token"},
            "ExpressionAttributeValues": {":token": waiter.token},
        }

    def mark_queued(self, waiter: Waiter, position: int) -> bool:
        """Show the job QUEUED for ``waiter.stage`` with its place, only while its entry still waits (a grant in
        between wins: the job then never shows QUEUED) and the job has not ended. Returns whether it did; a table
        too busy to show it leaves the job as it was shown."""
        queue = {"stage": waiter.stage.value, "ticket": waiter.ticket, "since": waiter.since, "position": position}
        try:
            reasons = self._queued_transaction(waiter, queue)
        except SlotTableBusyError:
            return False
        return reasons is None

    def _queued_transaction(self, waiter: Waiter, queue: dict[str, Any]) -> list[str] | None:
        return self._transact(
            [
                {"ConditionCheck": self._own_queue_entry(waiter)},
                {
                    "Update": {
                        "TableName": self._jobs,
                        "Key": {"job_id": waiter.job_id},
                        "UpdateExpression": "SET #status = :queued, #queue = :queue, updated_at = :now",
                        "ConditionExpression": "#status IN (:queued, :running)",
                        "ExpressionAttributeNames": {"#status": "status", "#queue": "queue"},
                        "ExpressionAttributeValues": {
                            ":queued": JobStatus.QUEUED.value,
                            ":running": JobStatus.RUNNING.value,
                            ":queue": queue,
                            ":now": now(),
                        },
                    }
                },
            ]
        )

    # ------------------------------------------------------------ the semaphore

    def held(self, stage: Stage) -> int:
        item = self._table.get_item(Key={"pool": stage.value, "entry": COUNT}, ConsistentRead=True).get("Item")
        return int(item.get("held", 0)) if item else 0

    def holders(self, stage: Stage) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pool").eq(stage.value) & Key("entry").begins_with(HOLDER),
            "ConsistentRead": True,
        }
        while True:
            response = self._table.query(**query)
            items += [from_dynamo(item) for item in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                return items
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def holder(self, stage: Stage, execution: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key=holder_key(stage, execution), ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def grant(self, waiter: Waiter, limit: int, queue_version: int) -> Grant:
        """Turn ``waiter``'s queue entry into a held slot, if one of ``limit`` is free and the queue is still as it
        was at ``queue_version`` (one transaction)."""
        try:
            reasons = self._grant_transaction(waiter, limit, queue_version)
        except SlotTableBusyError:
            return Grant.CONFLICT
        if reasons is None:
            return Grant.GRANTED
        failed = [reason == "ConditionalCheckFailed" for reason in reasons] + [False] * 5
        checks = ((4, Grant.STALE), (1, Grant.GONE), (3, Grant.JOB_ENDED), (2, Grant.ALREADY_HELD), (0, Grant.FULL))
        for index, outcome in checks:
            if failed[index]:
                return outcome
        raise RuntimeError(f"slot grant cancelled for no known reason: {reasons}")

    def _grant_transaction(self, waiter: Waiter, limit: int, queue_version: int) -> list[str] | None:
        unchanged: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(version)"}
        if queue_version:
            unchanged = {"ConditionExpression": "version = :seen",
                         "ExpressionAttributeValues": {":seen": queue_version}}  # fmt: skip
        terminal = {f":t{index}": status.value for index, status in enumerate(sorted(TERMINAL_STATUSES))}
        not_ended = "attribute_exists(job_id) AND NOT #status IN (" + ", ".join(terminal) + ")"
        return self._transact(
            [
                {
                    "Update": {
                        "TableName": self._name,
                        "Key": {"pool": waiter.stage.value, "entry": COUNT},
                        "UpdateExpression": "ADD held :one",
                        "ConditionExpression": "attribute_not_exists(held) OR held < :limit",
                        "ExpressionAttributeValues": {":one": 1, ":limit": limit},
                    }
                },
                {"Delete": self._own_queue_entry(waiter)},
                {
                    "Put": {
                        "TableName": self._name,
                        "Item": {
                            **holder_key(waiter.stage, waiter.execution),
                            "job_id": waiter.job_id,
                            "execution": waiter.execution,
                            "ticket": waiter.ticket,
                            "token": waiter.token,
                            "resumed": False,
                            "since": now(),
                            "plan": waiter.plan,
                        },
                        "ConditionExpression": "attribute_not_exists(entry)",
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": self._jobs,
                        "Key": {"job_id": waiter.job_id},
                        "ConditionExpression": not_ended,
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": terminal,
                    }
                },
                {"ConditionCheck": {"TableName": self._name, "Key": {"pool": waiter.stage.value, "entry": QUEUE},
                                    **unchanged}},
            ]
        )  # fmt: skip

    def hand_over(self, waiter: Waiter) -> bool:
        """Make ``waiter``'s token the one the slot its execution holds is resumed with (``resumed`` false until Step
        Functions accepts it): a retried wait parks on a new token, and a grant sent again (by the sweeper) must
        reach that one. False when the execution holds no slot of the stage (any more)."""
        try:
            self._table.update_item(
                Key=holder_key(waiter.stage, waiter.execution),
                UpdateExpression="SET #token = :token, resumed = :no",
                ConditionExpression="attribute_exists(entry)",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":token": waiter.token, ":no": False},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_resumed(self, stage: Stage, execution: str, token: str) -> bool:
        """Step Functions is done with the grant's ``token``: the sweeper need not send it again. Only while the slot
        is still resumed with that token: a retried wait may have handed it over to a new one meanwhile, which must
        still be sent. False when it was not marked (the slot is gone, or carries another token)."""
        try:
            self._table.update_item(
                Key=holder_key(stage, execution),
                UpdateExpression="SET resumed = :yes",
                ConditionExpression="attribute_exists(entry) AND #token = :token",
                ExpressionAttributeNames={"#token": "token"},
                ExpressionAttributeValues={":yes": True, ":token": token},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def mark_quota_wait(self, stage: Stage, execution: str, waiting: bool, instance_type: str = "") -> bool:
        """Flag (or unflag) the slot ``execution`` holds as waiting for SageMaker's quota of ``instance_type``, the
        type SageMaker refused (kept as ``quota_instance``); False when it holds none (an execution started before
        slots existed)."""
        values: dict[str, Any] = {":waiting": waiting}
        update = "SET quota_wait = :waiting REMOVE quota_instance"
        if waiting and instance_type:
            update, values[":instance"] = "SET quota_wait = :waiting, quota_instance = :instance", instance_type
        try:
            self._table.update_item(
                Key=holder_key(stage, execution),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(entry)",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, stage: Stage, execution: str) -> bool:
        """Give back the slot ``execution`` holds at ``stage``; False (nothing changed) when it holds none.

        Raises:
            SlotTableBusyError: DynamoDB kept refusing the transaction (conflicts, throttling); nothing changed.
            SlotCountMismatchError: the holder is there but the count is not above zero; nothing changed.
        """
        reasons = self._transact(
            [
                {
                    "Delete": {
                        "TableName": self._name,
                        "Key": holder_key(stage, execution),
                        "ConditionExpression": "attribute_exists(entry)",
                    }
                },
                {
                    "Update": {
                        "TableName": self._name,
                        "Key": {"pool": stage.value, "entry": COUNT},
                        "UpdateExpression": "ADD held :minus_one",
                        "ConditionExpression": "held > :zero",
                        "ExpressionAttributeValues": {":minus_one": -1, ":zero": 0},
                    }
                },
            ]
        )
        if reasons is None:
            return True
        if reasons[0] == "ConditionalCheckFailed":
            return False
        raise SlotCountMismatchError(f"slot of {execution} at {stage} not released, its count is 0: {reasons}")

    def _transact(self, items: list[dict[str, Any]]) -> list[str] | None:
        """Run a write transaction; None when it went through, else each item's cancellation reason (a condition
        failed). One cancelled only because of the moment (a conflict with another transaction on the same items,
        throttling) is tried again a few times.

        Raises:
            SlotTableBusyError: it was still refused for the moment after the last try.
        """
        client = self._table.meta.client  # the resource's client takes plain Python values, like the table
        refusal: ClientError | None = None
        for attempt in range(CONFLICT_RETRIES):
            if attempt:
                time.sleep(0.02 * 2 ** (attempt - 1))
            try:
                client.transact_write_items(TransactItems=items)
                return None
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if code == "TransactionCanceledException":
                    reasons = _reasons(error)
                    if not TRANSIENT_REASONS.intersection(reasons):
                        return reasons
                elif code not in BUSY_CODES:
                    raise
                refusal = error
        raise SlotTableBusyError(f"{CONFLICT_RETRIES} tries refused: {refusal}") from refusal
