"""Bounded concurrency per stage: the real state machine under moto, bursts of uploads beyond the GPU quota.

SageMaker is scripted (``FakeSageMaker.training_quota``) to refuse, with ResourceLimitExceeded, a training job while
two run, as an account with a quota of two GPU instances does.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any

import boto3
import pytest

from . import harness
from .conftest import photo_zip
from .harness import BUCKET, REGION, SLOTS_TABLE
from .test_api import call
from .test_pipeline_e2e import upload_zip

TRAIN_QUOTA_REASON = "ml.g5.xlarge for training job usage"


def upload_all(world, job_ids: list[str]) -> list[str]:
    """Every upload lands, then every upload event arrives, one right after the other; their execution ARNs."""
    s3 = boto3.client("s3", region_name=REGION)
    body = photo_zip()
    for job_id in job_ids:
        s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/photos.zip", Body=body)
    started = [world.deliver_upload(f"uploads/{job_id}/photos.zip") for job_id in job_ids]
    assert all(result["started"] for result in started)
    return [result["execution_arn"] for result in started]


def limits(monkeypatch, sfm: int, train: int, compress: int, **more: str) -> None:
    from spaceport.cloud import settings

    monkeypatch.setenv("MAX_CONCURRENT_SFM_JOBS", str(sfm))
    monkeypatch.setenv("MAX_CONCURRENT_TRAIN_JOBS", str(train))
    monkeypatch.setenv("MAX_CONCURRENT_COMPRESS_JOBS", str(compress))
    for key, value in more.items():
        monkeypatch.setenv(key, value)
    settings.clear_cache()


def slot_items() -> list[dict[str, Any]]:
    from spaceport.cloud.jobs import from_dynamo

    table = boto3.resource("dynamodb", region_name=REGION).Table(SLOTS_TABLE)
    return [from_dynamo(item) for item in table.scan(ConsistentRead=True)["Items"]]


def slots_in_use() -> dict[str, Any]:
    """What the slots table holds besides the ticket counter and the queues' versions: counts above zero, holders,
    waiting entries."""
    found: dict[str, Any] = {}
    for item in slot_items():
        if item["pool"] == "tickets" or item["entry"] == "queue" or (item["entry"] == "count" and item["held"] == 0):
            continue
        found[f"{item['pool']}/{item['entry']}"] = item.get("held", item.get("job_id"))
    return found


def waiting(stage: str) -> list[dict[str, Any]]:
    return sorted(
        (item for item in slot_items() if item["pool"] == stage and item["entry"].startswith("waiting#")),
        key=lambda item: item["ticket"],
    )


def wait_for(world, condition, what: str, timeout_s: float = 120) -> None:
    """Deliver SageMaker's events (the stages run on) until ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    while True:
        world.deliver_sagemaker_events()
        if condition():
            return
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def releasing(stage: str):
    """Matches the TransactWriteItems of a release of a ``stage`` slot (its first item deletes the holder)."""

    def matches(params) -> bool:
        key = harness.transact_item_key(params)
        return "Delete" in params["TransactItems"][0] and key == {**key, "pool": stage} and "holder#" in key["entry"]

    return matches


def joining_a_queue(params) -> bool:
    """Matches the TransactWriteItems that puts an entry in a queue (and raises the queue's version)."""
    return "Put" in params["TransactItems"][0] and "waiting#" in harness.transact_item_key(params).get("entry", "")


def one_item(matches):
    """A matcher that takes the item of the first request ``matches`` accepts, then accepts only requests for that
    item: the faults go to one caller's tries in a row, not to whoever comes next."""
    chosen: list[dict[str, str]] = []

    def pick(params) -> bool:
        if not matches(params):
            return False
        if not chosen:
            chosen.append(harness.transact_item_key(params))
        return harness.transact_item_key(params) == chosen[0]

    return pick


def every(count: int, matches=lambda params: True):
    """A request matcher that picks every ``count``-th request ``matches`` accepts, but never the same item twice in
    a row: a caller that tries again is not picked again at once (its tries are not all spent by chance)."""
    seen, last = [0], [None]

    def pick(params) -> bool:
        if not matches(params):
            return False
        seen[0] += 1
        key = harness.transact_item_key(params) if "TransactItems" in params else params.get("TableName")
        if seen[0] % count != 1 or key == last[0]:
            return False
        last[0] = key
        return True

    return pick


def throttle_grant_sends(monkeypatch, picked: set[int]) -> list[str]:
    """Step Functions throttles the grants' SendTaskSuccess calls numbered in ``picked`` (1 is the first grant sent);
    returns the tokens of the grants throttled."""
    lock, grants, throttled = threading.Lock(), [0], []

    def answer(call, taskToken: str, output: str):
        if "granted_at" in output:
            with lock:
                grants[0] += 1
                number = grants[0]
            if number in picked:
                throttled.append(taskToken)
                raise harness.aws_error("ThrottlingException", "SendTaskSuccess")
        return call(taskToken=taskToken, output=output)

    harness.intercept(monkeypatch, "stepfunctions", "send_task_success", answer)
    return throttled


class Sweeper:
    """The scheduled sweeper, run every ``period_s`` on its own thread while the test runs, as the schedule would
    run it beside the executions; what each run answered, and any exception, are kept."""

    def __init__(self, world, period_s: float = 0.5) -> None:
        self._world, self._period_s = world, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.results: list[dict[str, Any]] = []
        self.errors: list[BaseException] = []

    def _run(self) -> None:
        event = harness.load_event("sweep_slots_scheduled.json")
        while not self._stop.wait(self._period_s):
            try:
                self.results.append(self._world.handlers["sweep_slots"].lambda_handler(event, harness.FakeContext()))
            except Exception as error:  # kept for the test to report, and the schedule runs again
                self.errors.append(error)

    def __enter__(self) -> Sweeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def queued(world, stage: str, count: int) -> bool:
    """Whether ``count`` jobs wait in the stage's queue, each job's record showing it QUEUED there (the record is
    written just after the entry)."""
    entries = waiting(stage)
    records = [world.job(item["job_id"]) for item in entries]
    return len(entries) == count and all(
        job["status"] == "QUEUED" and job.get("queue", {}).get("stage") == stage for job in records
    )


def complete_silent_jobs(world, stage: str, count: int) -> None:
    """SageMaker ends the stage's ``count`` jobs that were scripted silent (once they exist: a slot is granted before
    its job is created): their completion events arrive now."""

    def silent() -> list[str]:
        names = [name for name, outcome in world.sagemaker.outcomes.items() if outcome == ("silent",)]
        return [name for name in names if f"-{stage}-" in name and name in world.sagemaker.running[stage]]

    wait_for(world, lambda: len(silent()) == count, f"{count} silent {stage} jobs to run")
    for name in silent():
        world.sagemaker.ended(stage, name)
        event = world.state_change_event(stage, name)
        world.handlers["complete_stage"].lambda_handler(event, harness.FakeContext())


@pytest.mark.slow  # 32 executions through the whole state machine: about three minutes on two cores
def test_thirty_uploads_beyond_the_gpu_quota_all_finish_in_upload_order_and_leave_no_slot_held(world, monkeypatch):
    # GIVEN a GPU quota of two training jobs, MaxConcurrentTrainJobs at 2, and the first two training jobs kept
    # running until every other job has reached the train queue (so that the queue's order is what decides); one
    # job's training is scripted to fail
    from spaceport.cloud import slots

    limits(monkeypatch, sfm=4, train=2, compress=2)
    slot_limits = {"sfm": 4, "train": 2, "compress": 2}
    world.push_images()
    world.sagemaker.training_quota = 2
    world.sagemaker.script["train"].extend([("silent",), ("silent",)])
    jobs = [f"burst-{index:02d}" for index in range(30)]
    world.sagemaker.job_script[("burst-07", "train")] = deque([("fail", "train: loss diverged (nan) at 1200")])
    # AND everything runs at once, as on AWS (each execution on its own thread, DynamoDB atomic per request only),
    # with DynamoDB's answers under contention: every fourth slot transaction cancelled once for a conflict (the
    # function tries it again), an enqueue and every seventh queue read throttled (past the SDK's retries, or
    # within them), and later the first train release cancelled five times in a row (the function gives up: the
    # state machine retries it)
    faults = world.dynamo_faults
    faults.add("TransactWriteItems", one_item(joining_a_queue), "throttle", times=5)
    faults.add("TransactWriteItems", every(4), "conflict", times=60)
    faults.add("Query", every(7, lambda params: params.get("TableName") == SLOTS_TABLE), "throttle", times=20)
    # AND some waits' invokes failing after the function ran (the first one among them, which was granted at once:
    # its retry, with a new token, finds the slot its own), and three grants' SendTaskSuccess throttled, which the
    # sweeper, running all along, sends again
    world.errors_after_handler["wait_for_slot"].extend("ServiceException" if i % 9 == 0 else None for i in range(60))
    throttled_grants = throttle_grant_sends(monkeypatch, {3, 11, 40})
    monkeypatch.setattr(slots, "RESEND_AFTER_S", 1)

    with Sweeper(world) as sweeper:
        # WHEN 30 uploads arrive at once
        upload_all(world, jobs)
        uploaded = {job_id: world.job(job_id)["ticket"] for job_id in jobs}
        wait_for(world, lambda: queued(world, "train", 28), "28 jobs queued for the two train slots")
        # AND one job is cancelled while it waits in the train queue, then retried
        in_line = [item["job_id"] for item in waiting("train")]
        cancelled = next(job_id for job_id in in_line[5:] if job_id != "burst-07")
        path = f"/jobs/{cancelled}"
        status, view = call(world, "api_get_job.json", path=path)
        assert status == 200 and view["status"] == "QUEUED" and view["queue"]["stage"] == "train"
        assert view["queue"]["position"] == 1 + in_line.index(cancelled)
        assert f"position {view['queue']['position']} of 28" in view["waiting"]
        assert call(world, "api_cancel_job.json", path=f"{path}/cancel")[0] == 200
        assert cancelled not in [item["job_id"] for item in waiting("train")] and len(waiting("train")) == 27
        assert call(world, "api_retry_job.json", path=f"{path}/retry", body={"from_stage": "train"})[0] == 202
        # AND the two first training jobs end (the first release of their slots conflicting five times in a row);
        # the job scripted to fail does so while it trains, and is retried
        faults.add("TransactWriteItems", one_item(releasing("train")), "conflict", times=5)
        complete_silent_jobs(world, "train", 2)
        wait_for(world, lambda: world.job("burst-07")["status"] == "FAILED", "burst-07 to fail while training")
        assert world.job("burst-07")["failed_stage"] == "train"
        assert "loss diverged" in world.job("burst-07")["failure_reason"]
        assert call(world, "api_retry_job.json", path="/jobs/burst-07/retry", body={"from_stage": "train"})[0] == 202
        # AND everything runs to its end
        statuses = world.run_all([world.job(job_id)["execution_arn"] for job_id in jobs], timeout_s=400)
        wait_for(world, lambda: slots_in_use() == {}, "the last slots to be given back")

    # THEN every job SUCCEEDED
    assert set(statuses.values()) == {"SUCCEEDED"}
    assert {job_id: world.job(job_id)["status"] for job_id in jobs} == {job_id: "SUCCEEDED" for job_id in jobs}
    # AND never more than two training jobs ran at once, and SageMaker never had to refuse one
    assert world.sagemaker.peak["train"] == 2 and world.sagemaker.refused == []
    # AND in every stage, every grant went to the lowest ticket waiting when DynamoDB committed it, and no stage ever
    # held more slots than it has
    grants = world.grant_log.grants
    assert grants and all(ticket == min(queue) for _, ticket, queue, _ in grants), grants
    assert all(held <= slot_limits[stage] for stage, _, _, held in grants), grants
    assert {stage for stage, _, _, _ in grants} == {"sfm", "train", "compress"}
    # AND once the first two held their slots, the train slots went out in upload order: every job's ticket, then
    # the two retries' new ones (two jobs granted together may still create their training jobs in either order)
    retried = {job_id: world.job(job_id)["ticket"] for job_id in (cancelled, "burst-07")}
    assert min(retried.values()) > max(uploaded.values())
    train_grants = [ticket for stage, ticket, _, _ in grants if stage == "train"]
    assert len(train_grants) == 31 and train_grants[2:] == sorted(train_grants[2:])
    assert set(train_grants) == set(uploaded.values()) - {uploaded[cancelled]} | set(retried.values())
    # AND the cancelled job trained only once retried; the failed one trained twice
    started = world.sagemaker.started["train"]
    assert len(started) == 31 and started.count(cancelled) == 1 and started.count("burst-07") == 2
    # AND no slot is held and nothing waits, in any stage
    assert slots_in_use() == {}
    # AND the paths contention takes all ran: conflicts retried by the function, a release retried by the state
    # machine, a retried wait finding its slot granted, the sweeper sending throttled grants again; the sweeper
    # itself never failed
    assert ("TransactWriteItems", "conflict") in faults.injected and len(throttled_grants) == 3
    errors = [answer["errorType"] for name, answer in world.answers if "errorType" in answer]
    assert "SlotTableBusyError" in errors
    assert any(answer.get("already_held") for name, answer in world.answers if name == "wait_for_slot")
    resent = sum(len(result["resent"]) for result in sweeper.results)
    assert resent >= len(throttled_grants) and sweeper.errors == []


def test_resource_limit_exceeded_makes_the_job_wait_holding_its_slot_then_it_succeeds(world, monkeypatch):
    # GIVEN MaxConcurrentTrainJobs at 3 while the account's quota allows 2 (lowered, or used by another stack)
    limits(monkeypatch, sfm=6, train=3, compress=6)
    world.push_images()
    world.sagemaker.training_quota = 2
    world.sagemaker.script["train"].extend([("silent",), ("silent",)])
    jobs = [f"quota-{index}" for index in range(6)]
    # WHEN six uploads arrive and the first two training jobs run while SageMaker refuses a third one three times
    arns = upload_all(world, jobs)
    wait_for(world, lambda: len(world.sagemaker.refused) >= 3, "SageMaker to refuse a third training job")
    holders = [item for item in slot_items() if item["pool"] == "train" and item["entry"].startswith("holder#")]
    assert len(holders) == 3
    waiting_job = next(item["job_id"] for item in holders if item["job_id"] not in world.sagemaker.started["train"])
    assert [item["job_id"] for item in holders if item.get("quota_wait")] == [waiting_job]
    assert "ResourceLimitExceeded" in call(world, "api_get_job.json", path=f"/jobs/{waiting_job}")[1]["waiting"]
    refused_while_two_ran = list(world.sagemaker.refused)
    complete_silent_jobs(world, "train", 2)
    statuses = world.run_all(arns)
    # THEN every job SUCCEEDED: the refused one waited, holding its slot, with a backoff of 60 s doubling, and
    # started once a GPU was free; never more than two trained at once (with three slots and a quota of two, a
    # job granted later may be refused too, and waits the same way)
    assert set(statuses.values()) == {"SUCCEEDED"}
    assert world.sagemaker.peak["train"] == 2
    assert all(f"sp-{waiting_job}-train-" in name for name in refused_while_two_ran)
    assert world.sleeps[:3] == [60, 120, 240]
    # AND no job granted a train slot after it took the GPU that freed first: the stage's grants paused meanwhile
    assert world.sagemaker.started["train"][2] == waiting_job
    assert "quota_refused_since" not in world.job(waiting_job)["stages"]["train"]
    # AND the refused attempts are not among the jobs the stage would stop
    record = world.job(waiting_job)["stages"]["train"]
    assert record["attempts"] > 1 and len(record["sagemaker_jobs"]) == 1
    assert slots_in_use() == {}


def test_a_quota_that_never_frees_fails_the_job_after_quota_wait_seconds_naming_the_quota(world, monkeypatch):
    # GIVEN a quota fully used by another stack's jobs, and QuotaWaitSeconds of two hours
    from spaceport.cloud import pipeline

    limits(monkeypatch, sfm=2, train=1, compress=2, QUOTA_WAIT_SECONDS="7200")
    world.push_images()
    world.sagemaker.training_quota = 0
    start = time.time()
    # (the starter's clock is the state machine's simulated backoff time)
    monkeypatch.setattr(pipeline, "clock", lambda: start + sum(world.sleeps))
    # WHEN the job runs
    arn = upload_all(world, ["job-no-quota"])[0]
    result = world.run(arn)
    # THEN it retried for two hours (60, 120, ... then every 900 s), then failed naming the quota to raise
    assert result["status"] == "FAILED"
    assert sum(world.sleeps) >= 7200 and sum(world.sleeps[:-1]) < 7200 and max(world.sleeps) == 900
    job = world.job("job-no-quota")
    assert job["failed_stage"] == "train"
    assert TRAIN_QUOTA_REASON in job["failure_reason"] and "QuotaWaitSeconds" in job["failure_reason"]
    assert "MaxConcurrentTrainJobs" in job["failure_reason"]
    # AND the slot came back; no training job exists to stop
    assert slots_in_use() == {}
    assert job["stages"]["train"]["sagemaker_jobs"] == []


def test_the_sweeper_gives_back_the_slot_of_an_execution_killed_while_holding_it(world, monkeypatch):
    # GIVEN one train slot, held by a job whose training never reports back, and a second job waiting for it
    limits(monkeypatch, sfm=2, train=1, compress=2)
    world.push_images()
    world.sagemaker.script["train"].append(("silent",))
    first, second = upload_all(world, ["job-killed", "job-behind"])
    wait_for(world, lambda: queued(world, "train", 1), "the second job to queue for the train slot")
    holder = next(item for item in slot_items() if item["entry"].startswith("holder#") and item["pool"] == "train")
    killed = holder["execution"]
    behind = second if killed == first else first
    sweep_event = harness.load_event("sweep_slots_scheduled.json")
    # WHEN the sweeper runs while the holder's execution runs THEN it reclaims nothing
    assert world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())["reclaimed"] == []
    # WHEN the execution is stopped by hand: no Catch runs, nothing releases its slot
    world.kill(killed)
    wait_for(world, lambda: world.sfn.describe_execution(executionArn=killed)["status"] != "RUNNING", "the stop")
    time.sleep(0.5)
    assert [item["execution"] for item in slot_items() if item["entry"].startswith("holder#")] == [killed]
    # AND the sweeper runs
    swept = world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())
    # THEN the slot came back and went to the job that waited, which runs to its end
    assert swept["reclaimed"] == [{"stage": "train", "job_id": holder["job_id"]}]
    assert swept["granted"]["train"] == [world.job(behind.rsplit(":", 1)[-1])["ticket"]]
    assert world.run(behind)["status"] == "SUCCEEDED"
    assert slots_in_use() == {}


def test_a_job_that_waits_longer_than_max_queue_wait_seconds_fails_and_leaves_the_queue(world, monkeypatch):
    # GIVEN a one-second MaxQueueWaitSeconds, and the one train slot held by a job that never reports back
    limits(monkeypatch, sfm=2, train=1, compress=2)
    world.use_state_machine(monkeypatch, "short-queue", {"MaxQueueWaitSeconds": "1"})
    world.push_images()
    world.sagemaker.script["train"].append(("silent",))
    # WHEN two jobs run
    upload_all(world, ["job-holds", "job-gives-up"])
    failed: list[str] = []

    def one_failed() -> bool:
        failed.extend(job for job in ("job-holds", "job-gives-up") if world.job(job)["status"] == "FAILED")
        return bool(failed)

    wait_for(world, one_failed, "the waiting job to give up")
    # THEN the one that waited failed at train, saying it waited too long for a slot, and left the queue, while
    # the other still holds the slot
    job = world.job(failed[0])
    assert job["failed_stage"] == "train" and "MaxQueueWaitSeconds" in job["failure_reason"], job
    assert waiting("train") == []
    holders = [item["job_id"] for item in slot_items() if item["entry"].startswith("holder#")]
    assert holders == [next(job for job in ("job-holds", "job-gives-up") if job != failed[0])]


def test_retry_of_a_job_cancelled_while_queued_queues_it_again_behind_the_uploads_waiting(world, monkeypatch):
    # GIVEN one train slot held, and a job cancelled while it waited for it
    limits(monkeypatch, sfm=2, train=1, compress=2)
    world.push_images()
    world.sagemaker.script["train"].append(("silent",))
    arns = upload_all(world, ["job-first", "job-second"])
    wait_for(world, lambda: queued(world, "train", 1), "a job to queue for the train slot")
    queued_job = waiting("train")[0]["job_id"]
    old_ticket = world.job(queued_job)["ticket"]
    status, view = call(world, "api_get_job.json", path=f"/jobs/{queued_job}")
    assert status == 200 and view["status"] == "QUEUED" and view["stage"] == "sfm"
    assert view["queue"] == {**view["queue"], "stage": "train", "position": 1, "waiting": 1, "slots": 1}
    assert view["waiting"] == "for a train slot (1 at once): position 1 of 1"
    assert world.job(queued_job)["queue"]["position"] == 1 and "ticket" not in view
    assert call(world, "api_cancel_job.json", path=f"/jobs/{queued_job}/cancel")[0] == 200
    assert waiting("train") == [] and world.job(queued_job)["status"] == "CANCELLED"
    # WHEN it is retried from train
    status, body = call(world, "api_retry_job.json", path=f"/jobs/{queued_job}/retry", body={"from_stage": "train"})
    # THEN it queues again, with a new ticket, and runs once the slot frees
    assert status == 202
    wait_for(world, lambda: queued(world, "train", 1), "the retry to queue")
    assert [item["job_id"] for item in waiting("train")] == [queued_job]
    assert world.job(queued_job)["ticket"] > old_ticket and world.job(queued_job)["status"] == "QUEUED"
    complete_silent_jobs(world, "train", 1)
    holder_arn = next(arn for arn in arns if not arn.endswith(f":{queued_job}"))
    statuses = world.run_all([holder_arn, world.job(queued_job)["execution_arn"]])
    assert set(statuses.values()) == {"SUCCEEDED"}
    assert slots_in_use() == {}


@pytest.mark.parametrize("stage", ["sfm", "train", "compress"])
def test_the_template_bounds_each_stage_with_a_parameter(stage):
    # GIVEN the template WHEN its parameters and the functions' environment are read
    template = harness.load_template()
    name = f"MaxConcurrent{stage.title()}Jobs"
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    # THEN each stage's limit is a parameter (train's default 1: a new account's GPU quota) that reaches every
    # function through the same variable
    assert template["Parameters"][name]["MinValue"] == 1
    assert stage != "train" or template["Parameters"][name]["Default"] == 1
    assert variables[f"MAX_CONCURRENT_{stage.upper()}_JOBS"] == {"Ref": name}


def hold_slot(stage: str, job_id: str, execution: str) -> None:
    """A job RUNNING whose execution ``execution`` holds a slot of ``stage`` (queued, then granted)."""
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import Stage
    from spaceport.cloud.slot_table import Grant, SlotTable, Waiter

    JobsTable(harness.TABLE).claim_for_start(job_id, {}, {"kind": "zip", "key": f"uploads/{job_id}/photos.zip"})
    waiter = Waiter(Stage(stage), len(slot_items()) + 1, job_id, execution, f"token-of-{job_id}", "2026-12-06T00:00:00")
    slots = SlotTable(SLOTS_TABLE, harness.TABLE)
    slots.enqueue(waiter)
    assert slots.grant(waiter, 2, slots.queue_version(Stage(stage))) is Grant.GRANTED


def test_a_failed_lookup_of_one_execution_does_not_stop_the_sweep(world, monkeypatch):
    # GIVEN an sfm slot held by an execution whose DescribeExecution Step Functions keeps throttling (beyond the
    # SDK's retries), a train slot held by an execution that no longer exists but whose release DynamoDB keeps
    # cancelling (conflicts), and a compress slot held by another execution that no longer exists
    prefix = f"arn:aws:states:{REGION}:{harness.ACCOUNT}:execution:spaceport-pipeline:"
    hold_slot("sfm", "job-unknowable", prefix + "job-unknowable")
    hold_slot("train", "job-busy", prefix + "job-busy")
    hold_slot("compress", "job-gone", prefix + "job-gone")

    def answer(call, executionArn: str):
        if executionArn.endswith("job-unknowable"):
            raise harness.aws_error("ThrottlingException", "DescribeExecution", "Rate exceeded")
        return call(executionArn=executionArn)

    harness.intercept(monkeypatch, "stepfunctions", "describe_execution", answer)
    world.dynamo_faults.add("TransactWriteItems", releasing("train"), "conflict", times=5)
    # WHEN the sweeper runs
    swept = world.handlers["sweep_slots"].lambda_handler(
        harness.load_event("sweep_slots_scheduled.json"), harness.FakeContext()
    )
    # THEN it went on past the sfm holder it could not look up and the train slot it could not release (both kept
    # for the next sweep), and reclaimed the compress slot
    assert swept["reclaimed"] == [{"stage": "compress", "job_id": "job-gone"}]
    assert slots_in_use() == {"sfm/count": 1, "sfm/holder#job-unknowable": "job-unknowable",
                              "train/count": 1, "train/holder#job-busy": "job-busy"}  # fmt: skip


def test_a_release_that_keeps_conflicting_is_retried_by_the_state_machine_not_a_failed_job(world):
    # GIVEN DynamoDB cancelling the release of the sfm slot with TransactionConflict five times in a row (as many
    # times as the function itself tries it)
    world.push_images()
    world.dynamo_faults.add("TransactWriteItems", releasing("sfm"), "conflict", times=5)
    # WHEN a job runs
    started = upload_zip(world, "job-busy-release")
    result = world.run(started["execution_arn"])
    # THEN the release failed with a named retryable error, which the state machine retried with backoff, and the
    # job SUCCEEDED, its sfm slot given back
    assert world.dynamo_faults.injected == [("TransactWriteItems", "conflict")] * 5
    assert result["status"] == "SUCCEEDED", world.job("job-busy-release").get("failure_reason")
    releases = [payload for name, payload in world.invocations if name == "release_slot"]
    assert [payload.get("stage") for payload in releases][:2] == ["sfm", "sfm"]
    assert slots_in_use() == {}


def test_a_failed_slot_write_after_the_sagemaker_job_is_created_does_not_fail_the_stage(world):
    # GIVEN a training job SageMaker refuses once for quota (the stage's grants pause), then creates and runs, and
    # DynamoDB throttling, past the SDK's retries, the write that lifts the pause once it is created
    world.push_images()
    world.sagemaker.script["train"].extend([("capacity",), ("silent",)])

    def lifting_the_pause(params) -> bool:
        values = params.get("ExpressionAttributeValues", {})
        return "quota_wait" in params.get("UpdateExpression", "") and values.get(":waiting") == {"BOOL": False}

    world.dynamo_faults.add("UpdateItem", lifting_the_pause, "throttle", times=5)  # the SDK tries 5 times
    # WHEN the job runs until it trains
    started = upload_zip(world, "job-busy-unpause")
    wait_for(world, lambda: len(world.dynamo_faults.injected) == 5, "the lifting of the pause to fail")
    wait_for(world, lambda: world.job("job-busy-unpause")["stages"]["train"].get("sagemaker_jobs"), "the job")
    holder = next(item for item in slot_items() if item["pool"] == "train" and item["entry"].startswith("holder#"))
    # THEN the training job that was created runs on, its stage not failed, though its slot still pauses the grants
    assert [fault for _, fault in world.dynamo_faults.injected] == ["throttle"] * 5
    assert holder["quota_wait"] is True and world.job("job-busy-unpause")["status"] == "RUNNING"
    # AND the sweeper lifts the pause, since the stage is no longer refused
    sweep_event = harness.load_event("sweep_slots_scheduled.json")
    world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())
    assert not next(item for item in slot_items() if item["entry"] == holder["entry"])["quota_wait"]
    # AND the job SUCCEEDED without its training job being stopped
    complete_silent_jobs(world, "train", 1)
    result = world.run(started["execution_arn"])
    assert result["status"] == "SUCCEEDED", world.job("job-busy-unpause").get("failure_reason")
    created = world.job("job-busy-unpause")["stages"]["train"]["sagemaker_jobs"]  # the attempts SageMaker created
    assert len(created) == 1 and created[0] not in world.sagemaker.stopped


def test_an_unexpected_error_while_granting_never_fails_the_release(world, monkeypatch):
    # GIVEN a train slot held by one job and another waiting for it, and granting failing in a way nobody expected
    from spaceport.cloud.slot_table import SlotTable

    prefix = f"arn:aws:states:{REGION}:{harness.ACCOUNT}:execution:spaceport-pipeline:"
    hold_slot("train", "job-done", prefix + "job-done")
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import Stage
    from spaceport.cloud.slot_table import Waiter

    JobsTable(harness.TABLE).claim_for_start("job-next", {}, {"kind": "zip", "key": "uploads/job-next/photos.zip"})
    SlotTable(SLOTS_TABLE, harness.TABLE).enqueue(
        Waiter(Stage.TRAIN, 9, "job-next", prefix + "job-next", "token-of-job-next", "2026-12-06T00:00:00")
    )

    def broken_grant(self, waiter, limit, queue_version):
        raise KeyError("CancellationReasons")

    monkeypatch.setattr(SlotTable, "grant", broken_grant)
    # WHEN the holder's stage gives its slot back
    payload = {"job_id": "job-done", "stage": "train", "execution": prefix + "job-done"}
    result = world.handlers["release_slot"].lambda_handler(payload, harness.FakeContext())
    # THEN the release went through (the stage that succeeded stays a success), and the next job still waits for a
    # later grant (the sweeper's)
    assert result["released"] == ["train"] and result["granted"] == {"train": []}
    assert slots_in_use() == {"train/waiting#000000000009": "job-next"}


def test_a_retried_wait_whose_grant_is_throttled_is_resumed_by_the_sweeper_with_its_own_token(world, monkeypatch):
    # GIVEN a job granted its sfm slot by its wait, whose invoke then fails (a Lambda service error after the
    # function ran), so that the retried wait, with a new token, finds the slot already its own; and Step Functions
    # throttling the SendTaskSuccess of that new token
    from spaceport.cloud import slots

    world.push_images()
    world.errors_after_handler["wait_for_slot"].append("ServiceException")
    monkeypatch.setattr(slots, "RESEND_AFTER_S", 0)
    sends: list[str] = []

    def answer(call, **kwargs):
        sends.append(kwargs["taskToken"])
        if len(sends) == 2:
            raise harness.aws_error("ThrottlingException", "SendTaskSuccess")
        return call(**kwargs)

    harness.intercept(monkeypatch, "stepfunctions", "send_task_success", answer)
    started = upload_zip(world, "job-retried-wait")
    wait_for(world, lambda: len(sends) >= 2, "the retried wait's send")
    results = [payload for name, payload in world.invocations if name == "wait_for_slot"]
    assert len(results) == 2 and sends[0] != sends[1]
    # WHEN the sweeper sends the grant again
    sweep_event = harness.load_event("sweep_slots_scheduled.json")
    swept = world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())
    # THEN it sent the retried wait's own token, which resumed the execution: the job ran to its end
    assert swept["resent"] == [{"stage": "sfm", "job_id": "job-retried-wait"}] and sends[2] == sends[1]
    assert world.run(started["execution_arn"], timeout_s=20)["status"] == "SUCCEEDED"
    assert slots_in_use() == {}


def test_a_job_waiting_for_a_larger_instances_quota_pauses_only_the_jobs_planned_for_that_instance(world, monkeypatch):
    # GIVEN four sfm slots on ml.c5.xlarge up to ml.c5.9xlarge, jobs of six photos sized to ml.c5.9xlarge (their
    # needs made large) and jobs of four photos to ml.c5.xlarge, and no quota for ml.c5.9xlarge yet
    from spaceport.cloud import stage_resources

    limits(monkeypatch, sfm=4, train=4, compress=4, SFM_INSTANCE_TYPE="ml.c5.xlarge",
           SFM_LARGEST_INSTANCE_TYPE="ml.c5.9xlarge")  # fmt: skip
    sized = stage_resources.sfm_needs
    large = 20 * stage_resources.GIB

    def needs(photos):
        return stage_resources.StageNeeds(0, 0, 1, large, 0) if len(photos) == 6 else sized(photos)

    monkeypatch.setattr(stage_resources, "sfm_needs", needs)
    world.push_images()
    world.sagemaker.instance_quota["ml.c5.9xlarge"] = 0
    s3 = boto3.client("s3", region_name=REGION)

    def upload(job_id: str, photos: int) -> str:
        s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/photos.zip", Body=photo_zip(photos))
        return world.deliver_upload(f"uploads/{job_id}/photos.zip")["execution_arn"]

    arns = [upload("job-large-first", 6)]
    wait_for(world, lambda: world.sagemaker.refused, "SageMaker to refuse the large job for its instance's quota")
    # WHEN another large job and then two small ones reach the sfm queue while it waits for that quota
    arns += [upload("job-large-second", 6), upload("job-small-a", 4), upload("job-small-b", 4)]
    # THEN the small ones get slots and their sfm jobs run on ml.c5.xlarge, though queued behind the second large
    # one, which waits (a slot free) for the quota its instance type shares with the first
    small = {"job-small-a", "job-small-b"}
    wait_for(world, lambda: small <= set(world.sagemaker.started["sfm"]), "the small jobs' sfm to start", 30)
    assert [item["job_id"] for item in waiting("sfm")] == ["job-large-second"]
    assert {name: world.job(name)["resources"]["sfm"]["instance_type"] for name in ("job-large-second", *small)} == {
        "job-large-second": "ml.c5.9xlarge", "job-small-a": "ml.c5.xlarge", "job-small-b": "ml.c5.xlarge"
    }  # fmt: skip
    assert "job-large-second" not in world.sagemaker.started["sfm"]
    # AND once the quota allows one ml.c5.9xlarge, every job runs to its end
    world.sagemaker.instance_quota["ml.c5.9xlarge"] = 1
    assert set(world.run_all(arns).values()) == {"SUCCEEDED"}
    assert slots_in_use() == {}


def test_a_job_that_joins_the_queue_while_a_grant_is_under_way_is_not_skipped(world, monkeypatch):
    # GIVEN one free train slot and tickets 4 and 6 waiting for it; Step Functions accepting every grant's token
    from spaceport.cloud.jobs import JobsTable
    from spaceport.cloud.models import Stage
    from spaceport.cloud.settings import slot_settings
    from spaceport.cloud.slot_table import SlotTable, Waiter
    from spaceport.cloud.slots import grant_free_slots

    limits(monkeypatch, sfm=2, train=1, compress=2)
    prefix = f"arn:aws:states:{REGION}:{harness.ACCOUNT}:execution:spaceport-pipeline:"
    table = SlotTable(SLOTS_TABLE, harness.TABLE)

    def waiter(ticket: int) -> Waiter:
        job_id = f"job-ticket-{ticket}"
        JobsTable(harness.TABLE).claim_for_start(job_id, {}, {"kind": "zip", "key": f"uploads/{job_id}/photos.zip"})
        return Waiter(Stage.TRAIN, ticket, job_id, prefix + job_id, f"token-{ticket}", "2026-12-06T00:00:00")

    table.enqueue(waiter(4))
    table.enqueue(waiter(6))
    sent: list[str] = []
    harness.intercept(
        monkeypatch, "stepfunctions", "send_task_success", lambda call, **kwargs: sent.append(kwargs["taskToken"])
    )
    # WHEN ticket 1 joins the queue just after a grant has read the queue, before the grant is written (its wait
    # ran a moment later than the grant's caller)
    read_queue, joined = SlotTable.waiting, []

    def queue_read_then_joined(self, stage):
        entries = list(read_queue(self, stage))
        if not joined:
            joined.append(1)
            table.enqueue(waiter(1))
        yield from entries

    monkeypatch.setattr(SlotTable, "waiting", queue_read_then_joined)
    granted = grant_free_slots(slot_settings(), Stage.TRAIN)
    # THEN the slot went to ticket 1, the lowest waiting when the grant was written, and 4 and 6 still wait
    assert granted == [1] and sent == ["token-1"]
    assert [item["ticket"] for item in waiting("train")] == [4, 6]


def test_a_cancel_whose_slot_release_keeps_conflicting_still_cancels_and_the_sweeper_cleans_up(world, monkeypatch):
    # GIVEN one train slot held, a job waiting for it, and DynamoDB cancelling the cancel's release of that job's
    # train slot five times in a row (the release is part of every cancel: the job holds none here)
    limits(monkeypatch, sfm=2, train=1, compress=2)
    world.push_images()
    world.sagemaker.script["train"].append(("silent",))
    upload_all(world, ["job-holding", "job-to-cancel"])
    wait_for(world, lambda: queued(world, "train", 1), "a job to queue for the train slot")
    queued_job = waiting("train")[0]["job_id"]
    world.dynamo_faults.add("TransactWriteItems", one_item(releasing("train")), "conflict", times=5)
    # WHEN it is cancelled
    status, view = call(world, "api_cancel_job.json", path=f"/jobs/{queued_job}/cancel")
    # THEN the cancel answers and took effect, though its queue place could not be given back yet
    assert status == 200 and view["status"] == "CANCELLED" and world.job(queued_job)["status"] == "CANCELLED"
    assert world.dynamo_faults.injected == [("TransactWriteItems", "conflict")] * 5
    assert [item["job_id"] for item in waiting("train")] == [queued_job]
    # AND the sweeper removes that place, its execution having ended (stopped by the cancel: at once on AWS, with the
    # harness's help in moto)
    execution = world.job(queued_job)["execution_arn"]
    world.kill(execution)
    wait_for(world, lambda: world.sfn.describe_execution(executionArn=execution)["status"] != "RUNNING", "the stop")
    swept = world.handlers["sweep_slots"].lambda_handler(
        harness.load_event("sweep_slots_scheduled.json"), harness.FakeContext()
    )
    assert swept["dropped"] == [{"stage": "train", "job_id": queued_job}] and waiting("train") == []


def test_a_stale_send_of_an_old_token_leaves_a_holder_that_took_a_new_token_to_be_resent(world, monkeypatch):
    # GIVEN an sfm slot held by a running execution whose grant, sent with its wait's token T1, did not go through
    # (throttled): the sweeper reads the holder and sends T1 again
    from spaceport.cloud import slots
    from spaceport.cloud.models import Stage
    from spaceport.cloud.slot_table import SlotTable, Waiter

    prefix = f"arn:aws:states:{REGION}:{harness.ACCOUNT}:execution:spaceport-pipeline:"
    execution = prefix + "job-new-token"
    hold_slot("sfm", "job-new-token", execution)
    first = next(item for item in slot_items() if item["entry"].startswith("holder#"))
    monkeypatch.setattr(slots, "RESEND_AFTER_S", 0)
    harness.intercept(monkeypatch, "stepfunctions", "describe_execution", lambda call, **kwargs: {"status": "RUNNING"})
    new = Waiter(Stage.SFM, first["ticket"], "job-new-token", execution, "token-T2", "2026-12-06T00:00:00")
    sends: list[str] = []

    def answer(call, taskToken: str, output: str):
        sends.append(taskToken)
        if taskToken == first["token"]:
            # WHEN, while that send is under way, the wait's retry (its first invoke failed after the grant) hands
            # the slot over to its new token T2, whose own send Step Functions throttles; and T1's send then comes
            # back TaskTimedOut (the execution no longer waits on T1)
            assert SlotTable(SLOTS_TABLE, harness.TABLE).hand_over(new)
            raise harness.aws_error("TaskTimedOut", "SendTaskSuccess", "Task Timed Out")
        return {}

    harness.intercept(monkeypatch, "stepfunctions", "send_task_success", answer)
    sweep_event = harness.load_event("sweep_slots_scheduled.json")
    world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())
    # THEN the holder, now carrying T2, is not marked resumed by T1's stale answer
    holder = next(item for item in slot_items() if item["entry"] == first["entry"])
    assert holder["token"] == "token-T2" and holder["resumed"] is False
    # AND the next sweep sends T2, which the execution waits on, and only then is the holder resumed
    swept = world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())
    assert swept["resent"] == [{"stage": "sfm", "job_id": "job-new-token"}]
    assert sends == [first["token"], "token-T2"]
    assert next(item for item in slot_items() if item["entry"] == first["entry"])["resumed"] is True


def test_a_single_item_write_that_meets_a_transaction_is_retried_not_a_failed_job(world):
    # GIVEN a job granted its sfm slot by its wait, whose invoke then fails (a Lambda service error after the
    # function ran), so that the retried wait finds the slot its own and hands it over to its new token; and
    # DynamoDB refusing that hand-over once with TransactionConflictException (another transaction was changing
    # the holder; the SDK does not retry it)
    world.push_images()
    world.errors_after_handler["wait_for_slot"].append("ServiceException")

    def handing_over(params) -> bool:
        return params.get("TableName") == SLOTS_TABLE and "resumed = :no" in params.get("UpdateExpression", "")

    world.dynamo_faults.add("UpdateItem", handing_over, "conflict")
    # WHEN the job runs
    started = upload_zip(world, "job-conflicting-hand-over")
    result = world.run(started["execution_arn"])
    # THEN the wait failed with the named retryable error, which the state machine retried, and the job SUCCEEDED
    assert world.dynamo_faults.injected == [("UpdateItem", "conflict")]
    errors = [answer.get("errorType") for name, answer in world.answers if name == "wait_for_slot"]
    assert errors[:3] == [None, "SlotTableBusyError", None]
    assert result["status"] == "SUCCEEDED", world.job("job-conflicting-hand-over").get("failure_reason")
    assert slots_in_use() == {}


def test_a_conflicting_dequeue_on_the_failure_path_is_retried_and_the_freed_slot_still_granted(world, monkeypatch):
    # GIVEN one sfm slot, held by a job whose sfm job runs until told, and a second job waiting for it
    limits(monkeypatch, sfm=1, train=2, compress=2)
    world.push_images()
    world.sagemaker.job_script[("job-failing", "sfm")] = deque([("silent",)])
    failing = upload_all(world, ["job-failing"])[0]
    wait_for(world, lambda: "job-failing" in world.sagemaker.started["sfm"], "the first job's sfm to start")
    behind = upload_all(world, ["job-behind"])[0]
    wait_for(world, lambda: queued(world, "sfm", 1), "the second job to queue for the sfm slot")
    # AND DynamoDB refusing the failure path's removal of the failing job's queue places once with
    # TransactionConflictException
    world.dynamo_faults.add("DeleteItem", lambda params: params.get("TableName") == SLOTS_TABLE, "conflict")
    # WHEN the first job's sfm fails
    name = world.job("job-failing")["stages"]["sfm"]["sagemaker_job"]
    world.sagemaker.outcomes[name] = ("fail", "sfm: no features found")
    world.sagemaker.ended("sfm", name)
    world.handlers["complete_stage"].lambda_handler(world.state_change_event("sfm", name), harness.FakeContext())
    # THEN it FAILED with its own reason, its release retried by the state machine (a named retryable error)
    assert world.run(failing)["status"] == "FAILED"
    assert "no features found" in world.job("job-failing")["failure_reason"]
    assert world.dynamo_faults.injected == [("DeleteItem", "conflict")]
    errors = [answer.get("errorType") for name, answer in world.answers_of("job-failing") if name == "release_slot"]
    assert errors == ["SlotTableBusyError", None]
    # AND the slot its first try freed went to the job behind it (without the sweeper), which runs to its end
    assert world.run(behind, timeout_s=30)["status"] == "SUCCEEDED"
    assert slots_in_use() == {}


def test_a_holder_the_slot_count_does_not_account_for_is_skipped_by_the_sweep_not_the_end_of_it(world):
    # GIVEN an sfm slot held by an execution that no longer exists while the sfm count says no slot is held (the
    # table contradicts itself: no release can go through), and a compress slot held by another ended execution
    prefix = f"arn:aws:states:{REGION}:{harness.ACCOUNT}:execution:spaceport-pipeline:"
    hold_slot("sfm", "job-uncounted", prefix + "job-uncounted")
    hold_slot("compress", "job-gone", prefix + "job-gone")
    boto3.resource("dynamodb", region_name=REGION).Table(SLOTS_TABLE).put_item(
        Item={"pool": "sfm", "entry": "count", "held": 0}
    )
    sweep_event = harness.load_event("sweep_slots_scheduled.json")
    # WHEN the sweeper runs, twice (as the schedule would)
    swept = [world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext()) for _ in range(2)]
    # THEN each sweep skipped the holder it cannot release (kept, for a person to look at) and went on: the
    # compress slot was reclaimed
    assert swept[0]["reclaimed"] == [{"stage": "compress", "job_id": "job-gone"}] and swept[1]["reclaimed"] == []
    assert slots_in_use() == {"sfm/holder#job-uncounted": "job-uncounted"}


def test_a_throttled_job_record_write_or_read_after_the_sagemaker_job_is_created_does_not_fail_the_stage(world):
    # GIVEN a training job SageMaker refuses once for quota, then creates and runs; and DynamoDB throttling, past
    # the SDK's retries, start_stage's bookkeeping once the job exists: the write that clears the stage's quota
    # refusal, and the read of the job's status (was it cancelled meanwhile?)
    world.push_images()
    world.sagemaker.script["train"].extend([("capacity",), ("silent",)])

    def clearing_the_refusal(params) -> bool:
        return "REMOVE #stages.#stage.quota_refused_since" in params.get("UpdateExpression", "")

    def reading_the_job_once_created(params) -> bool:
        return params.get("TableName") == harness.TABLE and bool(world.sagemaker.started["train"])

    world.dynamo_faults.add("UpdateItem", clearing_the_refusal, "throttle", times=5)  # the SDK tries 5 times
    world.dynamo_faults.add("GetItem", reading_the_job_once_created, "throttle", times=5)
    # WHEN the job runs until it trains
    started = upload_zip(world, "job-busy-record")
    wait_for(world, lambda: len(world.dynamo_faults.injected) == 10, "the bookkeeping to fail")
    wait_for(world, lambda: world.job("job-busy-record")["stages"]["train"].get("sagemaker_jobs"), "the job")
    # THEN the training job that was created runs on, its stage not failed, and its slot no longer pauses grants
    assert sorted(world.dynamo_faults.injected) == [("GetItem", "throttle")] * 5 + [("UpdateItem", "throttle")] * 5
    holder = next(item for item in slot_items() if item["pool"] == "train" and item["entry"].startswith("holder#"))
    assert holder["quota_wait"] is False and world.job("job-busy-record")["status"] == "RUNNING"
    # AND the job SUCCEEDED without its training job being stopped
    complete_silent_jobs(world, "train", 1)
    result = world.run(started["execution_arn"])
    assert result["status"] == "SUCCEEDED", world.job("job-busy-record").get("failure_reason")
    created = world.job("job-busy-record")["stages"]["train"]["sagemaker_jobs"]
    assert len(created) == 1 and created[0] not in world.sagemaker.stopped


def test_a_job_refused_for_another_instance_than_planned_pauses_the_jobs_planned_for_the_refused_one(
    world, monkeypatch
):
    # GIVEN four sfm slots on ml.c5.xlarge up to ml.c5.9xlarge; a job planned at validate for ml.c5.9xlarge that
    # starts on ml.c5.2xlarge (its stage sized again at start, as after a redeploy), where there is no quota yet;
    # jobs of five photos planned for ml.c5.2xlarge and of four for ml.c5.xlarge
    from spaceport.cloud import pipeline, stage_resources

    limits(monkeypatch, sfm=4, train=4, compress=4, SFM_INSTANCE_TYPE="ml.c5.xlarge",
           SFM_LARGEST_INSTANCE_TYPE="ml.c5.9xlarge")  # fmt: skip
    sized, gib = stage_resources.sfm_needs, stage_resources.GIB
    memory = {6: 20 * gib, 5: 6 * gib}  # twice over: ml.c5.9xlarge (72 GiB), ml.c5.2xlarge (16 GiB)

    def needs(photos):
        return stage_resources.StageNeeds(0, 0, 1, memory[len(photos)], 0) if len(photos) in memory else sized(photos)

    planned_start = pipeline.at_start

    def at_start(stage, recorded, stage_limits):
        chosen = planned_start(stage, recorded, stage_limits)
        return {**chosen, "instance_type": "ml.c5.2xlarge"} if chosen["instance_type"] == "ml.c5.9xlarge" else chosen

    monkeypatch.setattr(stage_resources, "sfm_needs", needs)
    monkeypatch.setattr(pipeline, "at_start", at_start)
    world.push_images()
    world.sagemaker.instance_quota["ml.c5.2xlarge"] = 0
    s3 = boto3.client("s3", region_name=REGION)

    def upload(job_id: str, photos: int) -> str:
        s3.put_object(Bucket=BUCKET, Key=f"uploads/{job_id}/photos.zip", Body=photo_zip(photos))
        return world.deliver_upload(f"uploads/{job_id}/photos.zip")["execution_arn"]

    arns = [upload("job-resized", 6)]
    wait_for(world, lambda: world.sagemaker.refused, "SageMaker to refuse the job for ml.c5.2xlarge's quota")
    # WHEN a job planned for ml.c5.2xlarge and then a small one reach the sfm queue while it waits for that quota
    arns += [upload("job-mid", 5), upload("job-small", 4)]
    # THEN the small one gets a slot and runs, while the one planned for the refused instance type waits in the
    # queue (a slot free) rather than being granted one and refused in turn
    wait_for(world, lambda: "job-small" in world.sagemaker.started["sfm"], "the small job's sfm to start", 30)
    assert world.job("job-mid")["resources"]["sfm"]["instance_type"] == "ml.c5.2xlarge"
    assert [item["job_id"] for item in waiting("sfm")] == ["job-mid"]
    assert all("job-resized" in name for name in world.sagemaker.refused), world.sagemaker.refused
    holder = next(item for item in slot_items() if item.get("job_id") == "job-resized" and "holder#" in item["entry"])
    assert holder["quota_wait"] is True and holder["quota_instance"] == "ml.c5.2xlarge"
    # AND once the quota allows one ml.c5.2xlarge, every job runs to its end
    world.sagemaker.instance_quota["ml.c5.2xlarge"] = 1
    assert set(world.run_all(arns).values()) == {"SUCCEEDED"}
    assert slots_in_use() == {}


def test_a_lambda_client_execution_timeout_is_retried_like_the_other_lambda_service_errors(world):
    # GIVEN the Lambda service answering the release of the sfm slot with ClientExecutionTimeoutException (one of
    # the service errors AWS's Step Functions guide says to retry), after the function ran
    world.push_images()
    world.errors_after_handler["release_slot"].append("ClientExecutionTimeoutException")
    # WHEN a job runs
    started = upload_zip(world, "job-lambda-timeout")
    result = world.run(started["execution_arn"])
    # THEN the state machine retried the release (idempotent: the retry finds the slot given back) and the job
    # SUCCEEDED
    assert result["status"] == "SUCCEEDED", world.job("job-lambda-timeout").get("failure_reason")
    releases = [payload.get("stage") for name, payload in world.invocations if name == "release_slot"]
    assert releases[:2] == ["sfm", "sfm"] and slots_in_use() == {}
    # AND every Lambda task of the state machine retries it with the other four
    transient = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                 "Lambda.TooManyRequestsException", "Lambda.ClientExecutionTimeoutException"}  # fmt: skip
    definition = json.loads(world.definition)
    tasks = {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}
    lambda_tasks = {name: state for name, state in tasks.items() if "lambda:invoke" in state["Resource"]}
    assert len(lambda_tasks) == 13
    for name, state in lambda_tasks.items():
        assert any(set(retry["ErrorEquals"]) == transient for retry in state["Retry"]), name
