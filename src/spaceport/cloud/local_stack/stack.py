"""The local stack: the deployed application's moving parts on 127.0.0.1, with the real stages.

- moto's server (in this process) for S3, DynamoDB, Step Functions, EventBridge, SQS, SNS, ECR, CloudFormation and
  CodeBuild, with ``template.yaml``'s tables, bucket (EventBridge notifications on), state machine (the real
  ``pipeline.asl.json``, substitutions filled) and image repositories, and a stack whose outputs ``spaceport cloud
  init`` reads;
- our functions, in this process, with the environment the template deploys them with: the state machine's tasks
  call them (``lambdas.py``), the template's EventBridge rules deliver S3's and SageMaker's events to them
  (``eventbridge.py``), and the jobs API serves them over HTTP with SigV4 checked (``api_gateway.py``);
- in front of moto, S3's presigned-URL expiry and injectable faults (``s3_front.py``), and a SageMaker that runs
  the real stage for each Create*Job (``sagemaker.py``).

What is not here: the sweeper's 5-minute schedule, X-Ray, CloudWatch, SNS e-mail, KMS; and AWS's own IAM: the only
authorisation checked is the API's signature (and its users' execute-api:Invoke).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spaceport.cloud.local_stack import lambdas, template
from spaceport.cloud.local_stack.api_gateway import LocalHttpApi
from spaceport.cloud.local_stack.eventbridge import RuleDeliveries, template_rules
from spaceport.cloud.local_stack.s3_front import S3Faults, S3Front
from spaceport.cloud.local_stack.sagemaker import OPERATIONS, SageMakerStandIn
from spaceport.cloud.local_stack.sigv4 import Principal
from spaceport.cloud.local_stack.template import ACCOUNT, BUCKET, JOBS_TABLE, PIPELINE, REGION, SLOTS_TABLE, TOPIC

STACK_NAME = "spaceport"
IMAGE_TAG = "0.1.0"
# The IAM user of the local account that the client signs as (and one without execute-api:Invoke).
USER = ("AKIALOCALSPACEPORT01", "local-secret-key-for-the-spaceport-demo", f"arn:aws:iam::{ACCOUNT}:user/spaceport")
OUTSIDER = ("AKIALOCALOUTSIDER001", "local-secret-key-of-a-user-without-api", f"arn:aws:iam::{ACCOUNT}:user/outsider")
# Parameters the local stack deploys with: the sample scene's photo count is below the default MinImages.
PARAMETERS = {"MinImages": "3"}
# The local SageMaker trains on this machine's CPU (a deployment's TRAIN_DEVICE is cuda, its default).
EXTRA_ENVIRONMENT = {
    "TRAIN_DEVICE": "cpu",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "Local",
}
IMAGE_MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"})


class Patches:
    """Attributes and environment variables set for the stack's life, put back as they were when it stops."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def setattr(self, target: Any, name: str, value: Any) -> None:
        old = getattr(target, name)
        setattr(target, name, value)
        self._undo.append(lambda: setattr(target, name, old))

    def setitem(self, mapping: dict[str, Any], key: str, value: Any) -> None:
        missing = object()
        old = mapping.get(key, missing)
        mapping[key] = value
        self._undo.append(lambda: mapping.pop(key, None) if old is missing else mapping.__setitem__(key, old))

    def setenv(self, values: dict[str, str]) -> None:
        old = {key: os.environ.get(key) for key in values}
        os.environ.update(values)

        def restore() -> None:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

        self._undo.append(restore)

    def undo(self) -> None:
        while self._undo:
            self._undo.pop()()


def _atomic_dynamodb(patches: Patches) -> None:
    """One DynamoDB request at a time: moto checks a condition and writes in separate steps, which our concurrent
    functions (threads here) could interleave; DynamoDB applies each atomically."""
    from moto.dynamodb.responses import DynamoHandler

    lock, call_action = threading.RLock(), DynamoHandler.call_action

    def atomic_call_action(self: Any) -> Any:
        with lock:
            return call_action(self)

    patches.setattr(DynamoHandler, "call_action", atomic_call_action)


class LocalStack:
    """Start with ``with LocalStack(work_dir) as stack:``; ``stack.api_url`` is the jobs API, ``stack.endpoint`` the
    AWS endpoint (``AWS_ENDPOINT_URL``) of the rest.

    Args:
        work_dir: where the SageMaker stand-in keeps each job's root and log.
        allow_docker: run sfm and compress in the images of ``make images`` when they are there.
        part_bytes: the API's multipart part size (64 MiB deployed; S3's smallest, 5 MiB, keeps tests small).
        pipeline: deliver S3's upload events to the trigger; without, uploads start nothing (upload tests).
    """

    def __init__(
        self, work_dir: Path, allow_docker: bool = True, part_bytes: int | None = None, pipeline: bool = True
    ) -> None:
        self.work_dir = work_dir
        self.faults = S3Faults()
        self._patches = Patches()
        self._part_bytes, self._pipeline = part_bytes, pipeline
        self._allow_docker = allow_docker
        self.template = template.load_template()
        self._server: Any = None
        self.sagemaker: SageMakerStandIn | None = None
        self.api: LocalHttpApi | None = None
        self.deliveries: RuleDeliveries | None = None
        self.functions: lambdas.ExecutionEnvironments | None = None

    # ------------------------------------------------------------ addresses and credentials

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        assert self.api is not None, "start the stack first"
        return self.api.url

    def client_environment(self) -> dict[str, str]:
        """What a client process needs to reach this stack as the local user (the standard AWS variables)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": USER[0],
            "AWS_SECRET_ACCESS_KEY": USER[1],
            "AWS_DEFAULT_REGION": REGION,
        }

    def write_profile(self, folder: Path, profile: str = "spaceport-local") -> dict[str, str]:
        """An AWS config and credentials file with a profile for this stack (``endpoint_url`` included), so that
        ``--profile`` reaches it as it would an account; returns the variables that point the SDK at them."""
        folder.mkdir(parents=True, exist_ok=True)
        config, credentials = folder / "config", folder / "credentials"
        config.write_text(f"[profile {profile}]\nregion = {REGION}\nendpoint_url = {self.endpoint}\n")
        credentials.write_text(f"[{profile}]\naws_access_key_id = {USER[0]}\naws_secret_access_key = {USER[1]}\n")
        return {"AWS_CONFIG_FILE": str(config), "AWS_SHARED_CREDENTIALS_FILE": str(credentials)}

    # ------------------------------------------------------------ life

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._start_server()
        self._patches.setenv(self.client_environment() | self._function_environment())
        from spaceport.cloud import aws, settings

        aws.reset()
        settings.clear_cache()
        if self._part_bytes:
            self.use_part_bytes(self._part_bytes)
        self._create_resources()
        self.functions = lambdas.ExecutionEnvironments()
        self._route_functions()
        principals = {key: Principal(secret, arn, key == USER[0]) for key, secret, arn in (USER, OUTSIDER)}
        self.api = LocalHttpApi(self.template, self._invoke_api, principals, REGION, ACCOUNT)
        self.api.start()
        self._create_cloudformation_stack()

    def use_part_bytes(self, part_bytes: int) -> None:
        """The API's part size from now on (and its multipart threshold: an archive over one part goes in parts)."""
        from spaceport.cloud import api

        self._patches.setattr(api, "PART_BYTES", part_bytes)
        self._patches.setattr(api, "MULTIPART_THRESHOLD", part_bytes)

    def stop(self) -> None:
        if self.sagemaker is not None:
            self.sagemaker.stop_all()
        if self.api is not None:
            self.api.stop()
        if self.deliveries is not None:
            self.deliveries.stop()
        if self._server is not None:
            self._reset_moto()
            self._server.shutdown()
            self._server.server_close()
        self._patches.undo()
        from spaceport.cloud import aws, settings

        aws.reset()
        settings.clear_cache()

    # ------------------------------------------------------------ pieces

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=REGION, endpoint_url=self.endpoint,
                            aws_access_key_id=USER[0], aws_secret_access_key=USER[1])  # fmt: skip

    def _start_server(self) -> None:
        from moto.core.config import default_user_config
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        # Step Functions really runs executions (moto's interpreter), as mock_aws's config would have it.
        self._patches.setitem(default_user_config["stepfunctions"], "execute_state_machine", True)
        _atomic_dynamodb(self._patches)
        moto = DomainDispatcherApplication(create_backend_app)
        s3_front = S3Front(moto, self.faults)
        self.sagemaker = SageMakerStandIn(
            self.work_dir / "sagemaker", lambda: self.client("s3"), lambda: self.client("events"), REGION, ACCOUNT,
            self._allow_docker,
        )  # fmt: skip
        sagemaker = self.sagemaker

        def front(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            operation = environ.get("HTTP_X_AMZ_TARGET", "").removeprefix("SageMaker.")
            if operation in OPERATIONS:
                return sagemaker.wsgi(operation, environ, start_response)
            return s3_front(environ, start_response)

        # One line per request to moto's server is noise; what the functions and the stages log is what matters.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = make_server("127.0.0.1", 0, front, threaded=True)
        threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True).start()

    def _resources(self) -> dict[str, str]:
        """What the template's references resolve to here."""
        ecr = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
        return {
            "JobsTable": JOBS_TABLE,
            "SlotsTable": SLOTS_TABLE,
            "DataBucket": BUCKET,
            "NotificationTopic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{TOPIC}",
            "PipelineStateMachine": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{PIPELINE}",
            "SageMakerExecutionRole.Arn": f"arn:aws:iam::{ACCOUNT}:role/spaceport-sagemaker",
            **{
                f"{stage.title()}Repository.RepositoryUri": f"{ecr}/{name}"
                for stage, name in template.REPOSITORIES.items()
            },
        }

    def _function_environment(self) -> dict[str, str]:
        return template.function_environment(self.template, self._resources(), PARAMETERS) | EXTRA_ENVIRONMENT

    def _create_resources(self) -> None:
        template.create_tables(self.client("dynamodb"), self.template)
        s3 = self.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        self.client("sns").create_topic(Name=TOPIC)
        ecr = self.client("ecr")
        for name in template.REPOSITORIES.values():
            ecr.create_repository(repositoryName=name)
            ecr.put_image(repositoryName=name, imageManifest=IMAGE_MANIFEST, imageTag=IMAGE_TAG)
        definition = template.fill_definition(template.substitutions(self.template, parameters=PARAMETERS))
        self.client("stepfunctions").create_state_machine(
            name=PIPELINE, definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/spaceport-pipeline"
        )
        self.client("codebuild").create_project(
            name=f"{STACK_NAME}-images", source={"type": "S3", "location": f"{BUCKET}/build/source.zip"},
            artifacts={"type": "NO_ARTIFACTS"}, serviceRole=f"arn:aws:iam::{ACCOUNT}:role/spaceport-image-build",
            environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                         "computeType": "BUILD_GENERAL1_LARGE"},
        )  # fmt: skip

    def _route_functions(self) -> None:
        lambdas.route_lambda_tasks(self._patches.setattr, self._invoke_task)
        lambdas.fresh_token_per_attempt(self._patches.setattr)
        self.deliveries = RuleDeliveries(lambda: self.client("sqs"), lambda: self.client("events"))
        for rule in template_rules(self.template, self._resources()):
            if rule.function == "TriggerFunction" and not self._pipeline:
                continue
            name = lambdas.function_name(rule.function)
            self.deliveries.add(rule, lambda event, n=name: self._functions().handle(n, event))

    def _functions(self) -> lambdas.ExecutionEnvironments:
        assert self.functions is not None, "start the stack first"
        return self.functions

    def _invoke_task(self, parameters: dict[str, Any], region: str, state_credentials: Any) -> dict[str, Any]:
        """A state machine's ``lambda:invoke`` task, run by the function's handler here."""
        name = lambdas.function_name(parameters["FunctionName"])
        return self._functions().invoke(name, json.loads(parameters["Payload"]))

    def _invoke_api(self, event: dict[str, Any]) -> dict[str, Any]:
        return self._functions().handle("api", event)

    def _create_cloudformation_stack(self) -> None:
        """A stack named as ``sam deploy`` names it, with the outputs (and parameters) the client reads."""
        outputs = {
            "ApiUrl": self.api_url,
            "DataBucketName": BUCKET,
            "ImageBuildProjectName": f"{STACK_NAME}-images",
            "StateMachineArn": self._resources()["PipelineStateMachine"],
            **{f"{stage.title()}RepositoryUri": self._resources()[f"{stage.title()}Repository.RepositoryUri"]
               for stage in template.REPOSITORIES},
        }  # fmt: skip
        parameters = ("SfmImageTag", "TrainImageTag", "CompressImageTag", "TrainInstanceType", "SpotTraining")
        body = {
            "Parameters": {name: {"Type": "String", "Default": str(self.template["Parameters"][name]["Default"])}
                           for name in parameters},
            "Resources": {"Deployed": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"{STACK_NAME}-up"}}},
            "Outputs": {name: {"Value": value} for name, value in outputs.items()},
        }  # fmt: skip
        self.client("cloudformation").create_stack(StackName=STACK_NAME, TemplateBody=json.dumps(body))

    def _reset_moto(self) -> None:
        """Forget the account: moto's backends are this process's, and the next stack starts empty."""
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()


def temporary_work_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="spaceport-local-stack-"))
