"""SageMaker job names: unique per attempt, at most 63 characters, SageMaker's alphabet only."""

from __future__ import annotations

import re
import secrets

from spaceport.cloud.models import Stage

__all__ = [
    "JOB_NAME_PREFIX",
    "SAGEMAKER_NAME",
    "InvalidJobNameError",
    "Stage",
    "is_our_job",
    "job_and_stage",
    "sagemaker_job_name",
]

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MAX_NAME_LENGTH = 63
# Every SageMaker job we create starts with this. The template's IAM resources (``processing-job/sp-*``) and the
# completion rule's pattern (``{"prefix": "sp-"}``) name the same prefix: jobs without it are someone else's.
JOB_NAME_PREFIX = "sp-"
OUR_NAME = re.compile(r"^sp-(?P<job>[a-z0-9-]+)-(?P<stage>sfm|train|compress)-a[0-9]+-[0-9a-f]{6}$")


class InvalidJobNameError(ValueError):
    """A generated name SageMaker would reject (botocore does not check name patterns)."""


def sagemaker_job_name(job_id: str, stage: Stage, attempt: int) -> str:
    """``sp-<job>-<stage>-a<attempt>-<random>``; the random tail keeps names fresh even when a retry
    reuses an attempt number (a record written before a crash), because SageMaker never reuses a name."""
    tail = f"-{stage.value}-a{attempt}-{secrets.token_hex(3)}"
    head = re.sub(r"[^a-zA-Z0-9-]", "-", f"{JOB_NAME_PREFIX}{job_id}")[: MAX_NAME_LENGTH - len(tail)].rstrip("-")
    name = head + tail
    if not SAGEMAKER_NAME.match(name):
        raise InvalidJobNameError(name)
    return name


def is_our_job(name: str) -> bool:
    """Whether a SageMaker job name is one of ours (so worth a Describe call and a look in the jobs table)."""
    return name.startswith(JOB_NAME_PREFIX)


def job_and_stage(name: str) -> tuple[str, Stage] | None:
    """The job id and stage a name of ours was made for (``sagemaker_job_name`` in reverse); None for another
    team's name. A job id cut short to fit 63 characters comes back short, and finds no job."""
    match = OUR_NAME.match(name)
    return (match["job"], Stage(match["stage"])) if match else None
