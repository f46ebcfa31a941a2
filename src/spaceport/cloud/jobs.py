"""Data access for the jobs table: one item per job, every write conditional where a race is possible.

Item layout (``job_id`` is the key): ``status``, ``current_stage``, ``options``, ``upload``, ``multipart``
(a pending multipart upload: ``upload_id``, ``parts``), ``execution_arn``, ``stages`` (a map per stage:
``status``, ``started_at``, ``ended_at``, ``sagemaker_job``, ``sagemaker_jobs`` (every attempt's job, in order),
``attempts``, ``figures``, ``reason``), ``outputs``, ``failed_stage``, ``failure_reason``, ``created_at``,
``updated_at``. The running SageMaker job's name and task token sit at the top level (``sagemaker_job``,
``wait_token``) so the ``by-sagemaker-job`` index finds the job from a SageMaker state change event. ``ticket`` is the
job's place in upload order (the slots table hands it out; queues serve the lowest first); ``queue`` (``stage``,
``ticket``, ``since``, ``position`` when it joined) is there while the job is QUEUED for a stage's slot; a stage's
``quota_refused_since`` is when SageMaker first answered ResourceLimitExceeded to it (epoch seconds). ``billing`` maps
each of the job's ended SageMaker jobs (every attempt) to its billable seconds, instance and priced cost
(``spaceport.cloud.cost.billing_entry``); ``billing_recheck`` (the key of the ``by-billing-recheck`` index, present
only while some entry lacks its billable time) and ``billing_recheck_mark`` (which marking it was) point the sweeper at
the jobs to describe again (``spaceport.cloud.billing``). ``resources`` holds the instance type and volume the
validate step chose for each Processing stage from the job's size (``spaceport.cloud.stage_resources``).

The token is removed only after Step Functions accepted it (``release_token``), and only while it is still the
one stored for that SageMaker job: a send that failed leaves it for the redelivered event, and a late event of an
earlier stage can never remove the token the next stage stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from spaceport.cloud import aws
from spaceport.cloud.models import STAGE_ORDER, TERMINAL_STATUSES, JobStatus, Stage

LIST_PARTITION = "JOB"
LIST_INDEX = "by-created"
SAGEMAKER_INDEX = "by-sagemaker-job"
RECHECK_INDEX = "by-billing-recheck"
RECHECK_PARTITION = "PENDING"


class JobNotFoundError(Exception):
    """No job with this id."""


class JobConflictError(Exception):
    """The job is not in a state that allows this change (e.g. a duplicate start, a retry while running)."""


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def to_dynamo(value: Any) -> Any:
    """DynamoDB numbers must be Decimal; floats from manifests are converted through their repr."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: to_dynamo(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_dynamo(item) for item in value]
    return value


def from_dynamo(value: Any) -> Any:
    """Decimals back to int or float, so records serialise to JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: from_dynamo(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_dynamo(item) for item in value]
    return value


def _conditional_failed(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class JobsTable:
    """Reads and writes job records."""

    def __init__(self, table_name: str) -> None:
        self._table = aws.table(table_name)

    def get(self, job_id: str) -> dict[str, Any]:
        item = self._table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise JobNotFoundError(job_id)
        return from_dynamo(item)

    def new_item(self, job_id: str, status: JobStatus, options: dict[str, Any], upload: dict[str, Any]) -> dict:
        stamp = now()
        return {
            "job_id": job_id,
            "list_pk": LIST_PARTITION,
            "status": status.value,
            "options": to_dynamo(options),
            "upload": upload,
            "stages": {stage.value: {"status": "PENDING", "attempts": 0} for stage in STAGE_ORDER},
            "outputs": {},
            "executions": 0,
            "created_at": stamp,
            "updated_at": stamp,
        }

    def create_awaiting_upload(
        self, job_id: str, options: dict[str, Any], upload: dict[str, Any], multipart: dict[str, Any] | None = None
    ) -> dict:
        """Record a job announced through the API; its upload starts it later. ``multipart`` keeps a multipart
        upload's id and part count, so its part URLs can be signed again and the upload aborted."""
        item = self.new_item(job_id, JobStatus.AWAITING_UPLOAD, options, upload)
        if multipart:
            item["multipart"] = multipart
        self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        return from_dynamo(item)

    def claim_for_start(
        self, job_id: str, options: dict[str, Any], upload: dict[str, Any], ticket: int | None = None
    ) -> bool:
        """Move a job to QUEUED exactly once, with its ``ticket`` (its place in upload order) if given. Returns
        False when another event already claimed it.

        The condition makes duplicate or concurrent upload events harmless: only one caller sees True.
        Options announced through the API win over those in a later job.json only where job.json is silent.
        """
        stamp = now()
        extra = {":ticket": ticket} if ticket is not None else {}
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=(
                    "SET #status = :queued, list_pk = :pk, created_at = if_not_exists(created_at, :now), "
                    "updated_at = :now, upload = :upload, options = :options, "
                    "stages = if_not_exists(stages, :stages), outputs = if_not_exists(outputs, :empty), "
                    "executions = if_not_exists(executions, :zero)"
                    + (", ticket = if_not_exists(ticket, :ticket)" if extra else "")
                ),
                ConditionExpression="attribute_not_exists(job_id) OR #status = :awaiting",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":queued": JobStatus.QUEUED.value,
                    ":awaiting": JobStatus.AWAITING_UPLOAD.value,
                    ":pk": LIST_PARTITION,
                    ":now": stamp,
                    ":upload": upload,
                    ":options": to_dynamo(options),
                    ":stages": {stage.value: {"status": "PENDING", "attempts": 0} for stage in STAGE_ORDER},
                    ":empty": {},
                    ":zero": 0,
                    **extra,
                },
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def assign_ticket(self, job_id: str, ticket: int) -> int:
        """The job's ticket: ``ticket`` unless it has one already (a job claimed before tickets existed)."""
        response = self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET ticket = if_not_exists(ticket, :ticket)",
            ExpressionAttributeValues={":ticket": ticket},
            ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["ticket"])

    def set_execution(self, job_id: str, execution_arn: str, number: int) -> None:
        """Record the job's current execution and how many it has had (retry names count on it)."""
        self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET execution_arn = :arn, executions = :number, updated_at = :now",
            ExpressionAttributeValues={":arn": execution_arn, ":number": number, ":now": now()},
        )

    def requeue(self, job_id: str, from_stage: Stage, ticket: int | None = None) -> dict[str, Any]:
        """Move a FAILED or CANCELLED job back to QUEUED for a retry, with a new ``ticket`` if given (a retry
        queues behind the uploads already waiting); the stages from ``from_stage`` reset."""
        names = {"#status": "status", "#stages": "stages", "#queue": "queue"}
        sets = ["#status = :queued", "updated_at = :now"]
        removes = ["failed_stage", "failure_reason", "wait_token", "#queue"]
        values: dict[str, Any] = {":queued": JobStatus.QUEUED.value, ":now": now(), ":failed": "FAILED"}
        values[":cancelled"] = JobStatus.CANCELLED.value
        if ticket is not None:
            sets.append("ticket = :ticket")
            values[":ticket"] = ticket
        for index, stage in enumerate(STAGE_ORDER[STAGE_ORDER.index(from_stage) :]):
            names[f"#s{index}"] = stage.value
            sets.append(f"#stages.#s{index}.#status = :pending")
            removes.append(f"#stages.#s{index}.quota_refused_since")
        values[":pending"] = "PENDING"
        try:
            response = self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes),
                ConditionExpression="#status IN (:failed, :cancelled)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _conditional_failed(error):
                raise JobConflictError(f"job {job_id} is not FAILED or CANCELLED") from error
            raise
        return from_dynamo(response["Attributes"])

    def begin_stage(self, job_id: str, stage: Stage) -> int:
        """Mark ``stage`` running (the job RUNNING, out of any queue) and count the attempt; returns the attempt
        number.

        Refuses a job that already ended (a cancel raced the state machine), so no path revives it.
        """
        try:
            response = self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=(
                    "SET #status = :running, current_stage = :stage, updated_at = :now, "
                    "#stages.#stage.#status = :running, #stages.#stage.started_at = :now "
                    "ADD #stages.#stage.attempts :one REMOVE #queue"
                ),
                ConditionExpression="#status IN (:queued, :running)",
                ExpressionAttributeNames={
                    "#status": "status",
                    "#stages": "stages",
                    "#stage": stage.value,
                    "#queue": "queue",
                },
                ExpressionAttributeValues={
                    ":running": JobStatus.RUNNING.value,
                    ":queued": JobStatus.QUEUED.value,
                    ":stage": stage.value,
                    ":now": now(),
                    ":one": 1,
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _conditional_failed(error):
                raise JobConflictError(f"job {job_id} is no longer queued or running") from error
            raise
        return int(response["Attributes"]["stages"][stage.value]["attempts"])

    def attach_sagemaker_job(self, job_id: str, stage: Stage, sagemaker_job: str, token: str) -> None:
        """Remember which SageMaker job a stage waits for and the task token that resumes it, and add the job to the
        stage's list of attempts (written before the job is created, so no job can exist unrecorded)."""
        self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression=(
                "SET sagemaker_job = :name, wait_token = :token, updated_at = :now, "
                "#stages.#stage.sagemaker_job = :name, #stages.#stage.sagemaker_jobs = "
                "list_append(if_not_exists(#stages.#stage.sagemaker_jobs, :none), :names)"
            ),
            ExpressionAttributeNames={"#stages": "stages", "#stage": stage.value},
            ExpressionAttributeValues={
                ":name": sagemaker_job,
                ":names": [sagemaker_job],
                ":none": [],
                ":token": token,
                ":now": now(),
            },
        )

    def forget_refused_attempt(self, job_id: str, stage: Stage, sagemaker_job: str, index: int) -> None:
        """Take a job SageMaker refused to create (a ClientError answered the Create call) off the stage's list of
        attempts, at ``index``, where ``attach_sagemaker_job`` appended it: only jobs that may exist are stopped,
        and hours of quota retries do not make every later attempt stop hundreds of names."""
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=f"REMOVE #stages.#stage.sagemaker_jobs[{index}]",
                ConditionExpression=f"#stages.#stage.sagemaker_jobs[{index}] = :name",
                ExpressionAttributeNames={"#stages": "stages", "#stage": stage.value},
                ExpressionAttributeValues={":name": sagemaker_job},
            )
        except ClientError as error:
            if not _conditional_failed(error):
                raise

    def note_quota_refusal(self, job_id: str, stage: Stage, at: float) -> float:
        """Remember when SageMaker first refused the stage for quota (epoch seconds); returns that first time."""
        response = self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression=(
                "SET #stages.#stage.quota_refused_since = if_not_exists(#stages.#stage.quota_refused_since, :at), "
                "updated_at = :now"
            ),
            ExpressionAttributeNames={"#stages": "stages", "#stage": stage.value},
            ExpressionAttributeValues={":at": to_dynamo(float(at)), ":now": now()},
            ReturnValues="ALL_NEW",
        )
        return float(response["Attributes"]["stages"][stage.value]["quota_refused_since"])

    def clear_quota_refusal(self, job_id: str, stage: Stage) -> None:
        """SageMaker accepted the stage's job: the quota wait is over."""
        self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="REMOVE #stages.#stage.quota_refused_since",
            ExpressionAttributeNames={"#stages": "stages", "#stage": stage.value},
        )

    def note_stage_failure(self, job_id: str, stage: Stage, sagemaker_job: str, reason: str) -> bool:
        """Keep the attempt's own reason (ExitMessage / FailureReason) with the stage, whatever the Catch sees.

        Returns False (nothing written) when the stage no longer waits for ``sagemaker_job``: a stale event.
        """
        return self._update_if_current(
            job_id,
            sagemaker_job,
            UpdateExpression="SET #stages.#stage.reason = :reason, updated_at = :now",
            ExpressionAttributeNames={"#stages": "stages", "#stage": stage.value},
            ExpressionAttributeValues={":reason": reason[:4000], ":now": now()},
        )

    def record_stage_result(
        self, job_id: str, stage: Stage, sagemaker_job: str, figures: dict[str, Any], outputs: dict[str, str]
    ) -> bool:
        """Record a SageMaker stage's success while its token stays stored (``release_token`` removes it once
        Step Functions has it). Returns False (nothing written) when the stage no longer waits for ``sagemaker_job``."""
        names, sets, values = self._stage_end(stage, "SUCCEEDED", figures, outputs)
        return self._update_if_current(
            job_id,
            sagemaker_job,
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def release_token(self, job_id: str, sagemaker_job: str, token: str) -> bool:
        """Forget the task token once Step Functions accepted it (or no longer waits for it), only if it is still
        the token stored for ``sagemaker_job``; False when another stage's token has replaced it meanwhile."""
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="REMOVE wait_token SET updated_at = :now",
                ConditionExpression="sagemaker_job = :name AND wait_token = :token",
                ExpressionAttributeValues={":name": sagemaker_job, ":token": token, ":now": now()},
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def _update_if_current(self, job_id: str, sagemaker_job: str, **update: Any) -> bool:
        """An update applied only while ``sagemaker_job`` is the job the record waits for."""
        values = {**update.pop("ExpressionAttributeValues"), ":current": sagemaker_job}
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                ConditionExpression="sagemaker_job = :current",
                ExpressionAttributeValues=values,
                **update,
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        return True

    def set_resources(self, job_id: str, resources: dict[str, Any]) -> None:
        """Keep the instance and volume each Processing stage will get (a retry reuses them)."""
        self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET resources = :resources, updated_at = :now",
            ExpressionAttributeValues={":resources": to_dynamo(resources), ":now": now()},
        )

    def record_billing(self, job_id: str, sagemaker_job: str, entry: dict[str, Any]) -> bool:
        """Keep what an ended SageMaker job of this job billed, under its name: a duplicate event writes the same
        entry again, and every attempt (a stale or stopped one too) counts once. False when no such job exists."""
        names = {"#billing": "billing"}
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET #billing = if_not_exists(#billing, :empty)",
                ConditionExpression="attribute_exists(job_id)",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":empty": {}},
            )
        except ClientError as error:
            if _conditional_failed(error):
                return False
            raise
        sets, values = ["#billing.#name = :entry", "updated_at = :now"], {":entry": to_dynamo(entry), ":now": now()}
        if entry.get("seconds_unknown"):
            # Found by the sweeper's query of the sparse index; the mark tells a later marking from this one.
            sets += ["billing_recheck = :pending", "billing_recheck_mark = :mark"]
            values |= {":pending": RECHECK_PARTITION, ":mark": f"{sagemaker_job} {values[':now']}"}
        self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames={**names, "#name": sagemaker_job},
            ExpressionAttributeValues=values,
        )
        return True

    def jobs_to_recheck(self) -> Iterator[str]:
        """The ids of the jobs marked for a billing recheck (an entry without SageMaker's billable time)."""
        query: dict[str, Any] = {
            "IndexName": RECHECK_INDEX,
            "KeyConditionExpression": Key("billing_recheck").eq(RECHECK_PARTITION),
        }
        while True:
            response = self._table.query(**query)
            yield from (item["job_id"] for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return
            query["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def clear_billing_recheck(self, job_id: str, mark: str | None) -> None:
        """Unmark the job, unless it was marked again (a newer entry without its time) since ``mark`` was read."""
        condition = "billing_recheck_mark = :mark" if mark else "attribute_not_exists(billing_recheck_mark)"
        try:
            self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="REMOVE billing_recheck, billing_recheck_mark",
                ConditionExpression=condition,
                **({"ExpressionAttributeValues": {":mark": mark}} if mark else {}),
            )
        except ClientError as error:
            if not _conditional_failed(error):
                raise

    def find_by_sagemaker_job(self, sagemaker_job: str) -> dict[str, Any] | None:
        response = self._table.query(
            IndexName=SAGEMAKER_INDEX, KeyConditionExpression=Key("sagemaker_job").eq(sagemaker_job), Limit=1
        )
        items = response.get("Items", [])
        # The index projects keys only (it is read once per stage); the token comes from a consistent read.
        return self.get(items[0]["job_id"]) if items else None

    def end_stage(
        self, job_id: str, stage: Stage, status: str, figures: dict[str, Any], outputs: dict[str, str]
    ) -> None:
        """Record the end of a stage without a SageMaker job (validation): its figures and the outputs it produced."""
        names, sets, values = self._stage_end(stage, status, figures, outputs)
        self._table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    @staticmethod
    def _stage_end(
        stage: Stage, status: str, figures: dict[str, Any], outputs: dict[str, str]
    ) -> tuple[dict[str, str], list[str], dict[str, Any]]:
        """The SET clauses (with their names and values) that record a stage's end, figures and outputs."""
        names = {"#stages": "stages", "#stage": stage.value, "#status": "status", "#outputs": "outputs"}
        sets = [
            "#stages.#stage.#status = :status",
            "#stages.#stage.ended_at = :now",
            "#stages.#stage.figures = :figures",
            "updated_at = :now",
        ]
        values: dict[str, Any] = {":status": status, ":now": now(), ":figures": to_dynamo(figures)}
        for index, (name, uri) in enumerate(outputs.items()):
            names[f"#o{index}"] = name
            values[f":o{index}"] = uri
            sets.append(f"#outputs.#o{index} = :o{index}")
        return names, sets, values

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        failed_stage: str | None = None,
        reason: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Write the job's final status once; returns (record, changed). A terminal status is never overwritten."""
        names = {"#status": "status", "#queue": "queue"}
        values: dict[str, Any] = {":status": status.value, ":now": now()}
        sets = ["#status = :status", "updated_at = :now", "finished_at = :now"]
        if failed_stage:
            sets.append("failed_stage = :stage")
            values[":stage"] = failed_stage
            names["#stages"] = "stages"
            names["#failed"] = failed_stage
            sets.append("#stages.#failed.#status = :status")
            sets.append("#stages.#failed.ended_at = if_not_exists(#stages.#failed.ended_at, :now)")
        if reason:
            sets.append("failure_reason = :reason")
            values[":reason"] = reason[:4000]
        terminal = sorted(s.value for s in TERMINAL_STATUSES)
        for index, value in enumerate(terminal):
            values[f":t{index}"] = value
        condition = "attribute_exists(job_id) AND NOT #status IN (" + ", ".join(f":t{i}" for i in range(3)) + ")"
        try:
            response = self._table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET " + ", ".join(sets) + " REMOVE wait_token, #queue",
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _conditional_failed(error):
                return self.get(job_id), False
            raise
        return from_dynamo(response["Attributes"]), True

    def list_page(self, limit: int, start_key: dict[str, Any] | None) -> tuple[list[dict], dict | None]:
        """A page of jobs, newest first, and the key to continue from."""
        kwargs: dict[str, Any] = {
            "IndexName": LIST_INDEX,
            "KeyConditionExpression": Key("list_pk").eq(LIST_PARTITION),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        response = self._table.query(**kwargs)
        return [from_dynamo(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey")
