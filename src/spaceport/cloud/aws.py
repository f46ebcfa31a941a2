"""boto3 clients, created once per process and reused across invocations (cheaper warm starts)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Standard retry mode backs off on throttling inside one invocation; the state machine retries beyond that.
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 4})
# send_task_* answers for a token whose execution already ended (cancelled, timed out): nothing to resume.
STALE_TOKEN_CODES = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ExecutionDoesNotExist"})


@cache
def client(service: str) -> Any:
    """A boto3 client for ``service`` with standard retries (S3 with SigV4, which presigned URLs need)."""
    if service == "s3":
        return boto3.client("s3", config=_CONFIG.merge(Config(signature_version="s3v4")))
    return boto3.client(service, config=_CONFIG)


@cache
def table(name: str) -> Any:
    return boto3.resource("dynamodb", config=_CONFIG).Table(name)


def reset() -> None:
    """Drop cached clients (tests start a fresh moto backend per case)."""
    client.cache_clear()
    table.cache_clear()
