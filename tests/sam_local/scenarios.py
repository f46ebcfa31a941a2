"""For each file in ``events/``: the function that receives it, the state it is about, and what the in-process tests
(tests/cloud) expect the function to answer and change. The same expectations hold under ``sam local invoke``."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from ..cloud.conftest import photo_zip
from ..cloud.harness import BUCKET, TABLE
from .stack import (
    JOB,
    PIPELINE,
    WAITER,
    client,
    execution_arn,
    job_record,
    outputs,
    put,
    sagemaker_job_waiting,
    slot_waiter,
    uri,
    waiting_task_token,
)

Check = Callable[[Any, dict[str, Any]], None]


@dataclass(frozen=True)
class Scenario:
    """An event file, its function (template logical id), the state it needs, and the expectations."""

    event: str
    function: str
    seed: Callable[[], None]
    check: Check
    # moto's Step Functions interpreter runs executions (the scenarios that resume a waiting task token).
    executes: bool = False


def response(result: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """An HTTP API Lambda result as (status, JSON body)."""
    return result["statusCode"], json.loads(result["body"]) if result.get("body") else {}


def presigned_key(url: str) -> str:
    """The key a presigned S3 URL addresses, virtual-hosted (AWS's default) or path style (a custom endpoint)."""
    parsed = urlparse(url)
    path = unquote(parsed.path).lstrip("/")
    return path if parsed.netloc.startswith(f"{BUCKET}.") else path.removeprefix(f"{BUCKET}/")


def expires(url: str) -> int:
    return int(parse_qs(urlparse(url).query)["X-Amz-Expires"][0])


# ---------------------------------------------------------------- trigger


def seed_zip_upload() -> None:
    put(f"uploads/{JOB}/photos.zip", photo_zip())


def check_zip_upload_starts_the_job(result: Any, seen: dict[str, Any]) -> None:
    assert result == {"started": True, "job_id": JOB, "execution_arn": execution_arn(JOB)}
    job = seen["jobs"][JOB]
    assert job["status"] == "QUEUED" and job["execution_arn"] == execution_arn(JOB)
    assert job["options"] == {"preset": "default"}
    assert job["upload"] == {"kind": "zip", "key": f"uploads/{JOB}/photos.zip"}
    assert seen["executions"] == {f"{PIPELINE}:{JOB}": {"status": "RUNNING", "output": None}}
    assert seen["status_events"] == ["QUEUED"] and seen["notices"] == []


def seed_images_upload() -> None:
    with zipfile.ZipFile(io.BytesIO(photo_zip())) as archive:
        for name in archive.namelist():
            put(f"uploads/job-0002/{name}", archive.read(name))
    put("uploads/job-0002/job.json", b'{"preset": "quality"}')


def check_job_json_starts_the_job_with_its_options(result: Any, seen: dict[str, Any]) -> None:
    assert result == {"started": True, "job_id": "job-0002", "execution_arn": execution_arn("job-0002")}
    job = seen["jobs"]["job-0002"]
    assert job["status"] == "QUEUED" and job["options"] == {"preset": "quality"}
    assert job["upload"] == {"kind": "images", "prefix": "uploads/job-0002/"}
    assert seen["status_events"] == ["QUEUED"]


# ---------------------------------------------------------------- validate


def seed_claimed_zip_job() -> None:
    seed_zip_upload()
    job_record(JOB)


def check_validation_publishes_the_photos(result: Any, seen: dict[str, Any]) -> None:
    assert result == {"images": 4, "warnings": []}
    assert [key for key in seen["objects"] if key.startswith(f"jobs/{JOB}/images/")] == [
        f"jobs/{JOB}/images/IMG_{index:04d}.jpg" for index in range(4)
    ]
    job = seen["jobs"][JOB]
    assert job["stages"]["validate"]["status"] == "SUCCEEDED" and job["stages"]["validate"]["figures"]["images"] == 4
    assert job["outputs"] == {"images": uri(JOB, "images/")}
    # the stage names the log the function wrote to (the runtime's variables), and subscribers heard it start
    assert job["stages"]["validate"]["log"] == {"group": "aws/lambda/ValidateFunction", "stream": "$LATEST"}
    assert seen["status_events"] == ["RUNNING"]


# ---------------------------------------------------------------- start_stage and complete_stage


def seed_validated_job() -> None:
    job_record(JOB, finished=("validate",))


def check_stage_starts_its_sagemaker_job(result: Any, seen: dict[str, Any]) -> None:
    assert re.fullmatch(rf"sp-{JOB}-sfm-a1-[0-9a-f]{{6}}", result["sagemaker_job"]) and result["attempt"] == 1
    assert seen["processing_jobs"] == [result["sagemaker_job"]]
    job = seen["jobs"][JOB]
    assert job["sagemaker_job"] == result["sagemaker_job"] and job["current_stage"] == "sfm"
    assert job["wait_token"] == "AQB8AAAAKgAAAAMAAAAAAAAAAexampletoken"  # the event's token, parked for the event
    assert job["stages"]["sfm"] == {**job["stages"]["sfm"], "status": "RUNNING", "attempts": 1}


FIGURES_SFM = {"stage": "sfm", "registered_images": 32, "points": 1200}


def seed_processing_job_waiting() -> None:
    job_record(JOB, finished=("validate",), running="sfm")
    sagemaker_job_waiting("sfm", f"sp-{JOB}-sfm-a1-abc123")
    put(f"jobs/{JOB}/sfm/manifest.json", json.dumps({**FIGURES_SFM, "files": {}}).encode())


def check_processing_completion_resumes_with_the_manifest_figures(result: Any, seen: dict[str, Any]) -> None:
    assert result == {"resumed": "success"}
    job = seen["jobs"][JOB]
    assert job["stages"]["sfm"]["status"] == "SUCCEEDED" and job["stages"]["sfm"]["figures"] == FIGURES_SFM
    assert job["outputs"]["sfm"] == uri(JOB, "sfm/") and "wait_token" not in job
    stage_result = {"stage": "sfm", "sagemaker_job": f"sp-{JOB}-sfm-a1-abc123", "output": uri(JOB, "sfm/")}
    assert seen["executions"][f"{WAITER}:{JOB}"] == {
        "status": "SUCCEEDED",
        "output": {**stage_result, "figures": FIGURES_SFM},
    }


def seed_training_job_waiting() -> None:
    job_record(JOB, finished=("validate", "sfm"), running="train")
    sagemaker_job_waiting("train", f"sp-{JOB}-train-a1-abc123")


def check_training_completion_resumes_with_the_model(result: Any, seen: dict[str, Any]) -> None:
    # The event says Failed; complete_stage believes only the job's description, and moto completes every job.
    assert result == {"resumed": "success"}
    job = seen["jobs"][JOB]
    assert job["stages"]["train"]["status"] == "SUCCEEDED" and "wait_token" not in job
    assert job["outputs"]["model"].endswith(f"/sp-{JOB}-train-a1-abc123/output/model.tar.gz")
    execution = seen["executions"][f"{WAITER}:{JOB}"]
    assert execution["status"] == "SUCCEEDED" and execution["output"]["output"] == job["outputs"]["model"]


# ---------------------------------------------------------------- slots (MaxConcurrentTrainJobs is 1 in env.json)

EVENT_TOKEN = "AQB8AAAAKgAAAAMAAAAAAAAAAexampletoken"


def seed_train_slot_taken() -> None:
    """job-0002 (uploaded first) trains, holding the one train slot; job-0001's sfm stage has finished."""
    job_record("job-0002", finished=("validate", "sfm"), running="train", ticket=1)
    slot_waiter("job-0002", "train", 1, "token-of-job-0002", held=True)
    job_record(JOB, finished=("validate", "sfm"), ticket=2)


def check_job_queues_for_the_train_slot(result: Any, seen: dict[str, Any]) -> None:
    assert result == {"queued": "train", "ticket": 2, "position": 1}
    job = seen["jobs"][JOB]
    assert job["status"] == "QUEUED" and job["queue"] == {**job["queue"], "stage": "train", "ticket": 2, "position": 1}
    waiting = seen["slots"]["train/waiting#000000000002"]
    assert waiting["token"] == EVENT_TOKEN and waiting["execution"] == execution_arn(JOB)  # the event's, parked
    assert seen["slots"]["train/count"]["held"] == 1 and "train/holder#job-0001" not in seen["slots"]
    assert seen["status_events"] == ["QUEUED"]


def seed_train_slot_held_and_a_job_waiting() -> None:
    """job-0001 holds the train slot; job-0002 waits for it, parked on a real task token (of the stage-wait
    machine's execution, which stands in for job-0002's pipeline execution)."""
    job_record(JOB, finished=("validate", "sfm", "train"), ticket=1)
    slot_waiter(JOB, "train", 1, "token-of-job-0001", held=True)
    job_record("job-0002", finished=("validate", "sfm"), ticket=2)
    slot_waiter("job-0002", "train", 2, waiting_task_token("job-0002"), execution=execution_arn("job-0002", WAITER))


def check_release_grants_the_slot_to_the_next_in_line(result: Any, seen: dict[str, Any]) -> None:
    assert result == {"released": ["train"], "left_queue": [], "granted": {"train": [2]}}
    assert seen["slots"]["train/count"]["held"] == 1 and "train/holder#job-0001" not in seen["slots"]
    holder = seen["slots"]["train/holder#job-0002"]
    assert holder["resumed"] is True and holder["ticket"] == 2
    assert not [key for key in seen["slots"] if "waiting#" in key]
    execution = seen["executions"][f"{WAITER}:job-0002"]  # the waiting execution, resumed by the grant
    assert execution["status"] == "SUCCEEDED" and execution["output"]["stage"] == "train"


def seed_slot_of_an_ended_execution() -> None:
    """job-0001's execution holds the train slot but no longer exists (never released: stopped by hand, and its
    history gone); job-0003's queue entry is as stale; job-0002 waits behind them, its execution parked."""
    job_record(JOB, finished=("validate", "sfm"), running="train", ticket=1)
    slot_waiter(JOB, "train", 1, "token-of-job-0001", held=True)
    slot_waiter("job-0003", "train", 2, "token-of-job-0003")
    job_record("job-0002", finished=("validate", "sfm"), ticket=3)
    slot_waiter("job-0002", "train", 3, waiting_task_token("job-0002"), execution=execution_arn("job-0002", WAITER))


def check_sweep_reclaims_the_slot_and_grants_it(result: Any, seen: dict[str, Any]) -> None:
    assert result == {
        "reclaimed": [{"stage": "train", "job_id": JOB}],
        "dropped": [{"stage": "train", "job_id": "job-0003"}],
        "resent": [],
        "granted": {"sfm": [], "train": [3], "compress": []},
        "billing": [],
    }
    assert seen["slots"]["train/count"]["held"] == 1 and seen["slots"]["train/holder#job-0002"]["resumed"] is True
    assert not [key for key in seen["slots"] if "waiting#" in key or key == f"train/holder#{JOB}"]
    assert seen["executions"][f"{WAITER}:job-0002"]["status"] == "SUCCEEDED"


# ---------------------------------------------------------------- record_outcome


def seed_job_at_its_last_stage() -> None:
    job_record(JOB, finished=("validate", "sfm", "train", "compress"))


def check_success_is_recorded_and_notified(result: Any, seen: dict[str, Any]) -> None:
    assert result == {"job_id": JOB, "status": "SUCCEEDED", "failure_reason": None}
    assert seen["jobs"][JOB]["status"] == "SUCCEEDED"
    assert seen["status_events"] == ["SUCCEEDED"] and seen["notices"] == [f"Spaceport job {JOB}: SUCCEEDED"]


def seed_job_in_sfm() -> None:
    job_record(JOB, finished=("validate",), running="sfm")


def check_failure_is_recorded_with_stage_and_reason(result: Any, seen: dict[str, Any]) -> None:
    reason = "sfm: only 3 of 40 images registered"
    assert result == {"job_id": JOB, "status": "FAILED", "failure_reason": reason}
    job = seen["jobs"][JOB]
    assert job["status"] == "FAILED" and job["failed_stage"] == "sfm" and job["failure_reason"] == reason
    assert seen["notices"] == [f"Spaceport job {JOB}: FAILED"]


# ---------------------------------------------------------------- webhook

# Nothing listens on the discard port: the receiver is down, in this process as in the Lambda container.
RECEIVER_DOWN = "http://127.0.0.1:9/spaceport"


def seed_queued_job_whose_receiver_is_down() -> None:
    """A job with a webhook queued by its upload, the change in its outbox and on the bus, as trigger leaves it."""
    from spaceport.cloud import notify
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.settings import common_settings

    table = JobsTable(TABLE)
    options = {"preset": "default", "webhook_url": RECEIVER_DOWN}
    table.claim_for_start(JOB, options, {"kind": "zip", "key": f"uploads/{JOB}/photos.zip"})
    notify.status_change(common_settings(), table.get(JOB))


def check_refused_delivery_is_recorded_and_retried_later(result: Any, seen: dict[str, Any]) -> None:
    assert result == {"job_id": JOB, "delivered": []}
    job = seen["jobs"][JOB]
    [delivery] = job["webhook_events"]
    assert delivery["event"]["status"] == "QUEUED" and delivery["state"] == "pending" and delivery["attempts"] == 1
    assert delivery["last_result"].startswith("ConnectionRefusedError")
    # one retry, 30 s on (WebhookRetryQueue delays it), and the job's lease given back
    assert job["webhook_retry_at"] - delivery["last_attempt_at"] == pytest.approx(30, abs=1)
    assert seen["webhook_retries"] == {"visible": 0, "delayed": 1} and "webhook_lease" not in job


# ---------------------------------------------------------------- the API


def nothing() -> None:
    """No state: the request creates the job."""


def check_zip_job_is_created(result: Any, seen: dict[str, Any]) -> None:
    status, body = response(result)
    assert status == 201 and body["status"] == "AWAITING_UPLOAD" and body["expires_in"] == 900
    job_id = body["job_id"]
    assert body["upload"]["kind"] == "zip" and body["upload"]["key"] == f"uploads/{job_id}/photos.zip"
    assert presigned_key(body["upload"]["url"]) == body["upload"]["key"] and expires(body["upload"]["url"]) == 900
    assert seen["jobs"][job_id]["status"] == "AWAITING_UPLOAD" and seen["jobs"][job_id]["options"] == {"preset": "fast"}


def check_images_job_is_created(result: Any, seen: dict[str, Any]) -> None:
    status, body = response(result)
    assert status == 201
    prefix = f"uploads/{body['job_id']}/"
    assert body["upload"]["kind"] == "images"
    names = [f"IMG_{number:04d}.jpg" for number in range(1, 9)]
    assert {name: presigned_key(url) for name, url in body["upload"]["files"].items()} == {
        name: prefix + name for name in names
    }
    assert presigned_key(body["upload"]["job_file"]["url"]) == body["upload"]["job_file"]["key"] == prefix + "job.json"
    assert seen["jobs"][body["job_id"]]["upload"] == {"kind": "images", "prefix": prefix}


def seed_multipart_upload_awaited() -> None:
    """A job created for an archive in three parts, as POST /jobs records it, the upload open in S3."""
    from spaceport.cloud.jobs import JobsTable

    key = f"uploads/{JOB}/photos.zip"
    upload_id = client("s3").create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    multipart = {"upload_id": upload_id, "parts": 3, "part_bytes": 64 * 1024 * 1024}
    JobsTable(TABLE).create_awaiting_upload(JOB, {"preset": "default"}, {"kind": "zip", "key": key}, multipart)


def check_named_parts_are_signed_again(result: Any, seen: dict[str, Any]) -> None:
    status, body = response(result)
    upload = body["upload"]
    assert status == 200 and body["job_id"] == JOB and body["expires_in"] == 900
    assert upload["upload_id"] == seen["jobs"][JOB]["multipart"]["upload_id"]
    assert [part["part_number"] for part in upload["parts"]] == [2, 3]
    assert all(presigned_key(part["url"]) == f"uploads/{JOB}/photos.zip" for part in upload["parts"])
    assert presigned_key(upload["complete_url"]) == f"uploads/{JOB}/photos.zip" and upload["uploaded_parts"] == []
    assert seen["jobs"][JOB]["status"] == "AWAITING_UPLOAD"


def seed_succeeded_job() -> None:
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import JobStatus

    seed_job_at_its_last_stage()
    JobsTable(TABLE).finish(JOB, JobStatus.SUCCEEDED)


def check_job_view_with_download_links(result: Any, seen: dict[str, Any]) -> None:
    status, body = response(result)
    assert status == 200 and body["job_id"] == JOB and body["status"] == "SUCCEEDED" and body["progress"] == 1.0
    assert presigned_key(body["downloads"]["scene"]) == outputs(JOB, "compress")["scene"].split(f"{BUCKET}/")[1]
    assert "wait_token" not in body and "execution_arn" not in body


def seed_two_jobs() -> None:
    job_record(JOB)
    time.sleep(0.01)  # distinct creation times: the list is newest first
    job_record("job-0002")


def check_jobs_are_listed_newest_first(result: Any, seen: dict[str, Any]) -> None:
    status, body = response(result)
    assert status == 200 and [job["job_id"] for job in body["jobs"]] == ["job-0002", JOB] and "next" not in body


def seed_running_job() -> None:
    job_record(JOB, running="validate", execution=True)


def check_cancel_stops_the_execution(result: Any, seen: dict[str, Any]) -> None:
    status, body = response(result)
    assert status == 200 and body["status"] == "CANCELLED"
    job = seen["jobs"][JOB]
    assert job["status"] == "CANCELLED" and job["failure_reason"] == "cancelled by request"
    assert seen["executions"][f"{PIPELINE}:{JOB}"]["status"] == "ABORTED"
    assert seen["notices"] == [f"Spaceport job {JOB}: CANCELLED"]


def seed_job_failed_in_training() -> None:
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import JobStatus

    job_record(JOB, finished=("validate", "sfm"), running="train")
    JobsTable(TABLE).finish(JOB, JobStatus.FAILED, failed_stage="train", reason="train: loss diverged")


def check_retry_requeues_from_training(result: Any, seen: dict[str, Any]) -> None:
    status, body = response(result)
    assert status == 202 and body["status"] == "QUEUED" and body["failure_reason"] is None
    job = seen["jobs"][JOB]
    assert job["executions"] == 2 and job["execution_arn"] == execution_arn(f"{JOB}-retry-2")
    assert job["stages"]["train"]["status"] == "PENDING" and job["stages"]["sfm"]["status"] == "SUCCEEDED"
    assert seen["executions"][f"{PIPELINE}:{JOB}-retry-2"]["status"] == "RUNNING"


SCENARIOS = {
    scenario.event: scenario
    for scenario in (
        Scenario("trigger_zip_uploaded.json", "TriggerFunction", seed_zip_upload, check_zip_upload_starts_the_job),
        Scenario(
            "trigger_job_json_uploaded.json",
            "TriggerFunction",
            seed_images_upload,
            check_job_json_starts_the_job_with_its_options,
        ),
        Scenario(
            "validate_input.json", "ValidateFunction", seed_claimed_zip_job, check_validation_publishes_the_photos
        ),
        Scenario(
            "start_stage_input.json", "StartStageFunction", seed_validated_job, check_stage_starts_its_sagemaker_job
        ),
        Scenario(
            "sagemaker_processing_state_change.json",
            "CompleteStageFunction",
            seed_processing_job_waiting,
            check_processing_completion_resumes_with_the_manifest_figures,
            executes=True,
        ),
        Scenario(
            "sagemaker_training_state_change.json",
            "CompleteStageFunction",
            seed_training_job_waiting,
            check_training_completion_resumes_with_the_model,
            executes=True,
        ),
        Scenario(
            "wait_for_slot_input.json",
            "WaitForSlotFunction",
            seed_train_slot_taken,
            check_job_queues_for_the_train_slot,
        ),
        Scenario(
            "release_slot_input.json",
            "ReleaseSlotFunction",
            seed_train_slot_held_and_a_job_waiting,
            check_release_grants_the_slot_to_the_next_in_line,
            executes=True,
        ),
        Scenario(
            "sweep_slots_scheduled.json",
            "SweepSlotsFunction",
            seed_slot_of_an_ended_execution,
            check_sweep_reclaims_the_slot_and_grants_it,
            executes=True,
        ),
        Scenario(
            "record_success_input.json",
            "RecordOutcomeFunction",
            seed_job_at_its_last_stage,
            check_success_is_recorded_and_notified,
        ),
        Scenario(
            "record_failure_input.json",
            "RecordOutcomeFunction",
            seed_job_in_sfm,
            check_failure_is_recorded_with_stage_and_reason,
        ),
        Scenario(
            "webhook_status_change.json",
            "WebhookFunction",
            seed_queued_job_whose_receiver_is_down,
            check_refused_delivery_is_recorded_and_retried_later,
        ),
        Scenario("api_create_job.json", "ApiFunction", nothing, check_zip_job_is_created),
        Scenario("api_create_job_images.json", "ApiFunction", nothing, check_images_job_is_created),
        Scenario("api_get_job.json", "ApiFunction", seed_succeeded_job, check_job_view_with_download_links),
        Scenario("api_list_jobs.json", "ApiFunction", seed_two_jobs, check_jobs_are_listed_newest_first),
        Scenario("api_cancel_job.json", "ApiFunction", seed_running_job, check_cancel_stops_the_execution),
        Scenario("api_retry_job.json", "ApiFunction", seed_job_failed_in_training, check_retry_requeues_from_training),
        Scenario(
            "api_upload_parts.json", "ApiFunction", seed_multipart_upload_awaited, check_named_parts_are_signed_again
        ),
    )
}

# ---------------------------------------------------------------- comparing two runs

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?")
SAGEMAKER_TAIL = re.compile(r"(-(?:sfm|train|compress)-a\d+)-[0-9a-f]{6}\b")


def normalise(value: Any) -> Any:
    """What must agree between two runs: ids, times, random name tails, signatures and endpoints masked."""
    if isinstance(value, dict):
        if isinstance(value.get("body"), str) and value.get("statusCode"):
            value = {**value, "body": json.loads(value["body"]) if value["body"] else None}
        # S3 names each multipart upload at random; webhook deliveries keep their times in epoch seconds
        return {normalise(key): masked(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, str):
        if value.startswith(("http://", "https://")) and "X-Amz-Signature=" in value:
            value = f"<presigned PUT/GET of {presigned_key(value)}, {expires(value)} s>"
        return SAGEMAKER_TAIL.sub(r"\1-<random>", TIMESTAMP.sub("<time>", UUID.sub("<uuid>", value)))
    return value


def masked(key: str, value: Any) -> Any:
    if key == "upload_id":
        return "<upload id>"
    if key.endswith("_at") and isinstance(value, int | float):
        return "<epoch seconds>"
    return normalise(value)
