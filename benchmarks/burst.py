"""Burst: 100 uploads at once against a GPU quota of two, in simulated time.

The slots are the real code: ``spaceport.cloud.slots.wait_for_slot`` and ``release_slot`` (the Lambdas' logic) with
their DynamoDB transactions, on the template's tables in moto. What is simulated, on a discrete-event clock:

- Step Functions: an execution walks the state machine's order (validate, then per stage: wait for a slot, run,
  release); ``SendTaskSuccess`` on a slot's task token starts that job's stage at the current simulated time.
- SageMaker: each stage runs for the seconds the local benchmark measured (``results.json``, suite ``local``, preset
  default); a training job is refused with ResourceLimitExceeded while the GPU quota's jobs run. A refused stage is
  retried as the state machine's retrier for ``SageMakerQuotaExceededError`` says (read from
  ``statemachine/pipeline.asl.json``) until ``QuotaWaitSeconds`` (the template's default) has passed.
- Before slots, every execution started its stages at once and ResourceLimitExceeded went to the capacity retrier
  (the same file's ``SageMakerCapacityUnavailableError`` retrier: 5 retries, FULL jitter, here with a fixed seed),
  after which the job failed. That row is this model, not the old code.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import statistics
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import ROOT, SuiteResult, Table, Target, Workspace

JOBS = 100
GPU_QUOTA = 2
STAGES = ("sfm", "train", "compress")
ASL = ROOT / "statemachine" / "pipeline.asl.json"
REGION = "us-east-1"
TABLES = {"JobsTable": "spaceport-jobs", "SlotsTable": "spaceport-slots"}
PIPELINE = f"arn:aws:states:{REGION}:123456789012:execution:spaceport-pipeline"


@dataclass(frozen=True)
class Scenario:
    """One row: how many slots each stage has (None: no slots, every job starts at once)."""

    label: str
    limits: dict[str, int] | None
    quota: int = GPU_QUOTA


@dataclass
class JobTrace:
    ticket: int
    asked: dict[str, float] = field(default_factory=dict)
    granted: dict[str, float] = field(default_factory=dict)
    quota_wait: float = 0.0
    first_refusal: float | None = None
    refusals: int = 0
    finished: float | None = None
    failed: str | None = None


class Clock:
    """Discrete events in simulated seconds; events at the same time run in the order they were scheduled."""

    def __init__(self) -> None:
        self.now = 0.0
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def at(self, delay: float, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, action))

    def run(self) -> None:
        while self._queue:
            self.now, _, action = heapq.heappop(self._queue)
            action()


def stage_seconds(results: dict[str, Any]) -> dict[str, float]:
    """Per-stage seconds of the local run (preset default) in results.json."""
    runs = results.get("local", {}).get("figures", {}).get("runs", [])
    run = next((run for run in runs if run.get("preset") == "default" and run.get("stages")), None)
    if run is None:
        raise RuntimeError(
            "results.json has no local run of the default preset: run `python -m benchmarks --only local`"
        )
    return {stage: float(run["stages"][stage]) for stage in ("validate", *STAGES)}


def retrier(error: str) -> dict[str, Any]:
    """The train stage's Retry entry for ``error`` in the state machine."""
    retries = json.loads(ASL.read_text(encoding="utf-8"))["States"]["Train the splat"]["Retry"]
    return next(entry for entry in retries if error in entry["ErrorEquals"])


def backoff(entry: dict[str, Any], attempt: int, jitter: random.Random | None) -> float:
    """Step Functions' wait before retry ``attempt`` (0 for the first), with FULL jitter drawn from ``jitter``."""
    delay = min(entry["IntervalSeconds"] * entry.get("BackoffRate", 2.0) ** attempt, entry.get("MaxDelaySeconds", 1e9))
    return jitter.uniform(0, delay) if jitter and entry.get("JitterStrategy") == "FULL" else delay


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))] if ordered else 0.0


@contextmanager
def moto_account() -> Any:
    """The template's two tables in moto, the cloud package pointed at them; environment restored after."""
    from moto import mock_aws

    from spaceport.cloud import aws

    saved = {key: os.environ.get(key) for key in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_DEFAULT_REGION=REGION, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    try:
        with mock_aws():
            aws.reset()
            yield
    finally:
        aws.reset()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def load_template() -> dict[str, Any]:
    """template.yaml, its CloudFormation tags (!Ref, !Sub, ...) read as nothing: only literal values are needed."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load((ROOT / "template.yaml").read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506


def create_tables() -> None:
    import boto3

    template = load_template()
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    for logical_id, name in TABLES.items():
        props = template["Resources"][logical_id]["Properties"]
        extra = {"GlobalSecondaryIndexes": props["GlobalSecondaryIndexes"]} if "GlobalSecondaryIndexes" in props else {}
        dynamodb.create_table(
            TableName=name,
            BillingMode=props["BillingMode"],
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            **extra,
        )


class Burst:
    """One scenario's burst, simulated."""

    def __init__(self, scenario: Scenario, seconds: dict[str, float], quota_wait_s: int) -> None:
        self.scenario, self.seconds, self.quota_wait_s = scenario, seconds, quota_wait_s
        self.clock = Clock()
        self.jobs: dict[str, JobTrace] = {}
        self.running = {stage: 0 for stage in STAGES}
        self.peak = {stage: 0 for stage in STAGES}
        self.peak_held = {stage: 0 for stage in STAGES}
        self.grants: dict[str, list[tuple[int, list[int]]]] = {stage: [] for stage in STAGES}
        self.quota_retry = retrier("SageMakerQuotaExceededError")
        self.capacity_retry = retrier("SageMakerCapacityUnavailableError")
        self.jitter = random.Random(20261203)  # noqa: S311 (a simulation's reproducible draw, not a secret)

    # ------------------------------------------------------------ the account, with the real slot code

    def settings(self) -> Any:
        from spaceport.cloud.settings import SlotSettings

        limits = self.scenario.limits or {stage: 1 for stage in STAGES}
        return SlotSettings.model_validate(
            {
                "JOBS_TABLE_NAME": TABLES["JobsTable"],
                "DATA_BUCKET_NAME": "spaceport-data",
                "NOTIFICATION_TOPIC_ARN": f"arn:aws:sns:{REGION}:123456789012:spaceport",
                "EVENT_BUS_NAME": "default",
                "SLOTS_TABLE_NAME": TABLES["SlotsTable"],
                **{f"MAX_CONCURRENT_{stage.upper()}_JOBS": str(limits[stage]) for stage in STAGES},
            }
        )

    def run(self) -> dict[str, Any]:
        from spaceport.cloud import aws

        with moto_account():
            create_tables()
            real_client = aws.client
            step_functions = _StepFunctions(self)
            aws.client = lambda service: step_functions if service == "stepfunctions" else real_client(service)  # type: ignore[assignment]
            try:
                self._upload_all()
                self.clock.run()
                leftover = self._slots_left()
            finally:
                aws.client = real_client  # type: ignore[assignment]
        return self._figures(leftover)

    def _upload_all(self) -> None:
        from spaceport.cloud.jobs import JobsTable
        from spaceport.cloud.slot_table import SlotTable

        settings = self.settings()
        table, slots = JobsTable(settings.jobs_table), SlotTable(settings.slots_table, settings.jobs_table)
        for index in range(JOBS):
            job_id = f"burst-{index:03d}"
            ticket = slots.next_ticket()
            table.claim_for_start(
                job_id, {"preset": "default"}, {"kind": "zip", "key": f"uploads/{job_id}/p.zip"}, ticket
            )
            self.jobs[job_id] = JobTrace(ticket=ticket)
            self.clock.at(self.seconds["validate"], lambda job_id=job_id: self._after_validation(job_id))

    def _after_validation(self, job_id: str) -> None:
        from spaceport.cloud.jobs import JobsTable
        from spaceport.cloud.models import Stage

        JobsTable(TABLES["JobsTable"]).begin_stage(job_id, Stage.VALIDATE)
        self._ask(job_id, "sfm")

    def _ask(self, job_id: str, stage: str) -> None:
        """The execution enters "Wait for a <stage> slot" (or, without slots, the stage itself)."""
        from spaceport.cloud.models import SlotRequest
        from spaceport.cloud.slots import wait_for_slot

        self.jobs[job_id].asked[stage] = self.clock.now
        if self.scenario.limits is None:
            self._granted(job_id, stage)
            return
        request = SlotRequest(job_id=job_id, stage=stage, execution=f"{PIPELINE}:{job_id}", token=f"{job_id}|{stage}")
        wait_for_slot(self.settings(), request)

    def _granted(self, job_id: str, stage: str) -> None:
        self.jobs[job_id].granted[stage] = self.clock.now
        self._start(job_id, stage, attempt=0)

    def _start(self, job_id: str, stage: str, attempt: int) -> None:
        """The stage's starter calls Create*Job: SageMaker refuses a training job while the quota's jobs run."""
        trace = self.jobs[job_id]
        if stage == "train" and self.running["train"] >= self.scenario.quota:
            trace.refusals += 1
            if trace.first_refusal is None:
                trace.first_refusal = self.clock.now
            if self.scenario.limits is None:  # before: the capacity retrier, then the job fails
                if attempt >= self.capacity_retry["MaxAttempts"]:
                    return self._fail(job_id, "ResourceLimitExceeded after the capacity retries")
                delay = backoff(self.capacity_retry, attempt, self.jitter)
            else:
                self._note_quota_wait(job_id, stage, waiting=True)
                if self.clock.now - trace.first_refusal >= self.quota_wait_s:
                    return self._fail(job_id, "QuotaWaitSeconds ran out")
                delay = backoff(self.quota_retry, attempt, None)
            self.clock.at(delay, lambda: self._start(job_id, stage, attempt + 1))
            return
        self.running[stage] += 1
        if trace.first_refusal is not None and stage == "train":
            trace.quota_wait = max(trace.quota_wait, self.clock.now - trace.first_refusal)
            trace.first_refusal = None
            if self.scenario.limits is not None:
                self._note_quota_wait(job_id, stage, waiting=False)
        self.peak[stage] = max(self.peak[stage], self.running[stage])
        self.clock.at(self.seconds[stage], lambda: self._end(job_id, stage))

    def _note_quota_wait(self, job_id: str, stage: str, waiting: bool) -> None:
        """What the stage's starter does on ResourceLimitExceeded, and once its job starts after one."""
        from spaceport.cloud.models import Stage
        from spaceport.cloud.slots import note_quota_wait

        note_quota_wait(self.settings(), Stage(stage), f"{PIPELINE}:{job_id}", waiting)

    def _end(self, job_id: str, stage: str) -> None:
        """SageMaker's end event; the execution then runs "Release the <stage> slot" and goes on."""
        from spaceport.cloud.models import ReleaseSlotInput
        from spaceport.cloud.slots import release_slot

        self.running[stage] -= 1
        if self.scenario.limits is not None:
            release_slot(
                self.settings(), ReleaseSlotInput(job_id=job_id, stage=stage, execution=f"{PIPELINE}:{job_id}")
            )
        following = STAGES.index(stage) + 1
        if following < len(STAGES):
            self._ask(job_id, STAGES[following])
        else:
            self.jobs[job_id].finished = self.clock.now

    def _fail(self, job_id: str, reason: str) -> None:
        """The Catch path: "Release the job's slots", then the job is FAILED."""
        from spaceport.cloud.models import ReleaseSlotInput
        from spaceport.cloud.slots import release_slot

        self.jobs[job_id].failed = reason
        if self.scenario.limits is not None:
            release_slot(self.settings(), ReleaseSlotInput(job_id=job_id, execution=f"{PIPELINE}:{job_id}"))

    def note_grant(self, token: str) -> None:
        """A SendTaskSuccess on a slot's token: record the queue as it stood, and start the stage now."""
        from spaceport.cloud.models import Stage
        from spaceport.cloud.slot_table import SlotTable

        job_id, stage = token.split("|")
        slots = SlotTable(TABLES["SlotsTable"], TABLES["JobsTable"])
        waiting = [waiter.ticket for waiter in slots.waiting(Stage(stage))]
        self.grants[stage].append((self.jobs[job_id].ticket, waiting))
        self.peak_held[stage] = max(self.peak_held[stage], slots.held(Stage(stage)))
        self.clock.at(0.0, lambda: self._granted(job_id, stage))

    def _slots_left(self) -> int:
        from spaceport.cloud.models import Stage
        from spaceport.cloud.slot_table import SlotTable

        slots = SlotTable(TABLES["SlotsTable"], TABLES["JobsTable"])
        return sum(slots.held(Stage(stage)) + sum(1 for _ in slots.waiting(Stage(stage))) for stage in STAGES)

    def _figures(self, leftover: int) -> dict[str, Any]:
        succeeded = [trace for trace in self.jobs.values() if trace.finished is not None]
        waits = [sum(t.granted[s] - t.asked[s] for s in STAGES) for t in succeeded]
        train_waits = [t.granted["train"] - t.asked["train"] for t in succeeded]
        in_order = all(ticket == min([ticket, *waiting]) for stage in STAGES for ticket, waiting in self.grants[stage])
        finished = [t.finished for t in succeeded if t.finished is not None]
        return {
            "label": self.scenario.label,
            "limits": self.scenario.limits,
            "gpu_quota": self.scenario.quota,
            "jobs": JOBS,
            "succeeded": len(succeeded),
            "failed": sum(1 for trace in self.jobs.values() if trace.failed),
            "peak_running": dict(self.peak),
            "peak_slots_held": dict(self.peak_held),
            "quota_refusals": sum(trace.refusals for trace in self.jobs.values()),
            "makespan_s": round(max(finished), 1) if finished else None,
            "queue_wait_p50_s": round(percentile(waits, 0.5), 1),
            "queue_wait_p95_s": round(percentile(waits, 0.95), 1),
            "train_queue_wait_p50_s": round(percentile(train_waits, 0.5), 1),
            "quota_wait_max_s": round(max([t.quota_wait for t in succeeded], default=0.0), 1),
            "jobs_refused": sum(1 for trace in self.jobs.values() if trace.refusals),
            "mean_job_s": round(statistics.fmean(finished), 1) if finished else None,
            "grants_in_upload_order": in_order if self.scenario.limits else None,
            "slots_left": leftover,
        }


class _StepFunctions:
    """Step Functions as the slot code sees it: SendTaskSuccess resumes the simulated execution; every execution
    of the burst runs until it ends."""

    def __init__(self, burst: Burst) -> None:
        self._burst = burst

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        self._burst.note_grant(taskToken)
        return {}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        return {"executionArn": executionArn, "status": "RUNNING"}


def hours(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def scenarios() -> list[Scenario]:
    return [
        Scenario("Before: no slots, every job starts its stages at once", None),
        Scenario("Defaults: MaxConcurrentSfm/Train/CompressJobs 2 / 1 / 2", {"sfm": 2, "train": 1, "compress": 2}),
        Scenario("MaxConcurrentTrainJobs 2 (the quota)", {"sfm": 2, "train": 2, "compress": 2}),
        Scenario("MaxConcurrentTrainJobs 3 (above the quota)", {"sfm": 2, "train": 3, "compress": 2}),
    ]


def quota_wait_default() -> int:
    return int(load_template()["Parameters"]["QuotaWaitSeconds"]["Default"])


def run(workspace: Workspace) -> SuiteResult:
    from benchmarks.report import load

    results = load(ROOT / "benchmarks" / "results.json")
    seconds = stage_seconds({name: result.to_dict() for name, result in results.items()})
    quota_wait_s = quota_wait_default()
    runs = [Burst(scenario, seconds, quota_wait_s).run() for scenario in scenarios()]
    rows = [
        [
            r["label"],
            f"{r['succeeded']} / {r['jobs']}",
            f"{r['peak_running']['train']} (quota {r['gpu_quota']})",
            f"{r['peak_running']['sfm']} / {r['peak_running']['compress']}",
            hours(r["makespan_s"]),
            f"{hours(r['queue_wait_p50_s'])} / {hours(r['queue_wait_p95_s'])}",
            f"{r['quota_refusals']}",
            {True: "yes", False: "**no**", None: "-"}[r["grants_in_upload_order"]],
            f"{r['slots_left']}",
        ]
        for r in runs
    ]
    durations = ", ".join(f"{stage} {value} s" for stage, value in seconds.items())
    table = Table(
        f"{JOBS} uploads at t = 0, GPU quota {GPU_QUOTA}; stages take the local run's seconds ({durations})",
        ["Configuration", "Jobs succeeded", "Peak training jobs", "Peak sfm / compress jobs", "Makespan",
         "Queue wait p50 / p95", "ResourceLimitExceeded", "Slots granted in upload order", "Slots held at the end"],
        rows,
    )  # fmt: skip
    default, at_quota, above = runs[1], runs[2], runs[3]
    targets = [
        Target(
            "every job of the burst succeeds",
            f"{default['succeeded']}, {at_quota['succeeded']} and {above['succeeded']} of {JOBS} with slots "
            f"(before: {runs[0]['succeeded']})",
            all(r["succeeded"] == JOBS for r in runs[1:]),
        ),
        Target(
            f"never more than {GPU_QUOTA} training jobs at once",
            ", ".join(str(r["peak_running"]["train"]) for r in runs[1:]),
            all(r["peak_running"]["train"] <= GPU_QUOTA for r in runs[1:]),
        ),
        Target(
            "slots granted in upload order; none held at the end",
            f"order kept: {all(r['grants_in_upload_order'] for r in runs[1:])}; "
            f"left: {sum(r['slots_left'] for r in runs[1:])}",
            all(r["grants_in_upload_order"] and r["slots_left"] == 0 for r in runs[1:]),
        ),
    ]
    notes = [
        "Simulated time: the slot code is the Lambdas' own (DynamoDB transactions in moto); Step Functions and "
        "SageMaker are simulated on a discrete-event clock. Queue wait is a job's time in the three stages' queues "
        "(from asking for a slot to its grant); makespan is the last job's end.",
        "The stage seconds are the local CPU run's on the sample scene (`local` suite, preset default), read from "
        "results.json when this suite runs. A SageMaker job also spends minutes starting its instance, not "
        "modelled here: each stage's run time would grow by that, and the makespan with it.",
        f"Above the quota, a third training job is refused and retried (60 s doubling to 900 s) while it holds its "
        f"slot, within QuotaWaitSeconds ({quota_wait_s} s), and the stage grants nothing meanwhile (else each job "
        f"granted would take the GPU that frees before the refused job's next retry, again and again): "
        f"{above['jobs_refused']} jobs were refused {above['quota_refusals']} times, the longest waited "
        f"{above['quota_wait_max_s'] / 60:.1f} min. A GPU idles between a job's end and the refused job's next "
        "retry: set MaxConcurrentTrainJobs to the quota where it is known.",
        f"Before slots, ResourceLimitExceeded had five retries with FULL jitter (here drawn with a fixed seed), about "
        f"half an hour, then the job failed: {runs[0]['failed']} of {JOBS} failed, and its makespan and queue wait "
        "are those of the jobs that succeeded (there was no queue, only retries).",
    ]
    return SuiteResult(
        "burst",
        f"Burst: {JOBS} uploads at once beyond a GPU quota of {GPU_QUOTA} (simulated time)",
        {"stage_seconds": seconds, "quota_wait_s": quota_wait_s, "runs": runs},
        [table],
        targets,
        notes=notes,
    )
