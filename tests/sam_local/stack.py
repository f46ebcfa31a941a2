"""A local AWS account for the Lambda functions: the stack's resources and, for each event in ``events/``, the state
that event is about, with what the in-process tests expect the function to answer.

The same code seeds moto inside the test process (``mock_aws``) and moto's server that the ``sam local invoke``
containers talk to: boto3, and the project's own data access in ``spaceport.cloud``, follow ``AWS_ENDPOINT_URL``.
``observe()`` reads back what a function changed (job records, slots, objects, executions, SageMaker jobs, status
events and notifications), through queues subscribed the way the stack's consumers subscribe.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import boto3

from ..cloud.harness import (
    ACCOUNT,
    BUCKET,
    REGION,
    REPOSITORIES,
    SLOTS_TABLE,
    TABLE,
    create_tables,
    fill_definition,
    load_template,
    substitutions,
)

ENV_FILE = Path(__file__).with_name("env.json")
# The functions' environment: the values of tests/cloud (conftest.cloud_env), as `sam local invoke --env-vars`
# gives them; AWS_ENDPOINT_URL is moto's server as the Lambda containers reach it.
SETTINGS: dict[str, str] = json.loads(ENV_FILE.read_text())["Parameters"]
PIPELINE = "spaceport-pipeline"
WAITER = "spaceport-local-stage-wait"
TOKEN_QUEUE = "spaceport-local-task-tokens"
NOTICE_QUEUE = "spaceport-local-notices"
STATUS_EVENT_QUEUE = "spaceport-local-status-events"
WEBHOOK_RETRY_QUEUE = SETTINGS["WEBHOOK_RETRY_QUEUE_URL"].rsplit("/", 1)[1]
WEBHOOK_SECRET = "receivers-hold-this-too"
JOB = "job-0001"
IMAGE_MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"})


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def uri(job_id: str, rest: str) -> str:
    return f"s3://{BUCKET}/jobs/{job_id}/{rest}"


def execution_arn(name: str, machine: str = PIPELINE) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{machine}:{name}"


# ---------------------------------------------------------------- the stack


def reset_server(endpoint: str, executes: bool) -> None:
    """Empty moto's server; its Step Functions interpreter runs executions only if ``executes``."""
    for path, body in (
        ("/moto-api/reset", b""),
        ("/moto-api/config", {"stepfunctions": {"execute_state_machine": executes}}),
    ):
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(f"{endpoint}{path}", data=data, method="POST")  # noqa: S310 (a local server)
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            answer.read()


def create_stack() -> None:
    """The template's tables, the data bucket, the topic, the image repositories with an image each, the pipeline
    state machine, the webhook secret and retry queue, and the queues that observe status events (EventBridge rule)
    and notifications (SNS)."""
    template = load_template()
    create_tables(client("dynamodb"), template)
    client("s3").create_bucket(Bucket=BUCKET)
    ecr = client("ecr")
    for repository in REPOSITORIES.values():
        ecr.create_repository(repositoryName=repository)
        ecr.put_image(repositoryName=repository, imageManifest=IMAGE_MANIFEST, imageTag=SETTINGS["SFM_IMAGE_TAG"])
    client("stepfunctions").create_state_machine(
        name=PIPELINE, definition=fill_definition(substitutions(template)), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
    )
    sqs = client("sqs")
    secret = SETTINGS["WEBHOOK_SECRET_ARN"].rsplit(":", 1)[1]  # a partial ARN: the name, without AWS's suffix
    client("secretsmanager").create_secret(Name=secret, SecretString=WEBHOOK_SECRET)
    sqs.create_queue(QueueName=WEBHOOK_RETRY_QUEUE)
    topic = client("sns").create_topic(Name=SETTINGS["NOTIFICATION_TOPIC_ARN"].rsplit(":", 1)[1])["TopicArn"]
    client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sqs, NOTICE_QUEUE))
    events = client("events")
    events.put_rule(Name="spaceport-local-status", EventPattern=json.dumps({"source": ["spaceport.jobs"]}))
    events.put_targets(
        Rule="spaceport-local-status", Targets=[{"Id": "queue", "Arn": queue_arn(sqs, STATUS_EVENT_QUEUE)}]
    )


def queue_arn(sqs: Any, name: str) -> str:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def drain(name: str) -> list[dict[str, Any]]:
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return bodies


def queued(name: str) -> dict[str, int]:
    """How many messages the queue holds, visible and delayed (a webhook retry waits out its delay)."""
    sqs = client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
    }


# ---------------------------------------------------------------- job state, written as the functions write it

FIGURES = {
    "validate": {"images": 4, "warnings": []},
    "sfm": {"stage": "sfm", "registered_images": 4, "points": 1200},
    "train": {"psnr": 24.31, "gaussians": 18234},
    "compress": {"stage": "compress", "gaussians": 18234, "sog_bytes": 51234},
}


def outputs(job_id: str, stage: str) -> dict[str, str]:
    """What each stage records (validate.py, pipeline._stage_outputs)."""
    return {
        "validate": {"images": uri(job_id, "images/")},
        "sfm": {"sfm": uri(job_id, "sfm/")},
        "train": {"model": uri(job_id, f"train/sp-{job_id}-train-a1-abc123/output/model.tar.gz")},
        "compress": {
            "scene": uri(job_id, "compress/scene.sog"),
            "sog": uri(job_id, "compress/sog/"),
            "compress_manifest": uri(job_id, "compress/manifest.json"),
        },
    }[stage]


def job_record(
    job_id: str,
    finished: tuple[str, ...] = (),
    running: str | None = None,
    execution: bool = False,
    ticket: int | None = None,
) -> None:
    """A job claimed by its zip upload, through the table's own methods: stages ``finished``, ``running`` begun,
    with ``execution`` a pipeline execution really started (one that moto leaves RUNNING), with ``ticket`` its
    place in upload order."""
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import Stage

    table = JobsTable(TABLE)
    upload = {"kind": "zip", "key": f"uploads/{job_id}/photos.zip"}
    table.claim_for_start(job_id, {"preset": "default"}, upload, ticket)
    arn = execution_arn(job_id)
    if execution:
        client("stepfunctions").start_execution(
            stateMachineArn=SETTINGS["STATE_MACHINE_ARN"], name=job_id, input=json.dumps({"job_id": job_id})
        )
    table.set_execution(job_id, arn, 1)
    for stage in finished:
        table.begin_stage(job_id, Stage(stage))
        table.end_stage(job_id, Stage(stage), "SUCCEEDED", FIGURES[stage], outputs(job_id, stage))
    if running:
        table.begin_stage(job_id, Stage(running))


def waiting_task_token(name: str = JOB) -> str:
    """Start an execution (called ``name``) that waits at a task token, as the pipeline waits for a SageMaker stage
    or for a slot; its token."""
    sqs, sfn = client("sqs"), client("stepfunctions")
    queue = sqs.create_queue(QueueName=TOKEN_QUEUE)["QueueUrl"]
    definition = {
        "StartAt": "Wait for the stage",
        "States": {
            "Wait for the stage": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": queue, "MessageBody": {"token.$": "$$.Task.Token"}},
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=WAITER, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn"
    )["stateMachineArn"]
    sfn.start_execution(stateMachineArn=machine, name=name, input="{}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        if messages:
            return json.loads(messages[0]["Body"])["token"]
    raise AssertionError("the waiting execution never sent its task token")


def sagemaker_job_waiting(stage: str, name: str) -> None:
    """The stage's SageMaker job (the request start_stage sends), its task token parked in the job record."""
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import Stage
    from spaceport.cloud.sagemaker_requests import sfm_request, train_request
    from spaceport.cloud.settings import stage_settings

    settings = stage_settings()
    image = f"{settings.sfm_repository}:{settings.sfm_image_tag}"
    if stage == "sfm":
        client("sagemaker").create_processing_job(**sfm_request(settings, name, JOB, image))
    else:
        client("sagemaker").create_training_job(**train_request(settings, name, JOB, image, {"preset": "default"}))
    JobsTable(TABLE).attach_sagemaker_job(JOB, Stage(stage), name, waiting_task_token())


def slot_waiter(
    job_id: str, stage: str, ticket: int, token: str, held: bool = False, execution: str | None = None
) -> None:
    """``job_id``'s execution (by default its pipeline execution) in ``stage``'s queue with ``token`` (as "Wait for
    a <stage> slot" parks it), or with ``held`` already granted its slot (a grant whose token was sent)."""
    from spaceport.cloud.models import Stage
    from spaceport.cloud.slot_table import SlotTable, Waiter

    slots = SlotTable(SLOTS_TABLE, TABLE)
    execution = execution or execution_arn(job_id)
    waiter = Waiter(Stage(stage), ticket, job_id, execution, token, "2026-12-03T10:00:00.000+00:00")
    slots.enqueue(waiter)
    if held:
        assert slots.grant(waiter, limit=100, queue_version=slots.queue_version(Stage(stage))).value == "granted"
        slots.mark_resumed(Stage(stage), waiter.execution, waiter.token)


def put(key: str, body: bytes) -> None:
    client("s3").put_object(Bucket=BUCKET, Key=key, Body=body)


# ---------------------------------------------------------------- what a function changed


def settle(timeout_s: float = 30) -> None:
    """Wait until no execution of the stage-wait machine is still running (a resumed task finishes async)."""
    sfn = client("stepfunctions")
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{WAITER}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING")["executions"]:
            return
        time.sleep(0.1)
    raise AssertionError("the resumed execution did not finish")


def observe() -> dict[str, Any]:
    """Everything a function may have changed, in a form two runs can be compared in."""
    from spaceport.cloud.jobs import from_dynamo

    sfn, sagemaker = client("stepfunctions"), client("sagemaker")
    executions = {}
    for machine in sfn.list_state_machines()["stateMachines"]:
        for execution in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            output = json.loads(described["output"]) if described.get("output") else None
            executions[f"{machine['name']}:{execution['name']}"] = {"status": described["status"], "output": output}
    items = boto3.resource("dynamodb", region_name=REGION).Table(TABLE).scan(ConsistentRead=True)["Items"]
    slots = boto3.resource("dynamodb", region_name=REGION).Table(SLOTS_TABLE).scan(ConsistentRead=True)["Items"]
    processing = sagemaker.list_processing_jobs()["ProcessingJobSummaries"]
    training = sagemaker.list_training_jobs()["TrainingJobSummaries"]
    return {
        "jobs": {item["job_id"]: from_dynamo(item) for item in items},
        "slots": {f"{item['pool']}/{item['entry']}": from_dynamo(item) for item in slots},
        "objects": sorted(item["Key"] for item in client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])),
        "executions": executions,
        "processing_jobs": sorted(job["ProcessingJobName"] for job in processing),
        "training_jobs": sorted(job["TrainingJobName"] for job in training),
        "status_events": [event["detail"]["status"] for event in drain(STATUS_EVENT_QUEUE)],
        "notices": [notice["Subject"] for notice in drain(NOTICE_QUEUE)],
        "webhook_retries": queued(WEBHOOK_RETRY_QUEUE),
    }
