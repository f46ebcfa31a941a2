"""What SageMaker sends to CloudWatch while a job of the local stack runs, into moto's CloudWatch.

SageMaker streams a job's container output to CloudWatch Logs: group ``/aws/sagemaker/TrainingJobs`` or
``/aws/sagemaker/ProcessingJobs``, stream ``<job name>/algo-1-<epoch>`` for the job's single instance. For a training
job it also applies the request's metric definitions to that output and publishes each match as a metric (namespace
``/aws/sagemaker/TrainingJobs``, dimension ``Host`` = ``<job name>/algo-1``) as the lines appear. The stand-in does
both, so the jobs API reads a local job's progress through the same CloudWatch calls as a deployed one's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("spaceport.local_stack")

TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"
PROCESSING_GROUP = "/aws/sagemaker/ProcessingJobs"
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
FLUSH_EVERY_S = 0.5
# PutLogEvents takes at most 10,000 events (and 1 MB) per call.
BATCH_EVENTS = 1_000


class JobTelemetry:
    """One job's log stream and metrics. ``line`` takes each line the container prints; ``close`` sends the rest.

    Args:
        client: makes a boto3 client of the local stack for a service name.
        name: the SageMaker job's name.
        training: a training job (its metric definitions apply) rather than a processing job.
        definitions: the request's ``MetricDefinitions`` (training only).
    """

    def __init__(
        self, client: Callable[[str], Any], name: str, training: bool, definitions: list[dict[str, str]]
    ) -> None:
        self._logs, self._metrics = client("logs"), client("cloudwatch") if training else None
        self.name, self.group = name, TRAINING_GROUP if training else PROCESSING_GROUP
        self.stream = f"{name}/algo-1-{int(time.time())}"
        self._definitions = [(item["Name"], re.compile(item["Regex"])) for item in definitions] if training else []
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._create_stream()
        self._flusher = threading.Thread(target=self._flush_regularly, name=f"{name}-logs", daemon=True)
        self._flusher.start()

    def _create_stream(self) -> None:
        try:
            self._logs.create_log_group(logGroupName=self.group)
        except self._logs.exceptions.ResourceAlreadyExistsException:
            pass
        self._logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)

    def line(self, text: str) -> None:
        """One line of the container's output, as SageMaker's agent reads it."""
        at = time.time()
        with self._lock:
            self._pending.append({"timestamp": int(at * 1000), "message": text.rstrip("\n") or " "})
        if self._definitions:
            self._publish_metrics(text, at)

    def _publish_metrics(self, text: str, at: float) -> None:
        host = [{"Name": "Host", "Value": f"{self.name}/algo-1"}]
        stamp = datetime.fromtimestamp(at, UTC)
        data = [
            {"MetricName": name, "Value": float(match.group(1)), "Timestamp": stamp, "Dimensions": host}
            for name, pattern in self._definitions
            if (match := pattern.search(text))
        ]
        if not data or self._metrics is None:
            return
        try:
            self._metrics.put_metric_data(Namespace=METRICS_NAMESPACE, MetricData=data)
        except Exception:  # the stack is going away: its CloudWatch with it
            logger.debug("%s: metrics not sent", self.name, exc_info=True)

    def _flush_regularly(self) -> None:
        while not self._closed.wait(FLUSH_EVERY_S):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for start in range(0, len(pending), BATCH_EVENTS):
            try:
                batch = pending[start : start + BATCH_EVENTS]
                self._logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=batch)
            except Exception:  # the stack is going away: its CloudWatch with it
                logger.debug("%s: log events not sent", self.name, exc_info=True)
                return

    def close(self) -> None:
        self._closed.set()
        self._flusher.join(timeout=10)
        self.flush()
