"""What a job costs: each ended SageMaker job's billable seconds and instance in the record, priced from the dated
table in the settings, shown by GET /jobs/{id}; and POST /jobs's estimate from the declared photo count and preset."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from spaceport.cloud.cost import PriceTable, billing_entry, summary
from spaceport.cloud.models import Stage

from . import harness
from .test_api import call, create
from .test_pipeline_e2e import upload_zip, wait_for

PRICES = PriceTable.parse(harness.load_template()["Parameters"]["InstancePrices"]["Default"])


def hourly(instance_type: str) -> float:
    return PRICES.per_hour[instance_type]


def test_a_finished_job_shows_each_stages_billable_seconds_instance_and_cost(world):
    # GIVEN SageMaker bills 900 s of sfm, 3600 s of training and 300 s of compression
    world.push_images()
    # WHEN the job runs to its end and is read through the API
    started = upload_zip(world, "job-costed")
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    status, view = call(world, "api_get_job.json", path="/jobs/job-costed")
    # THEN every stage shows its instance, seconds and cost at the table's prices, with the table's date
    assert status == 200
    cost = view["cost"]
    assert cost["prices_as_of"] == PRICES.as_of.isoformat() and cost["currency"] == "USD"
    expected = {
        "sfm": ("ml.c5.4xlarge", 900.0),
        "train": ("ml.g5.xlarge", 3600.0),
        "compress": ("ml.m5.2xlarge", 300.0),
    }
    for stage, (instance, seconds) in expected.items():
        figures = cost["stages"][stage]
        assert figures["instances"] == [instance] and figures["billable_seconds"] == seconds
        assert figures["cost"] == pytest.approx(hourly(instance) * seconds / 3600, abs=1e-4)
    total = sum(hourly(instance) * seconds / 3600 for instance, seconds in expected.values())
    assert cost["total"] == pytest.approx(total, abs=0.01)
    assert "unpriced" not in cost
    # AND the record itself keeps each SageMaker job's entry, named by the job
    billing = world.job("job-costed")["billing"]
    assert {entry["stage"] for entry in billing.values()} == {"sfm", "train", "compress"}
    assert all(name.startswith("sp-job-costed-") for name in billing)


def test_a_retried_stage_bills_every_attempt(world):
    # GIVEN SageMaker fails the first training job for capacity after it ran, and the retry succeeds
    world.push_images()
    world.sagemaker.script["train"].append(("fail", "CapacityError: Unable to provision requested ML compute capacity"))
    # WHEN the job runs
    started = upload_zip(world, "job-two-trainings")
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    # THEN both training jobs are in the cost: two jobs, twice the seconds
    _, view = call(world, "api_get_job.json", path="/jobs/job-two-trainings")
    train = view["cost"]["stages"]["train"]
    assert train["jobs"] == 2 and train["billable_seconds"] == 7200.0
    assert train["cost"] == pytest.approx(2 * hourly("ml.g5.xlarge"), abs=1e-3)


def test_a_stopped_job_nothing_waits_for_still_bills(world):
    # GIVEN the first train starter creates its job and then fails; the retry's job finishes the run
    world.push_images()
    world.sagemaker.script["train"].append(("silent",))
    world.errors_after_handler["start_stage"].append("ServiceException")
    world.errors_after_handler["start_stage"].appendleft(None)
    started = upload_zip(world, "job-orphan-billed")
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    orphan = next(r["TrainingJobName"] for op, r in world.sagemaker.requests if op == "create_training_job")
    assert orphan in world.sagemaker.stopped
    # WHEN SageMaker's event for the stopped job arrives, long after the execution ended
    event = world.state_change_event("train", orphan)
    result = world.handlers["complete_stage"].lambda_handler(event, harness.FakeContext())
    # THEN it resumes nothing, but its seconds are in the job's cost
    assert "ignored" in result
    billing = world.job("job-orphan-billed")["billing"]
    assert billing[orphan]["status"] == "Stopped" and billing[orphan]["billable_seconds"] == 3600.0
    _, view = call(world, "api_get_job.json", path="/jobs/job-orphan-billed")
    assert view["cost"]["stages"]["train"]["jobs"] == 2


def test_a_duplicate_event_does_not_bill_twice(world):
    # GIVEN a job whose sfm job waits for its event
    world.push_images()
    world.sagemaker.script["sfm"].append(("silent",))
    started = upload_zip(world, "job-dup-bill")
    wait_for(lambda: world.sagemaker.outcomes, "the sfm stage to wait")
    name = world.job("job-dup-bill")["sagemaker_job"]
    event = world.state_change_event("sfm", name)
    # WHEN EventBridge delivers its event twice
    for _ in range(2):
        world.handlers["complete_stage"].lambda_handler(event, harness.FakeContext())
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    # THEN the sfm stage is billed once
    _, view = call(world, "api_get_job.json", path="/jobs/job-dup-bill")
    assert view["cost"]["stages"]["sfm"]["jobs"] == 1
    assert view["cost"]["stages"]["sfm"]["billable_seconds"] == 900.0


def test_spot_training_bills_what_sagemaker_counts_as_billable():
    # GIVEN a managed spot training job that trained 3600 s, of which SageMaker bills 1200 s
    description = {
        "TrainingJobName": "sp-job-spot-train-a1-abcdef",
        "TrainingJobStatus": "Completed",
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "EnableManagedSpotTraining": True,
        "TrainingTimeInSeconds": 3600,
        "BillableTimeInSeconds": 1200,
    }
    # WHEN its billing entry is made
    entry = billing_entry(Stage.TRAIN, description, PRICES)
    # THEN it counts the billable 1200 s at the on-demand price, marked spot
    assert entry["billable_seconds"] == 1200.0 and entry["spot"] is True
    assert entry["cost"] == pytest.approx(hourly("ml.g5.xlarge") / 3, abs=1e-4)


def sfm_job_ended_without_a_start(status: str) -> dict:
    """A processing job's description with an end time and no ProcessingStartTime."""
    return {
        "ProcessingJobName": "sp-job-x-sfm-a1-abcdef",
        "ProcessingJobStatus": status,
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.c5.4xlarge", "InstanceCount": 1}},
        "ProcessingEndTime": datetime(2026, 12, 6, tzinfo=UTC),
    }


def test_a_processing_job_that_never_started_bills_nothing():
    # GIVEN a processing job stopped while its instance was provisioned (no ProcessingStartTime)
    description = sfm_job_ended_without_a_start("Stopped")
    # WHEN its billing entry is made THEN it bills no second
    entry = billing_entry(Stage.SFM, description, PRICES)
    assert entry["billable_seconds"] == 0.0 and entry["cost"] == 0.0


def test_an_instance_without_a_price_is_named_not_counted_as_free():
    # GIVEN a compress job that ran 600 s on an instance the price table does not list
    start = datetime(2026, 12, 6, tzinfo=UTC)
    description = {
        "ProcessingJobName": "sp-job-x-compress-a1-abcdef",
        "ProcessingJobStatus": "Completed",
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.x9.mega", "InstanceCount": 1}},
        "ProcessingStartTime": start,
        "ProcessingEndTime": start + timedelta(seconds=600),
    }
    # WHEN the job's cost is summed
    view = summary({"sp-job-x-compress-a1-abcdef": billing_entry(Stage.COMPRESS, description, PRICES)}, PRICES)
    # THEN the instance is named as unpriced, its seconds are kept, and the total says it leaves it out
    assert "ml.x9.mega" in view["unpriced"] and "InstancePrices" in view["unpriced"]
    assert view["stages"]["compress"]["billable_seconds"] == 600.0


@pytest.fixture
def thousand_photos_allowed(monkeypatch):
    """MaxImages 1000, as the template's default (the other cloud tests run with 100)."""
    from spaceport.cloud import settings

    monkeypatch.setenv("SPACEPORT_MAX_IMAGES", "1000")
    settings.clear_cache()


def test_create_job_returns_an_estimate_from_the_declared_photos_and_preset(world, thousand_photos_allowed):
    # GIVEN a user who will upload 300 photos with the default preset, and one who will use the quality preset
    # WHEN each creates a job
    status, default = create(world, {"photo_count": 300})
    _, quality = create(world, {"photo_count": 300, "preset": "quality"})
    _, small = create(world, {"photo_count": 30})
    # THEN each gets an estimate per stage on the configured instances, priced from the dated table
    assert status == 201
    estimate = default["estimate"]
    assert estimate["photos"] == 300 and estimate["prices_as_of"] == PRICES.as_of.isoformat()
    assert {stage: figures["instance_type"] for stage, figures in estimate["stages"].items()} == {
        "sfm": "ml.c5.4xlarge",
        "train": "ml.g5.xlarge",
        "compress": "ml.m5.2xlarge",
    }
    for figures in estimate["stages"].values():
        assert figures["cost"] == pytest.approx(hourly(figures["instance_type"]) * figures["seconds"] / 3600, abs=1e-3)
    assert estimate["total"] == pytest.approx(sum(f["cost"] for f in estimate["stages"].values()), abs=0.01)
    # AND the most an attempt can bill is each stage's MaxRuntime at its price
    at_most = 7200 / 3600 * hourly("ml.c5.4xlarge") + 14400 / 3600 * hourly("ml.g5.xlarge")
    at_most += 3600 / 3600 * hourly("ml.m5.2xlarge")
    assert estimate["at_most"] == pytest.approx(at_most, abs=0.01)
    # AND more steps or more photos cost more
    assert quality["estimate"]["stages"]["train"]["seconds"] > estimate["stages"]["train"]["seconds"]
    assert small["estimate"]["stages"]["sfm"]["seconds"] < estimate["stages"]["sfm"]["seconds"]
    assert small["estimate"]["total"] < estimate["total"] < quality["estimate"]["total"]


def test_photo_files_named_for_upload_are_the_estimates_count(world):
    # GIVEN an upload of named photo files and no declared count
    names = [f"IMG_{index:04d}.jpg" for index in range(12)]
    # WHEN the job is created
    _, body = create(world, {"upload": "images", "file_names": names})
    # THEN the estimate counts the files
    assert body["estimate"]["photos"] == 12


def test_without_a_photo_count_the_estimate_says_what_to_declare(world):
    # GIVEN a zip upload announced without its photo count
    # WHEN the job is created
    status, body = create(world, {})
    # THEN the job is created, and the estimate says what it needs
    assert status == 201 and "photo_count" in body["estimate"]["missing"]


def default_table() -> dict:
    return json.loads(harness.load_template()["Parameters"]["InstancePrices"]["Default"])


def with_bad_prices() -> str:
    """The default table with ml.g5.xlarge at 0, ml.c5.4xlarge at -1 and ml.m5.2xlarge as text."""
    table = default_table()
    table["per_hour"].update({"ml.g5.xlarge": 0, "ml.c5.4xlarge": -1, "ml.m5.2xlarge": "0.461"})
    return json.dumps(table)


def test_a_price_table_with_bad_prices_names_them_and_leaves_those_instances_unpriced(monkeypatch):
    # GIVEN an InstancePrices value with a zero, a negative and a quoted price
    from spaceport.cloud import settings

    monkeypatch.setenv("INSTANCE_PRICES", with_bad_prices())
    settings.clear_cache()
    # WHEN the completion and API settings are read
    prices = settings.completion_settings().prices
    # THEN nothing raises; the bad entries are named and left out, the others kept with the table's date
    assert settings.api_settings().prices == prices
    for instance in ("ml.g5.xlarge", "ml.c5.4xlarge", "ml.m5.2xlarge"):
        assert instance not in prices.per_hour and any(instance in problem for problem in prices.problems)
    assert prices.per_hour["ml.r5.large"] == default_table()["per_hour"]["ml.r5.large"]
    assert prices.as_of.isoformat() == default_table()["as_of"]


@pytest.mark.parametrize(
    "instance_prices",
    [with_bad_prices(), '{"as_of": "2024-06-01", "per_hour": {"ml.g5.xlarge": 1.4'],
    ids=["bad-prices", "not-json"],
)
def test_a_malformed_price_table_never_stops_a_job_and_its_cost_says_what_is_wrong(world, monkeypatch, instance_prices):
    # GIVEN an InstancePrices value that CloudFormation could not check: bad prices, or a typo that breaks the JSON
    from spaceport.cloud import settings

    monkeypatch.setenv("INSTANCE_PRICES", instance_prices)
    settings.clear_cache()
    world.push_images()
    # WHEN a job is created through the API, uploaded, and runs
    status, created = create(world, {"photo_count": 4})
    started = upload_zip(world, "job-bad-prices")
    # THEN the job runs to its end and the API answers, naming the instances it could not price and why
    assert status == 201 and "unpriced" in created["estimate"] and created["estimate"]["price_problems"]
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    status, view = call(world, "api_get_job.json", path="/jobs/job-bad-prices")
    assert status == 200 and view["status"] == "SUCCEEDED"
    assert "ml.g5.xlarge" in view["cost"]["unpriced"] and view["cost"]["price_problems"]
    assert view["cost"]["stages"]["train"]["billable_seconds"] == 3600.0


def test_a_failed_billing_write_does_not_hold_up_the_stage_and_the_redelivered_event_bills_it(world, monkeypatch):
    # GIVEN an sfm job that waits for its event, and DynamoDB throttling the write of its billing entry once
    from spaceport.cloud.jobs import JobsTable

    world.push_images()
    world.sagemaker.script["sfm"].append(("silent",))
    started = upload_zip(world, "job-bill-later")
    wait_for(lambda: world.sagemaker.outcomes, "the sfm stage to wait")
    name, sfm_token = world.job("job-bill-later")["sagemaker_job"], world.job("job-bill-later")["wait_token"]
    record_billing, attempts = JobsTable.record_billing, []

    def throttled_once(self, job_id, sagemaker_job, entry):
        attempts.append(sagemaker_job)
        if len(attempts) == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "UpdateItem")
        return record_billing(self, job_id, sagemaker_job, entry)

    monkeypatch.setattr(JobsTable, "record_billing", throttled_once)
    event = world.state_change_event("sfm", name)
    # WHEN its event fails on the billing write, and EventBridge delivers it again
    with pytest.raises(ClientError, match="ThrottlingException"):
        world.handlers["complete_stage"].lambda_handler(event, harness.FakeContext())
    after_first = world.job("job-bill-later")
    world.handlers["complete_stage"].lambda_handler(event, harness.FakeContext())
    # THEN the first delivery had already sent the stage's outcome (and so released its token); the second billed it
    assert after_first["stages"]["sfm"]["status"] == "SUCCEEDED" and after_first.get("wait_token") != sfm_token
    assert attempts == [name, name]
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    assert world.job("job-bill-later")["billing"][name]["billable_seconds"] == 900.0


PRICE_TABLE_FAULTS = {
    "zero price": ('"ml.g5.xlarge":1.408', '"ml.g5.xlarge":0'),
    "zero with decimals": ('"ml.g5.xlarge":1.408', '"ml.g5.xlarge":0.000'),
    "negative price": ('"ml.g5.xlarge":1.408', '"ml.g5.xlarge":-1.408'),
    "quoted price": ('"ml.g5.xlarge":1.408', '"ml.g5.xlarge":"1.408"'),
    "missing quote": ('"ml.g5.xlarge":1.408', '"ml.g5.xlarge:1.408'),
    "trailing comma": ('"ml.p5.48xlarge":113.07}', '"ml.p5.48xlarge":113.07,}'),
    "missing brace": ("113.07}}", "113.07}"),
    "no date": ('"as_of":"2024-06-01",', ""),
    "misspelt date": ('"as_of":"2024-06-01"', '"as_of":"2024-6-1"'),
    "no prices": ('"per_hour":{', '"per_hour":{}, "x":{'),
    "extra key": ('"as_of":"2024-06-01",', '"as_of":"2024-06-01","note":"checked by hand",'),
}


@pytest.mark.parametrize("fault", PRICE_TABLE_FAULTS)
def test_cloudformation_refuses_a_malformed_price_table_at_deploy(fault):
    # GIVEN the InstancePrices parameter's AllowedPattern (CloudFormation matches it against the whole value)
    parameter = harness.load_template()["Parameters"]["InstancePrices"]
    pattern = re.compile(parameter["AllowedPattern"])
    old, new = PRICE_TABLE_FAULTS[fault]
    assert old in parameter["Default"]
    # WHEN the default, spaced out as JSON may be, and the default with one fault are matched
    spaced = json.dumps(json.loads(parameter["Default"]), indent=2)
    # THEN the default passes, with or without spaces and in any key order, and the faulty value does not
    assert pattern.fullmatch(parameter["Default"]) and pattern.fullmatch(spaced)
    assert pattern.fullmatch(json.dumps(dict(reversed(json.loads(parameter["Default"]).items()))))
    assert not pattern.fullmatch(parameter["Default"].replace(old, new, 1))
    assert "positive" in parameter["ConstraintDescription"]


def test_the_default_price_table_is_dated_and_prices_every_default_instance():
    # GIVEN the template's parameters
    parameters = harness.load_template()["Parameters"]
    # WHEN the default price table is read
    table = PriceTable.parse(parameters["InstancePrices"]["Default"])
    # THEN it prices each stage's default instance, and it is dated, with nothing wrong in it
    for name in ("SfmInstanceType", "TrainInstanceType", "CompressInstanceType"):
        assert parameters[name]["Default"] in table.per_hour, name
    assert table.as_of.year >= 2024 and table.region and table.problems == []


def test_an_estimate_beyond_a_stages_runtime_limit_warns_before_the_upload(world, thousand_photos_allowed, monkeypatch):
    # GIVEN a 1,000-photo capture (SfM is expected to take about 1.4 h) and SfmMaxRuntimeSeconds of 1 h
    from spaceport.cloud import settings

    monkeypatch.setenv("SFM_MAX_RUNTIME_SECONDS", "3600")
    settings.clear_cache()
    # WHEN the job is created
    _, body = create(world, {"photo_count": 1000})
    # THEN the estimate warns that sfm would be stopped at its limit, and prices it at most up to that limit
    estimate = body["estimate"]
    assert estimate["stages"]["sfm"]["seconds"] > 3600
    assert any("sfm" in warning and "SfmMaxRuntimeSeconds" in warning for warning in estimate["warnings"])
    assert estimate["stages"]["sfm"]["cost"] == pytest.approx(hourly("ml.c5.4xlarge"), abs=1e-3)
    # AND a small job has no warning
    _, small = create(world, {"photo_count": 30})
    assert "warnings" not in small["estimate"]


def test_a_photo_count_the_validator_would_refuse_is_refused_before_any_upload(world):
    # GIVEN MaxImages 100 and MinImages 3
    # WHEN users announce 500 photos, or 2
    too_many, body = create(world, {"photo_count": 500})
    too_few, _ = create(world, {"photo_count": 2})
    # THEN both are told the range, and no job is recorded
    assert too_many == 400 and too_few == 400
    assert "3 to 100 photos" in body["message"] and "MaxImages" in body["message"]
    assert world.table.scan()["Count"] == 0


def test_a_completed_job_without_billable_times_is_flagged_not_free():
    # GIVEN a completed processing job whose description lacks its start time
    description = sfm_job_ended_without_a_start("Completed")
    # WHEN the job's cost is summed
    view = summary({"sp-job-x-sfm-a1-abcdef": billing_entry(Stage.SFM, description, PRICES)}, PRICES)
    # THEN the total says which job it could not count
    assert "sp-job-x-sfm-a1-abcdef" in view["seconds_unknown"]


def test_a_job_whose_id_ends_in_a_hyphen_is_billed_too(world):
    # GIVEN a job id ending in "-" (allowed), which its SageMaker job names cannot keep
    world.push_images()
    # WHEN the job runs
    started = upload_zip(world, "site-a-")
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    # THEN every stage is billed to it
    _, view = call(world, "api_get_job.json", path="/jobs/site-a-")
    assert set(view["cost"]["stages"]) == {"sfm", "train", "compress"}


def test_a_spot_training_job_without_its_billable_time_is_flagged_not_priced_at_the_wall_clock():
    # GIVEN a spot training job whose description has its times but not BillableTimeInSeconds
    start = datetime(2026, 12, 6, tzinfo=UTC)
    description = {
        "TrainingJobName": "sp-job-x-train-a1-abcdef",
        "TrainingJobStatus": "Completed",
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "EnableManagedSpotTraining": True,
        "TrainingStartTime": start,
        "TrainingEndTime": start + timedelta(hours=1),
    }
    # WHEN the job's cost is summed
    view = summary({"sp-job-x-train-a1-abcdef": billing_entry(Stage.TRAIN, description, PRICES)}, PRICES)
    # THEN the hour of wall clock is not billed as on-demand time; the job is named as not counted
    assert view["total"] == 0 and "sp-job-x-train-a1-abcdef" in view["seconds_unknown"]


def test_a_processing_jobs_seconds_are_labelled_an_estimate_a_training_jobs_billable_time_is_not():
    # GIVEN a completed processing job (SageMaker reports its start and end, no billable time) and a training job
    # with BillableTimeInSeconds
    start = datetime(2026, 12, 6, tzinfo=UTC)
    processing = {**sfm_job_ended_without_a_start("Completed"), "ProcessingStartTime": start,
                  "ProcessingEndTime": start + timedelta(seconds=900)}  # fmt: skip
    training = {
        "TrainingJobName": "sp-job-x-train-a1-abcdef",
        "TrainingJobStatus": "Completed",
        "ResourceConfig": {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 50},
        "BillableTimeInSeconds": 3600,
    }
    # WHEN their billing entries are made
    sfm, train = billing_entry(Stage.SFM, processing, PRICES), billing_entry(Stage.TRAIN, training, PRICES)
    # THEN the processing entry says its seconds are an estimate from its end minus start time; the training one is
    # SageMaker's billable time
    assert sfm["billable_seconds"] == 900.0 and sfm["estimated"] is True
    assert "ProcessingEndTime" in sfm["seconds_from"] and "ProcessingStartTime" in sfm["seconds_from"]
    assert "estimated" not in train and train["seconds_from"] == "BillableTimeInSeconds"


def test_the_api_labels_the_processing_stages_cost_an_estimate(world):
    # GIVEN a job that ran to its end
    world.push_images()
    started = upload_zip(world, "job-estimated")
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    # WHEN its cost is read through the API
    _, view = call(world, "api_get_job.json", path="/jobs/job-estimated")
    cost = view["cost"]
    # THEN sfm and compress are marked estimated, train is not, and the view says why
    assert {stage: figures.get("estimated", False) for stage, figures in cost["stages"].items()} == {
        "sfm": True,
        "train": False,
        "compress": True,
    }
    assert "compress, sfm" in cost["estimated"] and "ProcessingEndTime" in cost["estimated"]


def test_a_spot_job_without_its_billable_time_is_described_again_by_the_sweeper_until_it_is_there(world, monkeypatch):
    # GIVEN spot training, and SageMaker describing the ended training job without BillableTimeInSeconds at first
    from spaceport.cloud import settings

    monkeypatch.setenv("SPOT_TRAINING", "true")
    settings.clear_cache()
    world.push_images()
    world.sagemaker.billable_time_reported = False
    started = upload_zip(world, "job-spot-late")
    assert world.run(started["execution_arn"])["status"] == "SUCCEEDED"
    name = next(r["TrainingJobName"] for op, r in world.sagemaker.requests if op == "create_training_job")
    assert name in call(world, "api_get_job.json", path="/jobs/job-spot-late")[1]["cost"]["seconds_unknown"]
    sweep_event = harness.load_event("sweep_slots_scheduled.json")
    # WHEN the sweeper runs while the figure is still missing, and again once SageMaker reports it
    first = world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())
    world.sagemaker.billable_time_reported = True
    second = world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())
    # THEN the first sweep described the job and left it unknown; the second billed its 3600 s at the table's price
    assert first["billing"] == [] and world.sagemaker.described.count(name) >= 2
    assert second["billing"] == [{"job_id": "job-spot-late", "sagemaker_job": name, "billable_seconds": 3600.0}]
    cost = call(world, "api_get_job.json", path="/jobs/job-spot-late")[1]["cost"]
    assert "seconds_unknown" not in cost and cost["stages"]["train"]["billable_seconds"] == 3600.0
    assert cost["stages"]["train"]["cost"] == pytest.approx(hourly("ml.g5.xlarge"), abs=1e-4)
    # AND a later sweep has nothing left to describe
    described = len(world.sagemaker.described)
    assert world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())["billing"] == []
    assert len(world.sagemaker.described) == described


def test_a_billing_recheck_that_cannot_list_its_jobs_leaves_them_for_the_next_sweep(world):
    # GIVEN DynamoDB throttling, past the SDK's retries, the sweeper's query for the jobs marked for a recheck
    from spaceport.cloud.jobs import RECHECK_INDEX

    def listing_the_marked(params) -> bool:
        return params.get("IndexName") == RECHECK_INDEX

    world.dynamo_faults.add("Query", listing_the_marked, "throttle", times=5)  # the SDK tries 5 times
    # WHEN the sweeper runs
    sweep_event = harness.load_event("sweep_slots_scheduled.json")
    swept = world.handlers["sweep_slots"].lambda_handler(sweep_event, harness.FakeContext())
    # THEN the sweep answered, its slot work done and nothing rechecked (the next sweep lists them again)
    assert world.dynamo_faults.injected == [("Query", "throttle")] * 5
    assert swept["billing"] == [] and swept["reclaimed"] == []


def test_every_size_stage_sizing_may_choose_has_a_default_price_or_the_readme_says_it_has_none():
    # GIVEN every processing size of the stage-sizing table's families, the default price table, and the README's
    # AWS section
    from spaceport.cloud.stage_resources import FAMILY_MEMORY_GIB

    sizes = {f"ml.{family}.{size}" for family, family_sizes in FAMILY_MEMORY_GIB.items() for size in family_sizes}
    table = PriceTable.parse(harness.load_template()["Parameters"]["InstancePrices"]["Default"])
    readme = (harness.ROOT / "README.md").read_text()
    aws = readme[readme.index("<!-- aws:begin -->") : readme.index("<!-- aws:end -->")]
    # WHEN the sizes without a default price are compared with those the README names as such
    named = re.search(r"The default has no\s+price for\s+((?:`[^`]+`(?:,\s+|\s+and\s+)?)+)", aws)
    unpriced_named = set(re.findall(r"`([^`]+)`", named.group(1))) if named else set()
    # THEN every size is priced by default, except exactly those the README names (no figure could be checked
    # for them): a job on them shows its instance unpriced, never free
    assert sizes - set(table.per_hour) == unpriced_named
