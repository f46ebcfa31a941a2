"""The stack as ``template.yaml`` declares it, read for a local account: the tables, the state machine's definition
with its substitutions filled in, and the environment the functions are deployed with.

The tests' moto harness and the local stack share these, so neither can drift from the template.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

# A source checkout: the functions, the state machine and the template live beside src/.
ROOT = Path(__file__).resolve().parents[4]
REGION = "us-east-1"
ACCOUNT = "123456789012"
BUCKET = "spaceport-data"
JOBS_TABLE = "spaceport-jobs"
SLOTS_TABLE = "spaceport-slots"
PIPELINE = "spaceport-pipeline"
TOPIC = "spaceport"
WEBHOOK_SECRET_NAME = "spaceport-webhook"  # noqa: S105  # nosec B105: a name, not the secret
REPOSITORIES = {"sfm": "spaceport-sfm", "train": "spaceport-train", "compress": "spaceport-compress"}


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, ...) as {"Fn": value} mappings."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(root: Path = ROOT) -> dict[str, Any]:
    """``template.yaml`` with its short-form tags kept as ``{"Ref": ...}``-style mappings."""
    # _CfnLoader is a SafeLoader subclass: no arbitrary objects.
    return yaml.load((root / "template.yaml").read_text(), Loader=_CfnLoader)  # noqa: S506  # nosec B506


def create_tables(dynamodb: Any, template: dict[str, Any], jobs: str = JOBS_TABLE, slots: str = SLOTS_TABLE) -> None:
    """The jobs and slots tables as the template declares them (keys, indexes, billing mode)."""
    for name, logical_id in ((jobs, "JobsTable"), (slots, "SlotsTable")):
        properties = template["Resources"][logical_id]["Properties"]
        fields = ("BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes")
        dynamodb.create_table(TableName=name, **{field: properties[field] for field in fields if field in properties})


def function_arn(logical_id: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{logical_id}"


def substitutions(
    template: dict[str, Any], region: str = REGION, account: str = ACCOUNT, parameters: dict[str, str] | None = None
) -> dict[str, str]:
    """DefinitionSubstitutions filled in: function ARNs by logical id, numbers from the parameters (their defaults
    unless ``parameters`` gives a value)."""
    params = template["Parameters"]
    given = parameters or {}
    values = {}
    for key, value in template["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"].items():
        if "GetAtt" in value:
            values[key] = function_arn(value["GetAtt"].split(".")[0], region, account)
        elif "Ref" in value:
            values[key] = str(given.get(value["Ref"], params[value["Ref"]]["Default"]))
        else:  # !If [UseSpot, spot wait, 0]: spot is off by default
            otherwise = value["If"][2]
            values[key] = str(params[otherwise["Ref"]]["Default"] if isinstance(otherwise, dict) else otherwise)
    return values


def fill_definition(values: dict[str, str], root: Path = ROOT) -> str:
    """``statemachine/pipeline.asl.json`` with its ``${...}`` substitutions filled (CloudFormation's job)."""
    text = (root / "statemachine" / "pipeline.asl.json").read_text()
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


def function_environment(
    template: dict[str, Any], resources: dict[str, str], parameters: dict[str, str] | None = None
) -> dict[str, str]:
    """Every variable the functions are deployed with (the Globals' and each function's), resolved for a local
    account: ``!Ref`` a parameter gives ``parameters``' value or its default, ``!Ref`` or ``!GetAtt`` a resource
    gives ``resources[logical id]`` (``resources["SfmRepository.RepositoryUri"]`` for an attribute); a variable that
    is ``AWS::NoValue`` is left out. All functions share one process here, so their variables must agree."""
    given = parameters or {}

    def resolve(name: str, value: Any) -> str | None:
        if not isinstance(value, dict):
            return str(value)
        if "Ref" in value:
            ref = value["Ref"]
            if ref == "AWS::NoValue":
                return None
            if ref in template["Parameters"]:
                return str(given.get(ref, template["Parameters"][ref]["Default"]))
            return resources[ref]
        if "GetAtt" in value:
            return resources[value["GetAtt"]]
        raise ValueError(f"{name}: cannot resolve {value} locally")

    declared = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for name, value in resource["Properties"].get("Environment", {}).get("Variables", {}).items():
            if declared.setdefault(name, value) != value:
                raise ValueError(f"{logical_id} sets {name} to {value}, another function to {declared[name]}")
    environment = {}
    for name, value in declared.items():
        resolved = resolve(name, value)
        if resolved is not None:
            environment[name] = resolved
    return environment
