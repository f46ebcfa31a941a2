"""What the client raises: one class per outcome a caller handles differently."""

from __future__ import annotations


class CloudError(Exception):
    """Anything that stops a cloud command; the message says what to do."""


class ApiError(CloudError):
    """The jobs API answered with an error status (its own message kept)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the jobs API answered {status}: {message}")
        self.status, self.api_message = status, message


class ApiForbiddenError(ApiError):
    """403: API Gateway refused the request's IAM signature or the caller's permission."""


class NotDeployedError(CloudError):
    """No deployment is known for this profile and region: ``spaceport cloud init`` first."""


class UploadError(CloudError):
    """An upload could not finish (a part kept failing, or S3 holds other bytes than these photos')."""


class VerificationError(CloudError):
    """A downloaded file does not match its manifest (size or SHA-256): nothing was kept."""


class TaskFailedError(CloudError):
    """The job ended FAILED; ``reason`` is its failure reason, ``stage`` the stage that failed."""

    def __init__(self, job_id: str, stage: str | None, reason: str | None) -> None:
        super().__init__(f"job {job_id} failed in {stage or 'an unknown stage'}: {reason or 'no reason recorded'}")
        self.job_id, self.stage, self.reason = job_id, stage, reason


class TaskCancelledError(CloudError):
    """The job ended CANCELLED."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was cancelled")
        self.job_id = job_id
