"""Settings from the environment, parsed once per cold start; a missing variable fails loudly."""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from aws_lambda_powertools import Logger
from pydantic import BaseModel, Field, ValidationError, field_validator

from spaceport.cloud.cost import PriceTable

logger = Logger(child=True)


class SettingsError(RuntimeError):
    """The function's environment is incomplete: a deployment problem, never the user's."""


class CommonSettings(BaseModel):
    """What every function needs: the jobs table, the data bucket, where status changes go."""

    jobs_table: str = Field(alias="JOBS_TABLE_NAME")
    data_bucket: str = Field(alias="DATA_BUCKET_NAME")
    topic_arn: str = Field(alias="NOTIFICATION_TOPIC_ARN")
    event_bus: str = Field(alias="EVENT_BUS_NAME")


class WebhookSettings(CommonSettings):
    """The webhook function: the stack's signing secret, the queue that brings retries back, and how long to try."""

    secret_arn: str = Field(alias="WEBHOOK_SECRET_ARN")
    retry_queue_url: str = Field(alias="WEBHOOK_RETRY_QUEUE_URL")
    retry_hours: float = Field(alias="WEBHOOK_RETRY_HOURS", gt=0)
    # The first retry's delay; each next one doubles it, up to SQS's 15 minutes.
    retry_base_s: float = Field(default=30.0, alias="WEBHOOK_RETRY_BASE_SECONDS", gt=0)
    timeout_s: float = Field(default=10.0, alias="WEBHOOK_TIMEOUT_SECONDS", gt=0)

    @property
    def give_up_after_s(self) -> float:
        return self.retry_hours * 3600


class PricingSettings(BaseModel):
    """The dated table of SageMaker instance prices (the InstancePrices parameter, JSON) that costs are
    estimated from. A malformed table never fails the settings (it would stop every job's completion): what is
    wrong is logged and named in the costs, and the entries it spoils are left unpriced."""

    prices: PriceTable = Field(alias="INSTANCE_PRICES")

    @field_validator("prices", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        table = PriceTable.parse(value)
        if table.problems:
            logger.error("InstancePrices has problems; the instances concerned are unpriced",
                         extra={"problems": table.problems})  # fmt: skip
        return table


class CompletionSettings(CommonSettings, PricingSettings):
    """complete_stage: the jobs table and bucket, and the prices that each ended SageMaker job is billed at."""


class SlotSettings(CommonSettings):
    """The slots table and how many SageMaker jobs of each stage may run at once (MaxConcurrent*Jobs)."""

    slots_table: str = Field(alias="SLOTS_TABLE_NAME")
    max_sfm_jobs: int = Field(alias="MAX_CONCURRENT_SFM_JOBS", ge=1)
    max_train_jobs: int = Field(alias="MAX_CONCURRENT_TRAIN_JOBS", ge=1)
    max_compress_jobs: int = Field(alias="MAX_CONCURRENT_COMPRESS_JOBS", ge=1)

    def slot_limit(self, stage: str) -> int:
        """How many jobs of ``stage`` (sfm, train or compress) may hold a slot at once."""
        return int(getattr(self, f"max_{stage}_jobs"))


class SweepSettings(SlotSettings, PricingSettings):
    """The sweeper: the slots, and the prices that a billing entry described again is priced at."""


class ValidatorLimits(BaseModel):
    """The validator's limits, template parameters so an operator can change them without a release. The validate
    Lambda applies them, and the sfm job gets them (``SPACEPORT_*``) so its own check of the photos agrees."""

    max_images: int = Field(alias="SPACEPORT_MAX_IMAGES", ge=1)
    min_images: int = Field(alias="SPACEPORT_MIN_IMAGES", ge=1)
    max_archive_bytes: int = Field(alias="SPACEPORT_MAX_ARCHIVE_BYTES", ge=1)
    max_expanded_bytes: int = Field(alias="SPACEPORT_MAX_EXPANDED_BYTES", ge=1)
    max_image_pixels: int = Field(alias="SPACEPORT_MAX_IMAGE_PIXELS", ge=1)

    def limits_environment(self) -> dict[str, str]:
        """The limits as the environment variables ``spaceport.validation.Limits.from_env`` reads."""
        return {str(field.alias): str(getattr(self, name)) for name, field in ValidatorLimits.model_fields.items()}


class ProcessingSizes(BaseModel):
    """What a Processing stage's instance may be: from the smallest (``*InstanceType``) up to the largest
    (``*LargestInstanceType``) size of its family, on at least the configured volume."""

    sfm_instance_type: str = Field(alias="SFM_INSTANCE_TYPE")
    compress_instance_type: str = Field(alias="COMPRESS_INSTANCE_TYPE")
    sfm_largest_instance_type: str = Field(alias="SFM_LARGEST_INSTANCE_TYPE")
    compress_largest_instance_type: str = Field(alias="COMPRESS_LARGEST_INSTANCE_TYPE")
    sfm_volume_gb: int = Field(alias="SFM_VOLUME_GB", ge=1, le=16_384)
    compress_volume_gb: int = Field(alias="COMPRESS_VOLUME_GB", ge=1, le=16_384)


class StageSettings(SlotSettings, ValidatorLimits, ProcessingSizes):
    """Everything a SageMaker stage request needs (and its stage's slots). It comes from the template, never from an
    execution."""

    role_arn: str = Field(alias="SAGEMAKER_ROLE_ARN")
    sfm_repository: str = Field(alias="SFM_REPOSITORY_URI")
    train_repository: str = Field(alias="TRAIN_REPOSITORY_URI")
    compress_repository: str = Field(alias="COMPRESS_REPOSITORY_URI")
    sfm_image_tag: str = Field(alias="SFM_IMAGE_TAG")
    train_image_tag: str = Field(alias="TRAIN_IMAGE_TAG")
    compress_image_tag: str = Field(alias="COMPRESS_IMAGE_TAG")
    train_instance_type: str = Field(alias="TRAIN_INSTANCE_TYPE")
    train_volume_gb: int = Field(alias="TRAIN_VOLUME_GB", ge=1, le=16_384)
    sfm_max_runtime_s: int = Field(alias="SFM_MAX_RUNTIME_SECONDS", ge=60, le=432_000)
    train_max_runtime_s: int = Field(alias="TRAIN_MAX_RUNTIME_SECONDS", ge=60, le=2_419_200)
    compress_max_runtime_s: int = Field(alias="COMPRESS_MAX_RUNTIME_SECONDS", ge=60, le=432_000)
    spot_training: bool = Field(alias="SPOT_TRAINING")
    # With spot, how long a training job may wait for capacity on top of its runtime: SageMaker's
    # MaxWaitTimeInSeconds is their sum, and so (plus the margin) is the state machine's wait. A wait expressed as
    # an addition cannot be shorter than the runtime, which CloudFormation could not check (no numeric comparison
    # in template Rules).
    spot_capacity_wait_s: int = Field(alias="SPOT_CAPACITY_WAIT_SECONDS", ge=0)
    default_preset: str = Field(alias="DEFAULT_PRESET")
    device: str = Field(default="cuda", alias="TRAIN_DEVICE")
    # How long a stage keeps retrying while SageMaker answers ResourceLimitExceeded (the account's quota is taken,
    # by another stack or since it was lowered) before the job fails naming the quota to raise.
    quota_wait_s: int = Field(alias="QUOTA_WAIT_SECONDS", ge=0)


class ValidatorSettings(CommonSettings, ValidatorLimits, ProcessingSizes):
    """The validate Lambda: the jobs table and bucket, the validator's limits, and what the stages will run on (the
    instance types, volumes and the default preset), so a job too large for them is refused before SfM and the
    Processing stages get instances sized for the job."""

    train_instance_type: str = Field(alias="TRAIN_INSTANCE_TYPE")
    default_preset: str = Field(alias="DEFAULT_PRESET")
    sfm_max_runtime_s: int = Field(alias="SFM_MAX_RUNTIME_SECONDS", ge=60, le=432_000)


class ExecutionSettings(SlotSettings):
    """Functions that start or stop executions: the trigger (which hands out queue tickets) and the API (a cancel
    gives back the job's slots)."""

    state_machine_arn: str = Field(alias="STATE_MACHINE_ARN")
    default_preset: str = Field(alias="DEFAULT_PRESET")
    url_expiry_s: int = Field(default=900, alias="UPLOAD_URL_EXPIRY_SECONDS", ge=60, le=3600)
    # Where a new job's status changes are posted unless it names its own webhook_url (DefaultWebhookUrl).
    default_webhook_url: str = Field(default="", alias="DEFAULT_WEBHOOK_URL")
    # Deployed, webhooks go to https:// URLs only; the local stack posts to receivers on http://127.0.0.1.
    webhook_https_only: bool = Field(default=True, alias="WEBHOOK_HTTPS_ONLY")


class ApiSettings(ExecutionSettings, PricingSettings):
    """The API: what a cancel or retry needs, and what POST /jobs estimates a job's cost from (the stages'
    instance types and runtimes) and the photo counts the validator accepts."""

    sfm_instance_type: str = Field(alias="SFM_INSTANCE_TYPE")
    train_instance_type: str = Field(alias="TRAIN_INSTANCE_TYPE")
    compress_instance_type: str = Field(alias="COMPRESS_INSTANCE_TYPE")
    max_images: int = Field(alias="SPACEPORT_MAX_IMAGES", ge=1)
    min_images: int = Field(alias="SPACEPORT_MIN_IMAGES", ge=1)
    sfm_max_runtime_s: int = Field(alias="SFM_MAX_RUNTIME_SECONDS", ge=60)
    train_max_runtime_s: int = Field(alias="TRAIN_MAX_RUNTIME_SECONDS", ge=60)
    compress_max_runtime_s: int = Field(alias="COMPRESS_MAX_RUNTIME_SECONDS", ge=60)
    # How often a read may ask CloudWatch for a running job's progress (``spaceport.cloud.live``).
    live_refresh_s: float = Field(default=10.0, alias="LIVE_PROGRESS_REFRESH_SECONDS", ge=0)
    # The device training jobs run on (StageSettings.device): a preset's step count depends on it.
    train_device: str = Field(default="cuda", alias="TRAIN_DEVICE")


SettingsT = TypeVar("SettingsT", bound=BaseModel)


def _load(model: type[SettingsT]) -> SettingsT:
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as error:
        raise SettingsError(f"{model.__name__}: {error}") from error


@cache
def common_settings() -> CommonSettings:
    return _load(CommonSettings)


@cache
def stage_settings() -> StageSettings:
    return _load(StageSettings)


@cache
def validator_settings() -> ValidatorSettings:
    return _load(ValidatorSettings)


@cache
def execution_settings() -> ExecutionSettings:
    return _load(ExecutionSettings)


@cache
def completion_settings() -> CompletionSettings:
    return _load(CompletionSettings)


@cache
def api_settings() -> ApiSettings:
    return _load(ApiSettings)


@cache
def webhook_settings() -> WebhookSettings:
    return _load(WebhookSettings)


@cache
def slot_settings() -> SlotSettings:
    return _load(SlotSettings)


@cache
def sweep_settings() -> SweepSettings:
    return _load(SweepSettings)


def clear_cache() -> None:
    """Forget parsed settings (tests change the environment between cases)."""
    loaders = (
        common_settings,
        stage_settings,
        validator_settings,
        execution_settings,
        slot_settings,
        sweep_settings,
        completion_settings,
        api_settings,
        webhook_settings,
    )
    for loader in loaders:
        loader.cache_clear()
