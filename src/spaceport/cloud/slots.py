"""Bounded concurrency per SageMaker stage: a semaphore in DynamoDB, with a queue served in upload order.

Before a stage starts its SageMaker job, the execution waits in a ``lambda:invoke.waitForTaskToken`` task: the
function parks the task token in the stage's queue under the job's ticket (its place in upload order) and grants
whatever slots are free, lowest ticket first. A grant is one conditional transaction (count below the stage's
``MaxConcurrent*Jobs``, entry still waiting, job not ended); SendTaskSuccess on the entry's token then resumes that
execution. Nothing polls: a waiting execution costs nothing until a slot frees.

Slots come back on every way out of a stage: "Release the <stage> slot" after it succeeds, "Release the job's
slots" on the failure path (every Catch, a stage's failure or timeout), the API's cancel, and, for an execution that
ended without any of those (stopped by hand, the execution's own time limit), the sweeper, which the schedule runs
every few minutes. Whoever frees a slot grants it to the next in line; the sweeper also grants what an earlier grant
could not (a throttled call), so no slot and no waiter is lost for good.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from spaceport.cloud import aws, notify
from spaceport.cloud.aws import STALE_TOKEN_CODES
from spaceport.cloud.jobs import JobNotFoundError, JobsTable, now
from spaceport.cloud.models import SAGEMAKER_STAGES, TERMINAL_STATUSES, JobStatus, ReleaseSlotInput, SlotRequest, Stage
from spaceport.cloud.settings import SlotSettings
from spaceport.cloud.slot_table import (
    Grant,
    SlotCountMismatchError,
    SlotTable,
    SlotTableBusyError,
    Waiter,
    busy_is_retryable,
)

logger = Logger(child=True)

# A grant whose SendTaskSuccess did not go through is sent again by the sweeper once it is this old (seconds).
RESEND_AFTER_S = 60
# How many times one call reads the queue again when entries keep joining it while it grants.
QUEUE_READS = 5


class JobEndedError(Exception):
    """The job ended (cancelled) before it asked for a slot: nothing to wait for."""


def store(settings: SlotSettings) -> SlotTable:
    return SlotTable(settings.slots_table, settings.jobs_table)


def wait_for_slot(settings: SlotSettings, request: SlotRequest) -> dict[str, Any]:
    """Queue the execution for a slot of ``request.stage`` and grant what is free. The task's token is returned
    (SendTaskSuccess) by whichever call grants this execution its slot: this one, or a later release or sweep.

    Raises:
        SlotTableBusyError: DynamoDB kept refusing the slots table now; the state machine retries the wait.
    """
    with busy_is_retryable():
        return _wait_for_slot(settings, request)


def _wait_for_slot(settings: SlotSettings, request: SlotRequest) -> dict[str, Any]:
    slots, jobs = store(settings), JobsTable(settings.jobs_table)
    job = jobs.get(request.job_id)
    if JobStatus(job["status"]) in TERMINAL_STATUSES:
        raise JobEndedError(f"job {request.job_id} is {job['status']}; it waits for no slot")
    ticket = int(job.get("ticket") or jobs.assign_ticket(request.job_id, slots.next_ticket()))
    plan = ((job.get("resources") or {}).get(request.stage.value) or {}).get("instance_type", "")
    waiter = Waiter(request.stage, ticket, request.job_id, request.execution, request.token, now(), plan)
    if slots.holder(request.stage, request.execution) and slots.hand_over(waiter):
        # A retried wait (the first invoke failed after its grant): the slot is this execution's already, and is
        # now resumed with this attempt's token (the first attempt's is dead), by this call or by the sweeper.
        _resume(settings, slots, waiter)
        return {"granted": request.stage.value, "ticket": ticket, "already_held": True}
    slots.enqueue(waiter)
    if ticket in grant_free_slots(settings, request.stage):
        return {"granted": request.stage.value, "ticket": ticket}
    position = slots.position(request.stage, ticket)
    if position is not None and slots.mark_queued(waiter, position):
        notify.status_change(settings, jobs.get(request.job_id))
    return {"queued": request.stage.value, "ticket": ticket, "position": position}


def grant_free_slots(settings: SlotSettings, stage: Stage) -> list[int]:
    """Grant the stage's free slots to the queue's head, lowest ticket first; returns the tickets resumed.

    While a holder of the stage waits for SageMaker's quota (ResourceLimitExceeded), nothing is granted to the
    waiters planned for the same instance type (quotas are per instance type): one granted now would take the
    instance that frees before that holder's next retry, again and again. Waiters planned for other types are
    granted past them, in ticket order. The holder's success (or its end) resumes the grants.

    Best effort, whatever goes wrong: a grant that fails here leaves the queue as it was, for the next release or
    the sweeper, and never fails the caller (a stage that succeeded, say).
    """
    slots, limit, granted = store(settings), settings.slot_limit(stage), []
    try:
        for _ in range(QUEUE_READS):
            if not _grant_in_order(settings, slots, stage, limit, granted):
                break
    except Exception:  # any failure at all: granting is best effort, and the sweeper grants later
        logger.exception("slots not granted now; the sweeper will", extra={"stage": stage.value})
    if granted:
        logger.info("slots granted", extra={"stage": stage.value, "tickets": granted})
    return granted


def _grant_in_order(settings: SlotSettings, slots: SlotTable, stage: Stage, limit: int, granted: list[int]) -> bool:
    """One pass over the queue as read now, granting lowest ticket first into ``granted``; True when an entry
    joined the queue meanwhile (the pass stopped: read the queue again)."""
    version = slots.queue_version(stage)  # read before the queue: a grant checks that nothing joined since
    paused = {plan for holder in slots.holders(stage) if holder.get("quota_wait") for plan in _paused_plans(holder)}
    if paused:
        logger.info("grants paused for instances waiting for their quota",
                    extra={"stage": stage.value, "instances": sorted(paused)})  # fmt: skip
    for waiter in slots.waiting(stage):
        if waiter.plan in paused:
            continue
        outcome = slots.grant(waiter, limit, version)
        if outcome is Grant.STALE:
            return True
        if outcome in (Grant.FULL, Grant.CONFLICT):
            return False
        if outcome is Grant.JOB_ENDED:
            slots.dequeue(stage, waiter.ticket, token=waiter.token)
        if outcome in (Grant.GONE, Grant.JOB_ENDED):
            continue
        if outcome is Grant.ALREADY_HELD:
            # Its execution holds the slot already (granted to an earlier attempt of this wait): this entry's
            # token is the live one.
            slots.dequeue(stage, waiter.ticket, token=waiter.token)
            if not slots.hand_over(waiter):
                continue
        if _resume(settings, slots, waiter):
            granted.append(waiter.ticket)
    return False


def _paused_plans(holder: dict[str, Any]) -> set[str]:
    """The waiters' plans that a holder waiting for SageMaker's quota pauses: the instance type SageMaker refused
    it (its own plan where the refusal was noted without one), and the stage's configured type (plan "") where the
    holder itself was planned on that."""
    plan = holder.get("plan", "")
    refused = holder.get("quota_instance") or plan
    return {refused, ""} if not plan else {refused}


def _resume(settings: SlotSettings, slots: SlotTable, waiter: Waiter) -> bool:
    """Hand the granted slot to the waiting execution; False when that execution has ended (then the slot is
    released again, for the next in line). A throttled send keeps the slot: the sweeper sends it again."""
    output = {"stage": waiter.stage.value, "ticket": waiter.ticket, "granted_at": now()}
    try:
        aws.client("stepfunctions").send_task_success(taskToken=waiter.token, output=json.dumps(output))
    except ClientError as error:
        if error.response["Error"]["Code"] not in STALE_TOKEN_CODES:
            logger.warning("grant not delivered; the sweeper sends it again", extra={"error": str(error)})
            return True
        if _ended(waiter.execution, {}):
            slots.release(waiter.stage, waiter.execution)
            return False
        # The token is stale but the execution runs on: its wait ended (this token was delivered before), or a
        # retried wait took the slot over with a new token. Only in the first case is the slot marked resumed: the
        # mark is conditional on the holder still carrying this token, so a new one is still sent by the sweeper.
    slots.mark_resumed(waiter.stage, waiter.execution, waiter.token)
    return True


def note_quota_wait(
    settings: SlotSettings, stage: Stage, execution: str, waiting: bool, instance_type: str = ""
) -> None:
    """The holder's stage was refused for quota (``waiting``) on ``instance_type``, or has its SageMaker job now:
    grants to the waiters planned for that type pause while the holder waits, and resume (granting what is free)
    when it no longer does.

    Never raises: the stage's own work (a SageMaker job just created) must not fail over this bookkeeping. A pause
    not lifted here is lifted by the sweeper, which finds the holder's stage no longer refused.
    """
    try:
        if store(settings).mark_quota_wait(stage, execution, waiting, instance_type) and not waiting:
            grant_free_slots(settings, stage)
    except (ClientError, BotoCoreError):
        logger.exception("quota wait not noted; the sweeper corrects it", extra={"stage": stage.value})


def release_slot(settings: SlotSettings, request: ReleaseSlotInput) -> dict[str, Any]:
    """Give back the slot the execution holds at ``request.stage``, or with no stage every slot it holds and its
    place in any queue (the failure path and a cancel); then grant the freed slots to the next in line.

    Raises:
        SlotTableBusyError: DynamoDB kept refusing the slots table now (nothing lost: a retry releases what is left
            and finds what was released gone); the state machine retries the release with backoff.
    """
    with busy_is_retryable():
        return _release_slot(settings, request)


def _release_slot(settings: SlotSettings, request: ReleaseSlotInput) -> dict[str, Any]:
    slots = store(settings)
    stages = (request.stage,) if request.stage else SAGEMAKER_STAGES
    released = [stage for stage in stages if slots.release(stage, request.execution)]
    left: list[Stage] = []
    if request.stage is None:
        ticket = JobsTable(settings.jobs_table).get(request.job_id).get("ticket")
        if ticket is not None:
            left = [s for s in SAGEMAKER_STAGES if slots.dequeue(s, int(ticket), execution=request.execution)]
    # On the failure path every stage is granted, not only those released now: this may be a retry whose first
    # try freed slots and then failed (a busy table) before granting them, and finds them gone.
    granting = released if request.stage else stages
    granted = {stage.value: grant_free_slots(settings, stage) for stage in granting}
    return {"released": [s.value for s in released], "left_queue": [s.value for s in left], "granted": granted}


def forget_job(settings: SlotSettings, job: dict[str, Any]) -> dict[str, Any]:
    """A cancelled job's slots and queue places, given back (only those its current execution holds).

    Best effort: the cancel has been recorded and the execution stopped, so what a busy slots table keeps here
    the sweeper reclaims (the execution has ended); the cancel itself does not fail.
    """
    nothing: dict[str, Any] = {"released": [], "left_queue": [], "granted": {}}
    if not job.get("execution_arn"):
        return nothing
    try:
        return release_slot(settings, ReleaseSlotInput(job_id=job["job_id"], execution=job["execution_arn"]))
    except (SlotTableBusyError, ClientError, BotoCoreError):
        logger.exception("cancelled job's slots not given back now; the sweeper will", extra={"job_id": job["job_id"]})
        return nothing


def sweep(settings: SlotSettings) -> dict[str, Any]:
    """Reclaim the slots and queue places of executions that ended without giving them back, send again any grant
    that did not reach its execution, and grant what is free.

    Each holder and each waiter is looked after on its own: one that cannot be looked up now (DescribeExecution
    throttled beyond the SDK's retries, a failed write) is left for the next sweep, and the others go on.
    """
    slots, ended = store(settings), {}
    reclaimed, dropped, resent, granted = [], [], [], {}
    for stage in SAGEMAKER_STAGES:
        with _on_failure_go_on("holders", stage):
            for holder in slots.holders(stage):
                with _on_failure_go_on("holder", stage, holder["job_id"]):
                    if _ended(holder["execution"], ended):
                        if slots.release(stage, holder["execution"]):
                            reclaimed.append({"stage": stage.value, "job_id": holder["job_id"]})
                    elif not holder.get("resumed") and _age_s(holder["since"]) >= RESEND_AFTER_S:
                        _resume(settings, slots, Waiter.from_item({**holder, "pool": stage.value}))
                        resent.append({"stage": stage.value, "job_id": holder["job_id"]})
                    elif holder.get("quota_wait") and not _refused_for_quota(settings, holder["job_id"], stage):
                        # Its job was created since, but the pause was not lifted then (a failed write).
                        slots.mark_quota_wait(stage, holder["execution"], False)
        with _on_failure_go_on("queue", stage):
            for waiter in list(slots.waiting(stage)):
                with _on_failure_go_on("waiter", stage, waiter.job_id):
                    gone = _ended(waiter.execution, ended)
                    if gone and slots.dequeue(stage, waiter.ticket, execution=waiter.execution):
                        dropped.append({"stage": stage.value, "job_id": waiter.job_id})
        granted[stage.value] = grant_free_slots(settings, stage)
    if reclaimed or dropped:
        logger.warning("reclaimed slots of ended executions", extra={"reclaimed": reclaimed, "dropped": dropped})
    return {"reclaimed": reclaimed, "dropped": dropped, "resent": resent, "granted": granted}


@contextmanager
def _on_failure_go_on(what: str, stage: Stage, job_id: str | None = None) -> Iterator[None]:
    """Log a failure of AWS (throttled, unreachable, a transaction it keeps cancelling) while the sweeper looks after
    ``what``, and carry on; a holder the slot count does not account for is logged as an error (no sweep can
    release it: a person has to look) and skipped the same way."""
    about = {"what": what, "stage": stage.value, "job_id": job_id}
    try:
        yield
    except (ClientError, BotoCoreError, SlotTableBusyError, JobNotFoundError) as error:
        logger.warning("sweep: left for the next sweep", extra={**about, "error": str(error)})
    except SlotCountMismatchError as error:
        logger.error("sweep: the slot count contradicts its holders; skipped", extra={**about, "error": str(error)})


def _ended(execution: str, seen: dict[str, bool]) -> bool:
    """Whether the execution is no longer RUNNING (or does not exist), asked once per sweep."""
    if execution not in seen:
        try:
            status = aws.client("stepfunctions").describe_execution(executionArn=execution)["status"]
        except ClientError as error:
            if error.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise
            status = "MISSING"
        seen[execution] = status != "RUNNING"
    return seen[execution]


def _refused_for_quota(settings: SlotSettings, job_id: str, stage: Stage) -> bool:
    """Whether SageMaker's last answer to the job's stage was ResourceLimitExceeded (its retries go on)."""
    stages = JobsTable(settings.jobs_table).get(job_id).get("stages", {})
    return "quota_refused_since" in stages.get(stage.value, {})


def _age_s(stamp: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()


def queue_view(settings: SlotSettings, job: dict[str, Any]) -> dict[str, Any] | None:
    """Where a QUEUED job stands in its stage's queue now: ``{"stage", "position", "waiting", "since"}``;
    position None once it has been granted and is starting."""
    queue = job.get("queue")
    if job.get("status") != JobStatus.QUEUED or not queue:
        return None
    stage = Stage(queue["stage"])
    slots = store(settings)
    return {
        "stage": stage.value,
        "position": slots.position(stage, int(queue["ticket"])),
        "waiting": slots.length(stage),
        "slots": settings.slot_limit(stage),
        "since": queue.get("since"),
    }
