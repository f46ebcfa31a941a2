"""Typed shapes of the job record, the state machine's inputs and outputs, and the API bodies."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Job ids are used in S3 keys, execution names and SageMaker job names: keep them to a safe alphabet.
JOB_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,39}$")


class JobStatus(StrEnum):
    """Lifecycle of a job. AWAITING_UPLOAD exists only between POST /jobs and the upload that starts it."""

    AWAITING_UPLOAD = "AWAITING_UPLOAD"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class Stage(StrEnum):
    """Pipeline stages in order; the three SageMaker stages follow validation."""

    VALIDATE = "validate"
    SFM = "sfm"
    TRAIN = "train"
    COMPRESS = "compress"


STAGE_ORDER = (Stage.VALIDATE, Stage.SFM, Stage.TRAIN, Stage.COMPRESS)
SAGEMAKER_STAGES = (Stage.SFM, Stage.TRAIN, Stage.COMPRESS)


class Preset(StrEnum):
    """Quality presets the train stage understands."""

    FAST = "fast"
    DEFAULT = "default"
    QUALITY = "quality"


class JobOptions(BaseModel):
    """What a user may choose for a job (job.json, or the POST /jobs body). Everything else is ours."""

    model_config = ConfigDict(extra="forbid")

    preset: Preset | None = None
    iterations: int | None = Field(default=None, ge=100, le=100_000)
    sh_degree: int | None = Field(default=None, ge=0, le=3)
    max_gaussians: int | None = Field(default=None, ge=1_000, le=10_000_000)
    georef: bool | None = Field(
        default=None, description="false keeps structure from motion's frame: no GPS registration, not turned upright"
    )
    webhook_url: str | None = Field(
        default=None, max_length=2048, pattern=r"^https?://\S+$",
        description="every status change of the job is POSTed here, signed (default: the stack's DefaultWebhookUrl)",
    )  # fmt: skip


class CreateJobRequest(JobOptions):
    """POST /jobs body: options, and how the photos will be uploaded."""

    upload: str = Field(default="zip", pattern="^(zip|images)$")
    archive_bytes: int | None = Field(default=None, ge=1)
    file_names: list[str] = Field(default_factory=list, max_length=2_000)
    photo_count: int | None = Field(
        default=None, ge=1, le=100_000, description="how many photos the upload holds: the cost estimate's basis"
    )

    @field_validator("file_names")
    @classmethod
    def _plain_names(cls, names: list[str]) -> list[str]:
        for name in names:
            # One path segment, no traversal: presigned URLs must stay inside the job's own prefix.
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,127}", name) or ".." in name:
                raise ValueError(f"unsupported file name: {name!r}")
        return names

    def options(self) -> JobOptions:
        return JobOptions(**self.model_dump(include=set(JobOptions.model_fields)))

    def declared_photos(self) -> int | None:
        """The photo count the cost estimate uses: the one declared, else the number of photo files named."""
        return self.photo_count or len(self.file_names) or None


class RetryRequest(BaseModel):
    """POST /jobs/{id}/retry body."""

    model_config = ConfigDict(extra="forbid")

    from_stage: Stage | None = None


class ExecutionInput(BaseModel):
    """What the trigger and the API start an execution with. Never roles, images or instance types."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    start_at: Stage = Stage.VALIDATE

    @field_validator("job_id")
    @classmethod
    def _valid_job_id(cls, job_id: str) -> str:
        if not JOB_ID_PATTERN.match(job_id):
            raise ValueError(f"invalid job id: {job_id!r}")
        return job_id


class ValidateInput(BaseModel):
    """Payload of the Validate task."""

    job_id: str


class StartStageInput(BaseModel):
    """Payload of a SageMaker stage's waitForTaskToken task; ``execution`` ($$.Execution.Id) names the slot it
    holds."""

    job_id: str
    stage: Stage
    token: str = Field(min_length=1)
    execution: str | None = None


class SlotRequest(BaseModel):
    """Payload of a "Wait for a <stage> slot" task: the execution queues for one of the stage's slots."""

    job_id: str
    stage: Stage
    execution: str = Field(min_length=1, description="$$.Execution.Id: the slot is held by this execution")
    token: str = Field(min_length=1)

    @field_validator("stage")
    @classmethod
    def _sagemaker_stage(cls, stage: Stage) -> Stage:
        if stage not in SAGEMAKER_STAGES:
            raise ValueError(f"{stage} has no slots (only the SageMaker stages do)")
        return stage


class ReleaseSlotInput(BaseModel):
    """Payload of "Release the <stage> slot" (one stage) and of "Release the job's slots" (no stage: every slot the
    execution holds, and its place in any queue)."""

    job_id: str
    execution: str = Field(min_length=1)
    stage: Stage | None = None


class StageError(BaseModel):
    """What a Catch puts at ``$.error``: Step Functions' own Error / Cause pair."""

    Error: str = "States.Unknown"
    Cause: str | None = None


class RecordOutcomeInput(BaseModel):
    """Payload of the success and failure recording tasks."""

    job_id: str
    outcome: JobStatus
    stage: Stage | None = None
    error: StageError | None = None


class StageResult(BaseModel):
    """What a finished SageMaker stage hands back to the state machine through its task token."""

    stage: Stage
    sagemaker_job: str
    output: str
    figures: dict[str, Any] = Field(default_factory=dict)
