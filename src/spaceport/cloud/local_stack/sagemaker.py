"""A SageMaker stand-in for the local stack: Create*Job runs the real stage on this machine, Describe*Job answers
with what SageMaker would report, Stop*Job ends it, and each job's end goes out as SageMaker's state change event.

moto's SageMaker marks every job Completed as it is created and sends no event. Here a job is InProgress while its
stage runs (``stages.py``), then Completed (its outputs in S3, for training ``model.tar.gz`` and the last value of
each metric definition's regex over the job's log, as SageMaker reports ``FinalMetricDataList``), Failed (the
container's reason as ExitMessage or FailureReason) or Stopped. While it runs, its output goes to CloudWatch Logs and
a training job's metric definitions' matches to CloudWatch metrics, as SageMaker sends them (``cloudwatch.py``).
The end event is put on the default bus with
SageMaker's source and detail type, where the stack's rules (the template's patterns) deliver it as EventBridge
would; AWS reserves the ``aws.`` sources for itself, moto does not.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from spaceport.cloud.local_stack import stages
from spaceport.cloud.local_stack.cloudwatch import JobTelemetry
from spaceport.cloud.local_stack.stages import StageJob

logger = logging.getLogger("spaceport.local_stack")

JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
OPERATIONS = frozenset({
    "CreateProcessingJob", "CreateTrainingJob", "DescribeProcessingJob", "DescribeTrainingJob",
    "StopProcessingJob", "StopTrainingJob",
})  # fmt: skip
# What a description repeats of its request, as SageMaker's does.
PROCESSING_ECHOED = ("ProcessingJobName", "AppSpecification", "ProcessingInputs", "ProcessingOutputConfig",
                     "ProcessingResources", "StoppingCondition", "RoleArn")  # fmt: skip
TRAINING_ECHOED = ("TrainingJobName", "AlgorithmSpecification", "HyperParameters", "InputDataConfig",
                   "OutputDataConfig", "ResourceConfig", "StoppingCondition", "RoleArn", "EnableManagedSpotTraining",
                   "CheckpointConfig")  # fmt: skip


class SageMakerError(Exception):
    """An error answer of the SageMaker API (JSON protocol): its code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def final_metric_data(definitions: list[dict[str, str]], log: str, at: float) -> list[dict[str, Any]]:
    """``FinalMetricDataList`` as SageMaker builds it: each definition's regex over the log, the last match."""
    data = []
    for definition in definitions:
        found = re.findall(definition["Regex"], log)
        if found:
            data.append({"MetricName": definition["Name"], "Value": float(found[-1]), "Timestamp": at})
    return data


class StandInJob:
    """One SageMaker job and its lifecycle."""

    def __init__(self, job: StageJob, arn: str) -> None:
        self.job, self.arn = job, arn
        self.status = "InProgress"
        self.created = time.time()
        self.started: float | None = None
        self.ended: float | None = None
        self.reason = ""
        self.model_uri: str | None = None
        self.in_container = False

    def description(self) -> dict[str, Any]:
        """What Describe*Job answers now."""
        request, times = self.job.request, {"CreationTime": self.created, "LastModifiedTime": self.ended or time.time()}
        if self.job.training:
            return self._training(request, times)
        description = {key: request[key] for key in PROCESSING_ECHOED if key in request}
        description |= times | {"ProcessingJobArn": self.arn, "ProcessingJobStatus": self.status,
                                "Environment": request.get("Environment", {})}  # fmt: skip
        if self.started:
            description["ProcessingStartTime"] = self.started
        if self.ended:
            description["ProcessingEndTime"] = self.ended
        if self.status == "Failed":
            description |= {
                "ExitMessage": self.reason,
                "FailureReason": "AlgorithmError: See job logs for more information",
            }
        return description

    def _training(self, request: dict[str, Any], times: dict[str, float]) -> dict[str, Any]:
        output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        description = {key: request[key] for key in TRAINING_ECHOED if key in request}
        description |= times | {
            "TrainingJobArn": self.arn,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": {
                "InProgress": "Training",
                "Completed": "Completed",
                "Failed": "Failed",
                "Stopped": "Stopped",
                "Stopping": "Stopping",
            }[self.status],  # fmt: skip
            "ModelArtifacts": {"S3ModelArtifacts": self.model_uri or f"{output}/{self.job.name}/output/model.tar.gz"},
            "Environment": request.get("Environment", {}),
        }
        if self.started:
            description["TrainingStartTime"] = self.started
        if self.ended and self.started:
            seconds = max(1, round(self.ended - self.started))
            description |= {"TrainingEndTime": self.ended, "TrainingTimeInSeconds": seconds,
                            "BillableTimeInSeconds": seconds}  # fmt: skip
        definitions = request["AlgorithmSpecification"].get("MetricDefinitions", [])
        description["FinalMetricDataList"] = final_metric_data(definitions, self.job.log_text(), time.time())
        if self.status == "Failed":
            description["FailureReason"] = f"AlgorithmError: {self.reason}"
        return description


class SageMakerStandIn:
    """The SageMaker API of the local stack, mounted in front of moto's server (WSGI)."""

    def __init__(
        self,
        work_dir: Path,
        client: Callable[[str], Any],
        region: str,
        account: str,
        allow_docker: bool = True,
        instances: int = 1,
    ) -> None:
        self.work_dir, self._client = work_dir, client
        self.region, self.account, self.allow_docker = region, account, allow_docker
        self.jobs: dict[str, StandInJob] = {}
        # Fault injection: the next job of a stage fails at once with this reason, as a container that exits 1.
        self.failures: dict[str, deque[str]] = {"sfm": deque(), "train": deque(), "compress": deque()}
        self._lock = threading.Lock()
        # Stages run one at a time by default: this machine is the instances of every stage.
        self._instances = threading.Semaphore(instances)

    def fail_next(self, stage: str, reason: str) -> None:
        self.failures[stage].append(reason)

    def wsgi(self, operation: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            status, answer = "200 OK", self.handle(operation, json.loads(body or b"{}"))
        except SageMakerError as error:
            status, answer = "400 Bad Request", {"__type": error.code, "message": str(error)}
        payload = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))])
        return [payload]

    def handle(self, operation: str, request: dict[str, Any]) -> dict[str, Any]:
        if operation in ("CreateProcessingJob", "CreateTrainingJob"):
            return self.create(request, training=operation == "CreateTrainingJob")
        name = request.get("ProcessingJobName") or request.get("TrainingJobName") or ""
        record = self.jobs.get(name)
        if record is None:
            raise SageMakerError("ValidationException", f"Could not find job {name}")
        if operation.startswith("Describe"):
            return record.description()
        self.stop(record)
        return {}

    def create(self, request: dict[str, Any], training: bool) -> dict[str, Any]:
        name = request["TrainingJobName" if training else "ProcessingJobName"]
        if not JOB_NAME.match(name):
            raise SageMakerError("ValidationException", f"job name {name!r} does not match {JOB_NAME.pattern}")
        tags = {tag["Key"]: tag["Value"] for tag in request.get("Tags", [])}
        kind = "training-job" if training else "processing-job"
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}:{kind}/{name.lower()}"
        job = StageJob(name, tags.get("spaceport:stage", ""), training, request, self.work_dir / name / "ml")
        with self._lock:
            if name in self.jobs:
                raise SageMakerError("ValidationException", f"Job name must be unique: {name} already exists")
            self.jobs[name] = StandInJob(job, arn)
        threading.Thread(target=self._run, args=(self.jobs[name],), name=name, daemon=True).start()
        return {"TrainingJobArn" if training else "ProcessingJobArn": arn}

    def stop_all(self) -> None:
        """End every job still running (the stack is going away): no stage outlives it."""
        for record in list(self.jobs.values()):
            self.stop(record)

    def stop(self, record: StandInJob) -> None:
        if record.status == "InProgress":
            record.status = "Stopping"
            stages.stop(record.job, record.in_container)

    def _run(self, record: StandInJob) -> None:
        job = record.job
        with self._instances:
            record.started = time.time()
            telemetry = None
            try:
                telemetry = self._telemetry(job)
                code = self._execute(record)
                if job.stop_requested.is_set():
                    record.status = "Stopped"
                elif code == 0:
                    record.model_uri = stages.publish_outputs(self._s3(), job)
                    record.status = "Completed"
                else:
                    record.reason = stages.failure_reason(job) or f"the {job.stage} container exited with code {code}"
                    record.status = "Failed"
            except Exception as error:  # the stand-in itself broke: the job fails as SageMaker's would, saying why
                logger.exception("%s: the stand-in failed", job.name)
                record.reason, record.status = f"InternalServerError: the local SageMaker stand-in: {error}", "Failed"
            finally:
                if telemetry is not None:
                    telemetry.close()
            record.ended = time.time()
        logger.info("%s: %s %s", job.name, record.status, record.reason)
        self._send_event(record)

    def _telemetry(self, job: StageJob) -> JobTelemetry:
        definitions = job.request.get("AlgorithmSpecification", {}).get("MetricDefinitions", [])
        telemetry = JobTelemetry(self._client, job.name, job.training, definitions)
        job.on_line = telemetry.line
        return telemetry

    def _s3(self) -> Any:
        return self._client("s3")

    def _events(self) -> Any:
        return self._client("events")

    def _execute(self, record: StandInJob) -> int:
        job = record.job
        if job.stop_requested.is_set():
            return 1
        mounts = stages.stage_inputs(self._s3(), job)
        if self.failures.get(job.stage):
            reason = self.failures[job.stage].popleft()
            failure = job.host_path(f"{stages.OPT_ML}/output/{'failure' if job.training else 'message'}")
            failure.parent.mkdir(parents=True, exist_ok=True)
            failure.write_text(reason)
            job.output(f"{reason}\n")
            return 1
        image = stages.docker_image(job.stage, self.allow_docker)
        record.in_container = image is not None
        command = stages.container_command(job, image, mounts) if image else stages.process_command(job)
        return stages.run_stage(job, command, record.in_container)

    def _send_event(self, record: StandInJob) -> None:
        training = record.job.training
        detail_type = f"SageMaker {'Training' if training else 'Processing'} Job State Change"
        detail = json.dumps(record.description(), default=str)
        self._events().put_events(
            Entries=[
                {"Source": "aws.sagemaker", "DetailType": detail_type, "Detail": detail, "Resources": [record.arn]}
            ]
        )
