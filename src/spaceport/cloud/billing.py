"""What each ended SageMaker job of ours billed, kept in its job's record: recorded when its end event arrives,
and described again by the sweeper while SageMaker has not reported the figure yet.

A managed spot training job's ``BillableTimeInSeconds`` may be missing from the description made at its end; its
entry is then ``seconds_unknown`` (never priced at the wall clock, never free) and the job is marked for a
recheck (``JobsTable.record_billing``). Each sweep describes the marked jobs' unknown entries again and replaces an
entry once SageMaker has the figure; a description still without it after ``RECHECK_FOR_S`` is left unknown, and
the job's cost keeps naming it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from spaceport.cloud import aws
from spaceport.cloud.cost import PriceTable, billing_entry
from spaceport.cloud.jobs import JobNotFoundError, JobsTable, now
from spaceport.cloud.models import Stage
from spaceport.cloud.names import job_and_stage
from spaceport.cloud.settings import SweepSettings

logger = Logger(child=True)

# How long an entry without its billable time is described again (SageMaker reports it minutes after the end).
RECHECK_FOR_S = 7 * 24 * 3600


def describe(name: str, training: bool) -> dict[str, Any]:
    """SageMaker's description of our job ``name``: the authoritative word on its end and its billable time."""
    sagemaker = aws.client("sagemaker")
    if training:
        return sagemaker.describe_training_job(TrainingJobName=name)
    return sagemaker.describe_processing_job(ProcessingJobName=name)


def record(prices: PriceTable, table: JobsTable, name: str, description: dict[str, Any]) -> None:
    """Keep what the ended job ``name`` billed in its job's record (an entry per SageMaker job: a duplicate event
    writes it again); an entry without its billable time marks the job for the sweeper's recheck."""
    owner = job_and_stage(name)
    if owner is None:
        logger.error("SageMaker job name not ours to bill", extra={"sagemaker_job": name})
        return
    # The job's id as its request carried it; the name holds it too, but cut short where the id is long.
    job_id = (description.get("Environment") or {}).get("SPACEPORT_JOB_ID") or owner[0]
    entry = billing_entry(owner[1], description, prices)
    if entry.get("seconds_unknown"):
        entry["unknown_since"] = now()
    if not table.record_billing(job_id, name, entry):
        logger.error("no job record to bill", extra={"sagemaker_job": name, "job_id": job_id})


def recheck(settings: SweepSettings) -> list[dict[str, Any]]:
    """Describe again every entry still without its billable time; returns the entries now billed. A job whose
    recheck fails (throttled, its record gone) is left marked for the next sweep, and the others go on; so are the
    jobs not listed when listing the marked ones fails. Never raises for AWS: the sweep's slot work stands."""
    table, billed = JobsTable(settings.jobs_table), []
    try:
        for job_id in table.jobs_to_recheck():
            try:
                billed += _recheck_job(settings.prices, table, job_id)
            except (ClientError, BotoCoreError, JobNotFoundError):
                logger.exception("billing not rechecked now; the next sweep tries again", extra={"job_id": job_id})
    except (ClientError, BotoCoreError):
        logger.exception("jobs to recheck not listed now; the next sweep lists them again")
    return billed


def _recheck_job(prices: PriceTable, table: JobsTable, job_id: str) -> list[dict[str, Any]]:
    job = table.get(job_id)
    billed, waiting = [], False
    for name, entry in (job.get("billing") or {}).items():
        if not entry.get("seconds_unknown") or _age_s(entry.get("unknown_since")) > RECHECK_FOR_S:
            continue
        stage = Stage(entry["stage"])
        fresh = billing_entry(stage, describe(name, stage is Stage.TRAIN), prices)
        if fresh.get("seconds_unknown"):
            waiting = True
            continue
        table.record_billing(job_id, name, fresh)
        billed.append({"job_id": job_id, "sagemaker_job": name, "billable_seconds": fresh["billable_seconds"]})
    if not waiting:
        table.clear_billing_recheck(job_id, job.get("billing_recheck_mark"))
    return billed


def _age_s(stamp: str | None) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds() if stamp else 0.0
