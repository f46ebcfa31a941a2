"""What template.yaml promises where moto cannot show AWS's behaviour: rule breadth, the alarm topic's key, the
bucket's lifecycle and CORS, deletion, spot waits and the layer's pins. Each test reads the template itself."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from typing import Any

import pytest
from packaging.requirements import Requirement

from spaceport.cloud import names, sagemaker_requests
from spaceport.cloud.settings import StageSettings

from . import harness
from .harness import ROOT, load_event, load_template, matches, rule_patterns

PUBLISHERS = ("TriggerFunction", "ValidateFunction", "StartStageFunction", "RecordOutcomeFunction", "ApiFunction")


def resolve(value: Any, params: dict[str, Any], template: dict[str, Any]) -> Any:
    """A template value with Ref / If / Equals / Not resolved against ``params`` (others left as they are)."""
    if isinstance(value, dict) and len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Ref" and argument in params:
            return params[argument]
        if name == "If":
            condition = resolve(template["Conditions"][argument[0]], params, template)
            return resolve(argument[1] if condition else argument[2], params, template)
        if name == "Equals":
            left, right = (resolve(item, params, template) for item in argument)
            return str(left) == str(right)
        if name == "Not":
            return not resolve(argument[0], params, template)
    if isinstance(value, dict):
        return {key: resolve(item, params, template) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, params, template) for item in value]
    return value


def defaults(template: dict[str, Any]) -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in template["Parameters"].items()}


def statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Every inline policy statement of a serverless function."""
    found = []
    for policy in resource["Properties"].get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            found += policy["Statement"]
    return found


def sagemaker_event(kind: str, name: str, status: str) -> dict[str, Any]:
    event = load_event(f"sagemaker_{kind.lower()}_state_change.json")
    event["detail"] = {f"{kind}JobName": name, f"{kind}JobStatus": status}
    return event


# ---------------------------------------------------------------- item 1: a failed completion is retried


def test_a_failed_completion_is_invoked_again_and_never_dropped():
    # GIVEN the completion function, which EventBridge invokes asynchronously
    config = load_template()["Resources"]["CompleteStageFunction"]["Properties"]["EventInvokeConfig"]
    # THEN Lambda retries a failed invocation with the same event (the token is still stored for it), and an event
    # that keeps failing goes to a queue instead of being dropped
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Type"] in ("SQS", "SNS")


# ---------------------------------------------------------------- item 5: the completion rule's breadth


@pytest.mark.parametrize("kind", ["Processing", "Training"])
def test_the_completion_rule_receives_only_our_jobs_and_only_when_they_end(kind):
    # GIVEN the complete_stage function's rules, as the template writes them
    patterns = rule_patterns("CompleteStageFunction")
    ours = names.sagemaker_job_name("job-0001", names.Stage.SFM, 1)
    # THEN our job's end reaches the function, whatever way it ended
    for status in ("Completed", "Failed", "Stopped"):
        assert any(matches(p, sagemaker_event(kind, ours, status)) for p in patterns), status
    # AND another team's job, and our job's intermediate states, never invoke it
    assert not any(matches(p, sagemaker_event(kind, "forecast-nightly-2026-01-01", "Completed")) for p in patterns)
    assert not any(matches(p, sagemaker_event(kind, "xsp-job-0001-sfm-a1-abc123", "Failed")) for p in patterns)
    for status in ("InProgress", "Stopping"):
        assert not any(matches(p, sagemaker_event(kind, ours, status)) for p in patterns), status


# ---------------------------------------------------------------- item 6: the alarm topic's key


def test_the_alarm_topic_uses_a_key_cloudwatch_may_use():
    # GIVEN the topic the failed-executions alarm publishes to
    template = load_template()
    resources = template["Resources"]
    alarm_topic = resources["FailedExecutionsAlarm"]["Properties"]["AlarmActions"][0]["Ref"]
    key_id = resources[alarm_topic]["Properties"]["KmsMasterKeyId"]
    # THEN it is encrypted with a key of this stack, not an AWS-managed alias/aws/... key
    assert not (isinstance(key_id, str) and key_id.startswith("alias/aws/")), key_id
    key_name = key_id.get("Ref") or key_id["GetAtt"].split(".")[0]
    key = resources[key_name]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    # AND the key policy lets CloudWatch alarms encrypt messages for the topic (kms:GenerateDataKey*, kms:Decrypt)
    grants = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert grants and grants[0]["Effect"] == "Allow"
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= set(grants[0]["Action"])
    # AND every function that publishes to the topic may use the key too (SNS encrypts with the publisher's rights)
    for name in PUBLISHERS:
        kms = [s for s in statements(resources[name]) if any(str(a).startswith("kms:") for a in _list(s["Action"]))]
        assert kms, f"{name} cannot use the topic's key"
        assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= set(_list(kms[0]["Action"]))
        assert kms[0]["Resource"] == {"GetAtt": f"{key_name}.Arn"}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- item 7: CORS for a browser's multipart upload


def test_the_bucket_lets_a_browser_put_parts_and_complete_the_upload():
    # GIVEN the data bucket's CORS rules
    rules = load_template()["Resources"]["DataBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    # THEN a browser may PUT (objects and parts), POST (CompleteMultipartUpload) and GET, and read each part's ETag
    methods = {method for rule in rules for method in rule["AllowedMethods"]}
    assert {"PUT", "POST", "GET"} <= methods
    assert all("ETag" in rule["ExposedHeaders"] for rule in rules)


# ---------------------------------------------------------------- item 8: one spot wait


def wait_seconds(definition: str, state: str, stage: str) -> int:
    """The wait a state machine gives a stage: its Pass state's States.MathAdd expression, evaluated."""
    expression = json.loads(definition)["States"][state]["Parameters"][f"{stage}.$"]
    while "States.MathAdd(" in expression:
        expression = re.sub(
            r"States\.MathAdd\((-?\d+), (-?\d+)\)", lambda m: str(int(m[1]) + int(m[2])), expression, count=1
        )
    return int(expression)


@pytest.mark.parametrize("spot", ["true", "false"])
@pytest.mark.parametrize("runtime", [3600, 14400, 86400])
def test_the_train_wait_is_sagemakers_own_limit_plus_the_margin(monkeypatch, spot, runtime):
    # GIVEN the template's parameters with spot training on or off, every Spot* number at its smallest allowed value
    template = load_template()
    params = defaults(template) | {"SpotTraining": spot, "TrainMaxRuntimeSeconds": runtime}
    for name, spec in template["Parameters"].items():
        if name.startswith("Spot") and spec["Type"] == "Number":
            params[name] = spec.get("MinValue", 0)
    # WHEN the state machine's substitutions and the starter's environment are resolved from them
    substitutions = resolve(template["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"],
                            params, template)  # fmt: skip
    values = {key: str(value) for key, value in substitutions.items() if not isinstance(value, dict)}
    values.update({key: "arn:x" for key, value in substitutions.items() if isinstance(value, dict)})
    definition = harness.fill_definition(values)
    wait = wait_seconds(definition, "Set the stage time limits", "train")
    environment = resolve(template["Resources"]["StartStageFunction"]["Properties"]["Environment"]["Variables"],
                          params, template)  # fmt: skip
    for key, value in environment.items():
        if not isinstance(value, dict):
            monkeypatch.setenv(key, str(value))
    settings = StageSettings.model_validate(dict(os.environ))
    request = sagemaker_requests.train_request(settings, "sp-a-train-a1-x", "a", "image", {})
    # THEN the wait is exactly the longest SageMaker lets the job take (wait for spot plus run) plus the margin
    stopping = request["StoppingCondition"]
    longest = stopping.get("MaxWaitTimeInSeconds", stopping["MaxRuntimeInSeconds"])
    assert wait == longest + int(params["StageWaitMarginSeconds"])
    assert longest >= stopping["MaxRuntimeInSeconds"] == runtime


# ---------------------------------------------------------------- item 9: lifecycle


def lifecycle_rules(params: dict[str, Any]) -> list[dict[str, Any]]:
    template = load_template()
    rules = template["Resources"]["DataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    resolved = [resolve(rule, params, template) for rule in rules]
    return [rule for rule in resolved if rule != {"Ref": "AWS::NoValue"} and rule.get("Status") == "Enabled"]


def expiring_rules_for(key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        rule
        for rule in lifecycle_rules(params)
        if "ExpirationInDays" in rule and key.startswith(rule.get("Prefix", rule.get("Filter", {}).get("Prefix", "")))
    ]


def test_outputs_are_kept_by_default_and_only_checkpoints_expire(monkeypatch):
    # GIVEN the template's default parameters and where a spot training job writes its checkpoints
    params = defaults(load_template())
    monkeypatch.setenv("SPOT_TRAINING", "true")
    from spaceport.cloud.settings import stage_settings

    request = sagemaker_requests.train_request(stage_settings(), "sp-a-train-a1-x", "job-1", "image", {})
    checkpoint_key = request["CheckpointConfig"]["S3Uri"].split("/", 3)[3] + "checkpoint-000500.pt"
    # THEN no lifecycle rule deletes a job's outputs or its uploaded photos
    for key in ("jobs/job-1/compress/scene.sog", "jobs/job-1/images/IMG_0001.jpg", "uploads/job-1/photos.zip"):
        assert expiring_rules_for(key, params) == [], key
    # AND the checkpoints do expire, under a rule that says so
    rules = expiring_rules_for(checkpoint_key, params)
    assert len(rules) == 1 and "checkpoint" in rules[0]["Id"]


def test_output_retention_is_a_parameter():
    # GIVEN a deployment that keeps outputs for 90 days
    template = load_template()
    retention = [name for name in template["Parameters"] if "Retention" in name and name != "LogRetentionDays"]
    assert len(retention) == 1, retention
    params = defaults(template) | {retention[0]: 90}
    # THEN a job's outputs expire after 90 days, and its checkpoints still under their own rule
    rules = expiring_rules_for("jobs/job-1/compress/scene.sog", params)
    assert [rule["ExpirationInDays"] for rule in rules] == [90]
    assert int(template["Parameters"][retention[0]]["Default"]) == 0


# ---------------------------------------------------------------- item 10: smaller items


@pytest.mark.parametrize("name", ["photos.zip", "PHOTOS.ZIP", "Photos.Zip", "scan.zIp"])
def test_the_upload_rule_matches_every_archive_the_trigger_accepts(name):
    # GIVEN an archive uploaded under any capitalisation of .zip (the trigger's parser accepts them all)
    from spaceport.cloud.trigger import parse_upload_key

    key = f"uploads/job-0001/{name}"
    assert parse_upload_key(key) is not None
    event = load_event("trigger_zip_uploaded.json")
    event["detail"]["object"]["key"] = key
    # THEN the rule delivers its event to the trigger
    assert harness.delivered("TriggerFunction", event)


def test_the_upload_rule_ignores_other_keys():
    # GIVEN keys the trigger ignores: the build source, outputs, photos of a folder upload
    for key in ("build/source.zip", "jobs/job-0001/images/a.zip", "uploads/job-0001/IMG_0001.jpg"):
        event = load_event("trigger_zip_uploaded.json")
        event["detail"]["object"]["key"] = key
        # THEN no event reaches the trigger
        assert not harness.delivered("TriggerFunction", event), key


def test_the_trigger_reads_only_uploads():
    # GIVEN the trigger function's policies
    trigger = load_template()["Resources"]["TriggerFunction"]
    policies = trigger["Properties"]["Policies"]
    # THEN it has no bucket-wide read policy, and each S3 statement is scoped to uploads/
    assert not [p for p in policies if isinstance(p, dict) and "S3ReadPolicy" in p]
    s3 = [s for s in statements(trigger) if any(str(a).startswith("s3:") for a in _list(s["Action"]))]
    assert s3
    for statement in s3:
        assert statement["Resource"] == {"Sub": "${DataBucket.Arn}/uploads/*"}


def test_stack_deletion_keeps_the_data_and_empties_the_image_repositories():
    # GIVEN the bucket (the users' photos and results) and the three image repositories
    resources = load_template()["Resources"]
    # THEN deleting (or replacing) the stack keeps the bucket rather than failing on its objects
    assert resources["DataBucket"]["DeletionPolicy"] == "Retain"
    assert resources["DataBucket"]["UpdateReplacePolicy"] == "Retain"
    # AND the repositories' images (rebuilt from source by the build project) go with the stack
    for name in ("SfmRepository", "TrainRepository", "CompressRepository"):
        assert resources[name]["Properties"]["EmptyOnDelete"] is True, name
    # AND the README says so
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    aws_section = readme.split("<!-- aws:begin -->")[1].split("<!-- aws:end -->")[0]
    assert "sam delete" in aws_section and "Retain" in aws_section


def test_the_layer_pins_boto3_botocore_and_s3transfer_as_one_set():
    # GIVEN the layer's requirements (aws-xray-sdk, through powertools' tracer extra, pulls in a newer botocore)
    lines = (ROOT / "functions" / "layer" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = {}
    for line in lines:
        text = line.split("#")[0].strip()
        if text:
            requirement = Requirement(text)
            pins[requirement.name.lower()] = requirement
    # THEN boto3, botocore and s3transfer are pinned exactly, so the layer never mixes its botocore with the runtime's
    # boto3 and s3transfer
    versions = {}
    for name in ("boto3", "botocore", "s3transfer"):
        assert name in pins, f"{name} is not pinned"
        specifiers = list(pins[name].specifier)
        assert len(specifiers) == 1 and specifiers[0].operator == "==", pins[name]
        versions[name] = specifiers[0].version
    # AND the pinned boto3 accepts the pinned botocore and s3transfer (the set the tests run against)
    assert importlib.metadata.version("boto3") == versions["boto3"]
    for requirement in map(Requirement, importlib.metadata.requires("boto3") or []):
        if requirement.name in ("botocore", "s3transfer") and requirement.marker is None:
            assert requirement.specifier.contains(versions[requirement.name]), (requirement, versions)


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: resource["Properties"] for name, resource in template["Resources"].items()
            if resource["Type"] == "AWS::Serverless::Function"}  # fmt: skip


def _environment(template: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """The variables a function gets: the Globals', then its own."""
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    return {**shared, **properties.get("Environment", {}).get("Variables", {})}


def _settings_classes(properties: dict[str, Any]) -> set[type]:
    """The settings classes a function's code loads (``*_settings()`` in its handler, and in the API's module)."""
    import typing

    from spaceport.cloud import settings

    code = (ROOT / properties["CodeUri"] / "app.py").read_text(encoding="utf-8")
    if "spaceport.cloud.api" in code:
        code += (ROOT / "src/spaceport/cloud/api.py").read_text(encoding="utf-8")
    loaders = set(re.findall(r"\b(\w+_settings)\(\)", code))
    return {typing.get_type_hints(getattr(settings, name).__wrapped__)["return"] for name in loaders}


def test_every_function_gets_every_variable_its_settings_require():
    # GIVEN the template and each function's code
    template = load_template()
    for name, properties in _functions(template).items():
        environment = _environment(template, properties)
        # WHEN the settings classes it loads are read THEN each required variable is in its environment
        for model in _settings_classes(properties):
            required = {str(field.alias) for field in model.model_fields.values() if field.is_required()}
            missing = sorted(required - set(environment))
            assert not missing, f"{name} loads {model.__name__} without {missing}"


def test_every_functions_environment_stays_well_under_lambdas_4_kb():
    # GIVEN each function's variables, with parameters at their defaults and other references at a generous 200 bytes
    template = load_template()
    parameters = template["Parameters"]

    def size(value: Any) -> int:
        if isinstance(value, dict) and "Ref" in value and value["Ref"] in parameters:
            return len(str(parameters[value["Ref"]].get("Default", "")))
        return 200 if isinstance(value, dict) else len(str(value))

    for name, properties in _functions(template).items():
        total = sum(len(key) + size(value) for key, value in _environment(template, properties).items())
        # THEN each leaves room for an operator's larger price table (Lambda's limit is 4 KB for all variables)
        assert total <= 3_000, f"{name}: about {total} bytes of environment"
