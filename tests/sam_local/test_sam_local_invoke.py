"""Every function, built by `sam build`, answers its ``events/`` file under ``sam local invoke`` in a Lambda container,
against moto's server, exactly as its handler does in process against moto's mock: the same answer and the same
changes to the account (job records, objects, executions, SageMaker jobs, status events, notifications), and what
the in-process tests (tests/cloud) expect of it."""

from __future__ import annotations

from typing import Any

import pytest

from ..cloud.harness import FakeContext, load_event, load_handler, load_template
from .scenarios import SCENARIOS, Scenario, normalise
from .stack import SETTINGS, create_stack, observe, settle

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def use_account(monkeypatch: pytest.MonkeyPatch, endpoint: str | None) -> None:
    """The functions' settings in this process, boto3 pointed at ``endpoint`` (None: moto's in-process mock)."""
    from spaceport.cloud import aws, settings

    for key, value in SETTINGS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    if endpoint:
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for key, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "spaceport",
        "POWERTOOLS_METRICS_NAMESPACE": "Spaceport",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    aws.reset()
    settings.clear_cache()


def handler_name(function: str) -> str:
    """functions/<name>/ from the function's CodeUri in template.yaml."""
    return load_template()["Resources"][function]["Properties"]["CodeUri"].rstrip("/").rsplit("/", 1)[1]


def call_in_process(scenario: Scenario) -> Any:
    """The handler's answer, an exception shaped as the Lambda runtime reports it."""
    try:
        return load_handler(handler_name(scenario.function)).lambda_handler(load_event(scenario.event), FakeContext())
    except Exception as error:  # the runtime reports any exception this way
        return {"errorType": type(error).__name__, "errorMessage": str(error)}


def as_sam_local_runs(monkeypatch: pytest.MonkeyPatch, function: str) -> None:
    """The Lambda runtime's own variables that the handlers read, with the values `sam local invoke` gives them
    (on AWS: the group /aws/lambda/<function name>, a stream per execution environment)."""
    monkeypatch.setenv("AWS_LAMBDA_LOG_GROUP_NAME", f"aws/lambda/{function}")
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "$LATEST")


def run_in_process(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, dict[str, Any]]:
    from moto import mock_aws

    use_account(monkeypatch, None)
    as_sam_local_runs(monkeypatch, scenario.function)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": scenario.executes}}):
        use_account(monkeypatch, None)
        create_stack()
        scenario.seed()
        result = call_in_process(scenario)
        if scenario.executes:
            settle()
        return result, observe()


@pytest.mark.parametrize("event", sorted(SCENARIOS))
def test_function_answers_its_event_under_sam_local_invoke_as_in_process(
    event: str, local_aws, sam_invoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = SCENARIOS[event]
    # GIVEN the event's state in moto's in-process mock, and what the handler answers and changes there, which is
    # what the in-process tests expect
    expected, expected_changes = run_in_process(scenario, monkeypatch)
    scenario.check(expected, expected_changes)
    # AND the same state in moto's server
    local_aws.reset(executes=scenario.executes)
    use_account(monkeypatch, local_aws.endpoint)
    create_stack()
    scenario.seed()

    # WHEN sam local invoke runs the built function with the event in a Lambda container
    answer = sam_invoke(scenario.function, event)
    if scenario.executes:
        settle()
    changes = observe()

    # THEN it answers and changes what the handler does in process
    scenario.check(answer, changes)
    assert normalise(answer) == normalise(expected)
    assert normalise(changes) == normalise(expected_changes)
