"""Test harness for the cloud code: moto for AWS, our real handlers invoked in-process.

moto runs the real ``statemachine/pipeline.asl.json`` but leaves gaps; each is closed here, openly:

- Lambda tasks: moto would need Docker; ``_invoke_lambda_function`` is replaced by a dispatcher that checks the
  task's parameters against botocore's Lambda ``Invoke`` model, then runs our real handler and shapes its result
  or exception exactly like the Lambda Python runtime (``errorType`` / ``errorMessage``).
- EventBridge -> Lambda: moto never delivers rule targets to Lambda. The harness builds each event from the
  ``events/`` samples, checks it against the rule's pattern in ``template.yaml`` with moto's own matcher, and
  invokes the target handler.
- SageMaker: moto completes every job at once and emits no events. ``FakeSageMaker`` wraps the moto client to
  script each attempt (complete, fail with a reason, throttle, no capacity, never report) and queues the state
  change event that SageMaker would send.
- Task tokens: moto makes one token when a waitForTaskToken state is entered and keeps it (and the outcome already
  sent for it) through the state's retries, so a retried task would fail again at once with the first attempt's
  SendTaskFailure. Step Functions gives every attempt its own token; the harness does the same.
- Retry intervals sleep in real time in moto; the harness records the requested sleeps instead of sleeping,
  so tests assert the backoff and stay fast. FULL jitter draws uniformly below each interval: the harness
  records that ceiling and sleeps it, so the sleeps are the backoff schedule itself and a test can assert it.
- Training metrics: SageMaker applies the job's ``MetricDefinitions`` regexes to its log and reports the last
  value of each under the definition's name; ``FakeSageMaker`` does exactly that over a scripted training log.
- Quota: ``FakeSageMaker.training_quota`` refuses a training job with ResourceLimitExceeded while that many run
  (from its Create call to its end event), as SageMaker does when the account's instance quota is taken; it records
  how many ran at once. ``instance_quota`` does the same per instance type, for any stage (each size of an instance
  family has its own quota).
- Stopping: Step Functions aborts a stopped execution at once; moto only between states, so an execution waiting on
  a task token would stay RUNNING until the wait times out. ``World.kill`` stops it and wakes its waiting tasks
  without an outcome: moto then ends it at once without running another state (no Catch, as in AWS), though it
  reports FAILED where AWS reports ABORTED.
- Atomicity: DynamoDB applies a conditional write or a transaction atomically; moto checks and writes in separate
  steps (a transaction even restores a copy of the whole table when it fails), which concurrent executions (threads
  here) can interleave. The harness runs each DynamoDB request under one lock, as the service behaves.
- Contention: under that lock no transaction ever conflicts with another and nothing is throttled, which DynamoDB
  does (it cancels a transaction that meets another on an item with ``TransactionConflict``). ``World.dynamo_faults``
  injects those answers at chosen requests, as DynamoDB would give them.
- Observing grants: ``World.grant_log`` records each slot grant as DynamoDB commits it, with the queue and the count
  as they stand at that moment, read from moto's table under the same per-request lock: an exact record that adds no
  lock of its own around our code.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from spaceport.cloud.local_stack import template as stack_template
from spaceport.cloud.local_stack.lambdas import (
    FUNCTIONS,
    LambdaContextStandIn,
    fresh_token_per_attempt,
    function_name,
    invoke,
    load_handler,
)
from spaceport.cloud.local_stack.sagemaker import final_metric_data
from spaceport.cloud.local_stack.template import (
    ACCOUNT,
    BUCKET,
    JOBS_TABLE,
    REGION,
    REPOSITORIES,
    SLOTS_TABLE,
    fill_definition,
    load_template,
    substitutions,
)
from spaceport.train.progress import format_progress

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TABLE = JOBS_TABLE


def create_tables(dynamodb: Any, template: dict[str, Any]) -> None:
    """The jobs and slots tables as the template declares them (keys, indexes, billing mode)."""
    stack_template.create_tables(dynamodb, template, TABLE, SLOTS_TABLE)


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


FakeContext = LambdaContextStandIn


@functools.cache
def service_model(service: str) -> Any:
    """botocore's model of ``service``, read once: a fresh session parses the model's JSON again (a fifth of a
    second for SageMaker's), and the harness validates every Lambda invoke and SageMaker request against it."""
    return botocore.session.get_session().get_service_model(service)


def check_request(service: str, operation: str, params: dict[str, Any]) -> None:
    """Fail when ``params`` would not pass botocore's validation for this operation (missing or mistyped)."""
    model = service_model(service)
    report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
    if report.has_errors():
        raise AssertionError(f"{service}.{operation}: {report.generate_report()}")


def aws_error(code: str, operation: str, message: str = "injected") -> ClientError:
    """The error botocore raises when AWS answers ``operation`` with ``code``."""
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


def intercept(monkeypatch: Any, service: str, operation: str, answer: Any) -> None:
    """Route every ``operation`` call our code makes on its ``service`` client through ``answer(call, **kwargs)``,
    ``call`` being the real operation: the test decides, call by call, what AWS answers (raise ``aws_error`` for a
    refusal). The client's other operations are untouched."""
    from spaceport.cloud import aws

    wrapped = aws.client

    class Intercepted:
        def __init__(self, real: Any) -> None:
            self._real = real

        def __getattr__(self, name: str) -> Any:
            if name == operation:
                return lambda **kwargs: answer(getattr(self._real, name), **kwargs)
            return getattr(self._real, name)

    monkeypatch.setattr(aws, "client", lambda name: Intercepted(wrapped(name)) if name == service else wrapped(name))


@functools.cache
def _function_events(function_logical_id: str) -> str:
    """The function's ``Events`` in the template, as JSON: parsed once per session (template.yaml takes a fifth of
    a second to parse, and every upload and SageMaker event the harness delivers is matched against it)."""
    return json.dumps(load_template()["Resources"][function_logical_id]["Properties"]["Events"])


def rule_pattern(function_logical_id: str, event_name: str) -> dict[str, Any]:
    """The EventBridge pattern of a function's rule, with the bucket name filled in."""
    pattern = json.loads(_function_events(function_logical_id))[event_name]["Properties"]
    text = json.dumps(pattern["Pattern"]).replace('{"Ref": "DataBucket"}', json.dumps(BUCKET))
    return json.loads(text)


def rule_patterns(function_logical_id: str) -> list[dict[str, Any]]:
    """Every EventBridge rule pattern of a function (a function may have one rule per event source)."""
    events = json.loads(_function_events(function_logical_id))
    return [
        rule_pattern(function_logical_id, name) for name, event in events.items() if event["Type"] == "EventBridgeRule"
    ]


def delivered(function_logical_id: str, event: dict[str, Any]) -> bool:
    """Whether any of the function's rules would deliver ``event`` to it."""
    return any(matches(pattern, event) for pattern in rule_patterns(function_logical_id))


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    from moto.events.models import EventPattern

    return EventPattern.load(json.dumps(pattern)).matches_event(event)


# What the train container logs (spaceport.train.progress's own formats): progress lines, then the evaluation.
TRAINING_LOG = "\n".join(
    [format_progress(iteration, 0.2 / iteration**0.3, 14.0 + iteration / 700, 900 + iteration * 2)
     for iteration in (500, 3500, 7000)]
    + [format_progress(7000, 0.0412, 24.31, 18234),
       "evaluation psnr_test=23.87 ssim_test=0.8712 psnr_initial=13.40 views=4"]
)  # fmt: skip


class FakeSageMaker:
    """Wraps moto's SageMaker client; scripts what each attempt does and queues its state change event."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.script: dict[str, deque] = {"sfm": deque(), "train": deque(), "compress": deque()}
        # A job's own script for a stage, (job id, stage) -> outcomes, read before the stage's shared one.
        self.job_script: dict[tuple[str, str], deque] = {}
        self.training_quota: int | None = None
        self.instance_quota: dict[str, int] = {}
        self.instance_of: dict[str, str] = {}
        self.running: dict[str, set[str]] = {"sfm": set(), "train": set(), "compress": set()}
        self.peak: dict[str, int] = {"sfm": 0, "train": 0, "compress": 0}
        self.refused: list[str] = []
        self.started: dict[str, list[str]] = {"sfm": [], "train": [], "compress": []}
        self._lock = threading.Lock()
        self.outcomes: dict[str, tuple] = {}
        self.pending: deque = deque()
        self.requests: list[tuple[str, dict]] = []
        self.stopped: list[str] = []
        self.described: list[str] = []
        self.training_log = TRAINING_LOG
        # How long each stage's jobs run (SageMaker's billable seconds in their descriptions).
        self.seconds: dict[str, float] = {"sfm": 900.0, "train": 3600.0, "compress": 300.0}
        # Whether a training job's description has BillableTimeInSeconds yet (SageMaker may add it after the end).
        self.billable_time_reported = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def _create(self, operation: str, request: dict[str, Any], name: str) -> dict[str, Any]:
        service_op = "".join(part.title() for part in operation.split("_"))
        check_request("sagemaker", service_op, request)
        self.requests.append((operation, request))
        tags = dict((t["Key"], t["Value"]) for t in request["Tags"])
        stage, job_id = tags["spaceport:stage"], tags["spaceport:job"]
        own = self.job_script.get((job_id, stage))
        outcome = own.popleft() if own else self.script[stage].popleft() if self.script[stage] else ("complete",)
        if outcome[0] in ("throttle", "capacity"):
            code = "ThrottlingException" if outcome[0] == "throttle" else "ResourceLimitExceeded"
            raise ClientError({"Error": {"Code": code, "Message": "Rate exceeded"}}, service_op)
        instance = (request.get("ResourceConfig") or request["ProcessingResources"]["ClusterConfig"])["InstanceType"]
        with self._lock:
            quota = self.training_quota
            if stage == "train" and quota is not None and len(self.running["train"]) >= quota:
                self.refused.append(name)
                message = f"The account-level service limit 'ml.g5.xlarge for training job usage' is {quota}"
                raise ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": message}}, service_op)
            on_instance = [n for names in self.running.values() for n in names if self.instance_of.get(n) == instance]
            if instance in self.instance_quota and len(on_instance) >= self.instance_quota[instance]:
                self.refused.append(name)
                message = f"The account-level service limit '{instance} for ...' is {self.instance_quota[instance]}"
                raise ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": message}}, service_op)
            self.instance_of[name] = instance
            self.running[stage].add(name)
            self.peak[stage] = max(self.peak[stage], len(self.running[stage]))
        response = getattr(self._real, operation)(**request)
        # A test that waits for the job to have started may script its outcome from then on: the job exists and its
        # own outcome is set before it counts as started.
        with self._lock:
            self.outcomes[name] = outcome
            self.started[stage].append(job_id)
        if outcome[0] != "silent":
            self.pending.append((stage, name, request))
        return response

    def create_processing_job(self, **request: Any) -> dict[str, Any]:
        return self._create("create_processing_job", request, request["ProcessingJobName"])

    def create_training_job(self, **request: Any) -> dict[str, Any]:
        return self._create("create_training_job", request, request["TrainingJobName"])

    def ended(self, stage: str, name: str) -> None:
        """The job no longer runs (its end event is on its way): it stops counting against the quota."""
        with self._lock:
            self.running[stage].discard(name)

    def stop_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        """moto has no StopTrainingJob: record the request (checked against botocore) and mark the job stopped."""
        check_request("sagemaker", "StopTrainingJob", {"TrainingJobName": TrainingJobName})
        self.ended("train", TrainingJobName)
        self.stopped.append(TrainingJobName)
        self.outcomes[TrainingJobName] = ("stopped",)
        return {}

    def stop_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:
        for stage in ("sfm", "compress"):
            self.ended(stage, ProcessingJobName)
        self.stopped.append(ProcessingJobName)
        return self._real.stop_processing_job(ProcessingJobName=ProcessingJobName)

    def _outcome(self, description: dict[str, Any], name: str, key: str, reason_key: str) -> dict[str, Any]:
        outcome = self.outcomes.get(name, ("complete",))
        if outcome[0] == "fail":
            description.update({key: "Failed", reason_key: outcome[1]})
        elif outcome[0] == "stopped":
            description.update({key: "Stopped"})
        else:
            description[key] = "Completed"
        return description

    def _stage_of(self, name: str) -> str:
        return next(stage for stage in ("compress", "train", "sfm") if f"-{stage}-a" in name)

    def describe_processing_job(self, ProcessingJobName: str) -> dict[str, Any]:
        """moto's description with what SageMaker adds once a job ran (moto ends jobs as they are created)."""
        self.described.append(ProcessingJobName)
        description = self._real.describe_processing_job(ProcessingJobName=ProcessingJobName)
        start = description["CreationTime"]
        seconds = self.seconds[self._stage_of(ProcessingJobName)]
        description.update(ProcessingStartTime=start, ProcessingEndTime=start + timedelta(seconds=seconds))
        request = next(r for op, r in self.requests if r.get("ProcessingJobName") == ProcessingJobName)
        # moto leaves these out of its description; SageMaker returns them as the request gave them.
        description.update(ProcessingResources=request["ProcessingResources"], Environment=request["Environment"])
        return self._outcome(description, ProcessingJobName, "ProcessingJobStatus", "ExitMessage")

    def describe_training_job(self, TrainingJobName: str) -> dict[str, Any]:
        self.described.append(TrainingJobName)
        description = self._real.describe_training_job(TrainingJobName=TrainingJobName)
        request = next(r for op, r in self.requests if r.get("TrainingJobName") == TrainingJobName)
        definitions = request["AlgorithmSpecification"].get("MetricDefinitions", [])
        description["FinalMetricDataList"] = final_metric_data(definitions, self.training_log, time.time())
        seconds = int(self.seconds["train"])
        description.update(TrainingTimeInSeconds=seconds)
        if self.billable_time_reported:
            description.update(BillableTimeInSeconds=seconds)
        description["Environment"] = request["Environment"]  # moto leaves it out; SageMaker returns it
        if request.get("EnableManagedSpotTraining"):
            description["EnableManagedSpotTraining"] = True
        return self._outcome(description, TrainingJobName, "TrainingJobStatus", "FailureReason")


class World:
    """A moto account with the stack's resources, our handlers wired to the real state machine."""

    def __init__(self, monkeypatch: Any) -> None:
        from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl
        from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

        from spaceport.cloud import aws, settings

        self.template = load_template()
        self.handlers = {name: load_handler(name) for name in FUNCTIONS}
        self.sleeps: list[float] = []
        self.invocations: list[tuple[str, dict]] = []
        # What each task's function answered (its result, or the error the runtime reported), in order, with the job
        # it was asked about.
        self.answered: list[tuple[str, str | None, Any]] = []
        # Per function, per invocation: an error the Lambda service reports *after* the handler ran (a service
        # error), or None for an invocation that goes through.
        self.errors_after_handler: dict[str, deque[str | None]] = {name: deque() for name in FUNCTIONS}
        self._create_resources()
        self.sagemaker = FakeSageMaker(boto3.client("sagemaker", region_name=REGION))
        real_client = aws.client
        monkeypatch.setattr(aws, "client", lambda s: self.sagemaker if s == "sagemaker" else real_client(s))
        monkeypatch.setattr(lambda_eval_utils, "_invoke_lambda_function", self._invoke)
        monkeypatch.setattr(retrier_decl, "time", _RecordingClock(self.sleeps))
        monkeypatch.setattr(jitter_strategy_decl, "random", _CeilingJitter())
        fresh_token_per_attempt(monkeypatch.setattr)
        self.dynamo_faults = DynamoFaults()
        self.grant_log = GrantLog()
        _atomic_dynamodb(monkeypatch, self.dynamo_faults, self.grant_log)
        _one_metrics_flush_at_a_time(monkeypatch)
        settings.clear_cache()

    def _create_resources(self) -> None:
        create_tables(boto3.client("dynamodb", region_name=REGION), self.template)
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        self.ecr = boto3.client("ecr", region_name=REGION)
        for repository in REPOSITORIES.values():
            self.ecr.create_repository(repositoryName=repository)
        self.topic_arn = boto3.client("sns", region_name=REGION).create_topic(Name="spaceport")["TopicArn"]
        self.sqs = boto3.client("sqs", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        self.definition = fill_definition(substitutions(self.template))
        self.state_machine_arn = sfn.create_state_machine(
            name="spaceport-pipeline", definition=self.definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
        )["stateMachineArn"]
        self.sfn = sfn
        self.table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)

    @property
    def answers(self) -> list[tuple[str, Any]]:
        """(function, answer) for every task, in order."""
        return [(name, answer) for name, _, answer in self.answered]

    def answers_of(self, job_id: str) -> list[tuple[str, Any]]:
        """(function, answer) for the tasks about ``job_id``, in order."""
        return [(name, answer) for name, asked, answer in self.answered if asked == job_id]

    def push_images(self, stages: tuple[str, ...] = ("sfm", "train", "compress"), tag: str = "0.1.0") -> None:
        manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"})
        for stage in stages:
            self.ecr.put_image(repositoryName=REPOSITORIES[stage], imageManifest=manifest, imageTag=tag)

    def _invoke(self, parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        check_request("lambda", "Invoke", parameters)
        name = function_name(parameters["FunctionName"])
        payload = json.loads(parameters["Payload"])
        self.invocations.append((name, payload))
        response = invoke(self.handlers[name], payload)
        self.answered.append((name, payload.get("job_id") if isinstance(payload, dict) else None, response["Payload"]))
        if "FunctionError" in response:
            return response
        code = self.errors_after_handler[name].popleft() if self.errors_after_handler[name] else None
        if code:
            # The handler did its work, but the invoke still failed: Step Functions sees Lambda.<code>.
            metadata = {"HTTPStatusCode": 500, "RequestId": "00000000-0000-0000-0000-000000000001"}
            error = {"Code": code, "Message": "injected after the handler ran"}
            raise ClientError({"Error": error, "ResponseMetadata": metadata}, "Invoke")
        return response

    def deliver_upload(self, key: str) -> dict[str, Any]:
        """S3 -> EventBridge -> trigger: the rule's pattern from the template decides delivery."""
        event = load_event("trigger_zip_uploaded.json")
        event["detail"]["bucket"]["name"] = BUCKET
        event["detail"]["object"]["key"] = key
        if not delivered("TriggerFunction", event):
            return {"started": False, "reason": "rule did not match"}
        return self.handlers["trigger"].lambda_handler(event, FakeContext())

    def state_change_event(self, stage: str, name: str) -> dict[str, Any]:
        """The event SageMaker sends when the job ends, status from the (scripted) description."""
        training = stage == "train"
        event = load_event(
            "sagemaker_training_state_change.json" if training else "sagemaker_processing_state_change.json"
        )
        event["resources"] = [event["resources"][0].rsplit("/", 1)[0] + "/" + name]
        if training:
            description = self.sagemaker.describe_training_job(TrainingJobName=name)
            event["detail"] = {"TrainingJobName": name, "TrainingJobStatus": description["TrainingJobStatus"]}
        else:
            description = self.sagemaker.describe_processing_job(ProcessingJobName=name)
            event["detail"] = {"ProcessingJobName": name, "ProcessingJobStatus": description["ProcessingJobStatus"]}
            if description["ProcessingJobStatus"] == "Completed":
                self._write_manifest(stage, name)
        return event

    def deliver_sagemaker_events(self) -> None:
        while self.sagemaker.pending:
            stage, name, _ = self.sagemaker.pending.popleft()
            self.sagemaker.ended(stage, name)
            event = self.state_change_event(stage, name)
            assert delivered("CompleteStageFunction", event)
            self.handlers["complete_stage"].lambda_handler(event, FakeContext())

    def _write_manifest(self, stage: str, name: str) -> None:
        request = next(r for op, r in self.sagemaker.requests if r.get("ProcessingJobName") == name)
        job_id = request["Environment"]["SPACEPORT_JOB_ID"]
        figures = {"sfm": {"registered_images": 4, "points": 1200}, "compress": {"bytes": 51234, "gaussians": 18234}}
        body = json.dumps({"stage": stage, **figures[stage], "files": {}})
        boto3.client("s3", region_name=REGION).put_object(
            Bucket=BUCKET, Key=f"jobs/{job_id}/{stage}/manifest.json", Body=body
        )

    def run(self, execution_arn: str, timeout_s: float = 60) -> dict[str, Any]:
        """Pump SageMaker events until the execution ends; returns describe_execution."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.deliver_sagemaker_events()
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING":
                return described
            time.sleep(0.05)
        raise AssertionError(f"execution still running after {timeout_s} s")

    def run_all(self, execution_arns: list[str], timeout_s: float = 240) -> dict[str, str]:
        """Pump SageMaker events until every execution has ended; returns each one's status."""
        deadline, statuses = time.monotonic() + timeout_s, {}
        while time.monotonic() < deadline:
            self.deliver_sagemaker_events()
            for arn in execution_arns:
                if statuses.get(arn, "RUNNING") == "RUNNING":
                    statuses[arn] = self.sfn.describe_execution(executionArn=arn)["status"]
            if all(status != "RUNNING" for status in statuses.values()):
                return statuses
            time.sleep(0.05)
        running = [arn.rsplit(":", 1)[-1] for arn, status in statuses.items() if status == "RUNNING"]
        raise AssertionError(f"executions still running after {timeout_s} s: {running}")

    def use_state_machine(self, monkeypatch: Any, name: str, overrides: dict[str, str]) -> None:
        """Start later executions on a copy of the pipeline whose substitutions ``overrides`` changes (a shorter
        timeout, say), as a redeploy with other parameters would."""
        from spaceport.cloud import settings

        definition = fill_definition(substitutions(self.template) | overrides)
        arn = self.sfn.create_state_machine(
            name=name, definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
        )["stateMachineArn"]
        monkeypatch.setenv("STATE_MACHINE_ARN", arn)
        settings.clear_cache()

    def kill(self, execution_arn: str) -> None:
        """StopExecution (as from the console, not the API's cancel), taking effect at once as it does in AWS."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        self.sfn.stop_execution(executionArn=execution_arn, error="Killed", cause="stopped by hand")
        backend = stepfunctions_parser_backends[ACCOUNT][REGION]
        execution = next(e for e in backend._get_executions() if e.exec_arn == execution_arn)
        for endpoint in list(execution.exec_worker.env.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()

    def job(self, job_id: str) -> dict[str, Any]:
        from spaceport.cloud.jobs import from_dynamo

        return from_dynamo(self.table.get_item(Key={"job_id": job_id})["Item"])


class DynamoFaults:
    """DynamoDB's answers under contention, given at chosen requests instead of moto's: ``conflict`` cancels a
    transaction as one that met another transaction on an item does (``TransactionCanceledException``, the item's
    reason ``TransactionConflict``), and refuses a single-item write to an item a transaction is changing with
    ``TransactionConflictException`` (the SDK does not retry it); ``throttle`` refuses any request with
    ``ThrottlingException`` (the SDK retries it four times: five in a row reach the caller)."""

    def __init__(self) -> None:
        self._rules: list[list[Any]] = []
        self._lock = threading.Lock()
        self.injected: list[tuple[str, str]] = []

    def add(self, operation: str, matches: Any, fault: str, times: int = 1) -> None:
        """The next ``times`` ``operation`` requests whose parameters ``matches`` get ``fault``."""
        assert fault in ("conflict", "throttle")
        with self._lock:
            self._rules.append([operation, matches, fault, times])

    def answer(self, operation: str, params: dict[str, Any]) -> Any:
        """The moto error to answer with, or None for a request that goes through."""
        from moto.dynamodb.exceptions import DynamodbException, TransactionCanceledException

        with self._lock:
            rule = next((r for r in self._rules if r[0] == operation and r[3] > 0 and r[1](params)), None)
            if rule is None:
                return None
            rule[3] -= 1
            self.injected.append((operation, rule[2]))
        if rule[2] == "throttle":
            return DynamodbException("com.amazonaws.dynamodb.v20120810#ThrottlingException", "Rate exceeded")
        if operation != "TransactWriteItems":
            message = "Transaction is ongoing for the item"
            return DynamodbException("com.amazonaws.dynamodb.v20120810#TransactionConflictException", message)
        reasons = [(None, None, None)] * len(params["TransactItems"])
        reasons[0] = ("TransactionConflict", "Transaction is ongoing for the item", None)
        return TransactionCanceledException(reasons)


def transact_item_key(params: dict[str, Any], index: int = 0) -> dict[str, str]:
    """The key of a TransactWriteItems request's item ``index``, as plain strings (``{"pool": "sfm", ...}``)."""
    action = next(iter(params["TransactItems"][index].values()))
    key = action.get("Key") or action.get("Item")
    return {name: next(iter(value.values())) for name, value in key.items() if name in ("pool", "entry", "job_id")}


class GrantLog:
    """Every slot grant DynamoDB commits (a transaction that deletes a ``waiting#`` entry and puts a ``holder#``):
    ``(stage, ticket granted, tickets waiting in the stage's queue just before, slots held just after)``."""

    def __init__(self) -> None:
        self.grants: list[tuple[str, int, list[int], int]] = []

    @staticmethod
    def _partition(stage: str) -> dict[str, dict[str, Any]]:
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends[ACCOUNT][REGION].get_table(SLOTS_TABLE)
        items = next((entries for key, entries in table.items.items() if key.value == stage), {})
        return {key.value: item.to_json()["Attributes"] for key, item in items.items()}

    def before(self, operation: str, params: dict[str, Any]) -> tuple[str, int, list[int]] | None:
        """What a grant about to be committed finds: its stage, its ticket and the queue (None for other requests)."""
        if operation != "TransactWriteItems":
            return None
        keys = [
            (next(iter(item)), transact_item_key(params, index)) for index, item in enumerate(params["TransactItems"])
        ]
        deleted = [key for action, key in keys if action == "Delete" and key.get("entry", "").startswith("waiting#")]
        if not deleted or not any(action == "Put" and "holder#" in key.get("entry", "") for action, key in keys):
            return None
        stage = deleted[0]["pool"]
        queue = sorted(
            int(item["ticket"]["N"]) for entry, item in self._partition(stage).items() if "waiting#" in entry
        )
        return stage, int(deleted[0]["entry"].removeprefix("waiting#")), queue

    def after(self, seen: tuple[str, int, list[int]] | None, status: int) -> None:
        if seen is not None and status == 200:
            held = int(self._partition(seen[0]).get("count", {}).get("held", {}).get("N", 0))
            self.grants.append((*seen, held))


def _atomic_dynamodb(monkeypatch: Any, faults: DynamoFaults, grants: GrantLog) -> None:
    """One DynamoDB request at a time, so moto's conditional writes and transactions are atomic, as DynamoDB's are;
    ``faults`` answers the requests it was told to instead of moto, and ``grants`` sees each grant committed."""
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    call_action = DynamoHandler.call_action

    def atomic_call_action(self: Any) -> Any:
        with lock:
            operation, params = self._get_action(), getattr(self, "params", {})
            fault = faults.answer(operation, params)
            if fault is not None:
                return fault.code, {"status": fault.code}, fault.get_body()
            seen = grants.before(operation, params)
            response = call_action(self)
            grants.after(seen, response[0])
            return response

    monkeypatch.setattr(DynamoHandler, "call_action", atomic_call_action)


def _one_metrics_flush_at_a_time(monkeypatch: Any) -> None:
    """powertools keeps every handler's metrics in one set per process and clears it when a handler returns; Lambda
    runs concurrent invocations in separate processes, the harness in threads of one. Adding a metric and flushing
    the set (check it is empty, then serialise and clear it) run one at a time here, so that one handler's flush
    never empties the set between another's check and its serialisation (``SchemaValidationError: Must contain at
    least one metric``, raised from the handler)."""
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    lock = threading.RLock()
    add_metric, flush_metrics = AmazonCloudWatchEMFProvider.add_metric, AmazonCloudWatchEMFProvider.flush_metrics

    def locked_add_metric(self: Any, *args: Any, **kwargs: Any) -> None:
        with lock:
            add_metric(self, *args, **kwargs)

    def locked_flush_metrics(self: Any, raise_on_empty_metrics: bool = False) -> None:
        with lock:
            flush_metrics(self, raise_on_empty_metrics=raise_on_empty_metrics)

    monkeypatch.setattr(AmazonCloudWatchEMFProvider, "add_metric", locked_add_metric)
    monkeypatch.setattr(AmazonCloudWatchEMFProvider, "flush_metrics", locked_flush_metrics)


class _CeilingJitter:
    """Stands in for the ``random`` module of moto's jitter: FULL jitter's draw becomes its ceiling."""

    def uniform(self, low: float, high: float) -> float:
        return high


class _RecordingClock:
    """Stands in for the ``time`` module of moto's retrier: records each backoff instead of sleeping."""

    def __init__(self, sleeps: list[float]) -> None:
        self._sleeps = sleeps

    def sleep(self, seconds: float) -> None:
        self._sleeps.append(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)
