"""AWS credentials and clients as the AWS CLI finds them: ``--profile`` and ``--region``, else the standard chain
(environment, shared files, SSO, instance roles)."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from spaceport.cloud.client.errors import CloudError


class AwsSession:
    """One boto3 session for a command: its region and the caller's credentials."""

    def __init__(self, profile: str | None = None, region: str | None = None) -> None:
        import boto3
        import botocore.exceptions

        try:
            self._session = boto3.Session(profile_name=profile, region_name=region)
        except botocore.exceptions.ProfileNotFound as error:
            raise CloudError(f"{error}: see `aws configure list-profiles`") from error
        self.profile = profile
        if not self._session.region_name:
            raise CloudError("no region: pass --region or set one in your AWS profile (AWS_REGION)")
        self.region: str = self._session.region_name

    @cached_property
    def credentials(self) -> Any:
        """Frozen credentials for signing (refreshed on each use of a refreshable source)."""
        found = self._session.get_credentials()
        if found is None:
            raise CloudError(
                "no AWS credentials found: configure a profile (aws configure, aws sso login) and pass --profile, "
                "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        return found

    def frozen_credentials(self) -> Any:
        return self.credentials.get_frozen_credentials()

    def client(self, service: str) -> Any:
        from botocore.config import Config

        return self._session.client(service, config=Config(retries={"mode": "standard", "max_attempts": 5}))
