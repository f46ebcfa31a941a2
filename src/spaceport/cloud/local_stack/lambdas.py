"""Our functions, run in this process where AWS Lambda would run them, and the hooks that let moto's Step Functions
interpreter call them.

moto's interpreter would start a Lambda container for each ``lambda:invoke`` task (Docker, and an image per function);
``invoke`` runs the real handler instead and shapes its result, or its exception, exactly as the Lambda Python runtime
reports them (``errorType`` / ``errorMessage``), which the state machine's Retry and Catch match.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spaceport.cloud.local_stack.template import ACCOUNT, REGION, ROOT

FUNCTIONS = (
    "trigger",
    "validate",
    "wait_for_slot",
    "release_slot",
    "start_stage",
    "complete_stage",
    "record_outcome",
    "api",
    "sweep_slots",
    "webhook",
)
# What ``monkeypatch.setattr`` and ``Patches.setattr`` both are: (target, attribute name, value).
SetAttr = Callable[[Any, str, Any], None]


class LambdaContextStandIn:
    """The handler's ``context``: what powertools reads from Lambda's."""

    function_name = "spaceport-local"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:spaceport-local"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_handler(name: str, root: Path = ROOT) -> Any:
    """Import ``functions/<name>/app.py`` under a unique module name (every handler file is called app.py)."""
    spec = importlib.util.spec_from_file_location(f"spaceport_fn_{name}", root / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def function_name(function_arn: str) -> str:
    """``functions/<name>`` of a function ARN named after its logical id (``...:function:StartStageFunction``)."""
    logical_id = function_arn.rsplit(":", 1)[-1]
    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id.removesuffix("Function")).lower()


def invoke(handler: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """One synchronous Invoke as the Lambda service answers it: the handler's JSON result, or the runtime's report
    of an unhandled exception (``FunctionError``)."""
    try:
        result = handler.lambda_handler(payload, LambdaContextStandIn())
    except Exception as error:  # the Lambda runtime reports any exception this way
        body = {"errorType": type(error).__name__, "errorMessage": str(error)}
        return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": body}
    return {"StatusCode": 200, "Payload": json.loads(json.dumps(result))}


class ExecutionEnvironments:
    """Our functions loaded once, each serving one event at a time, as one Lambda execution environment does: a
    handler's module state (powertools' HTTP resolver keeps the event it is answering) never serves two events at
    once, whichever threads (the state machine's, EventBridge's, the API's) they come from."""

    def __init__(self, root: Path = ROOT) -> None:
        self.handlers = {name: load_handler(name, root) for name in FUNCTIONS}
        self._locks = {name: threading.Lock() for name in FUNCTIONS}

    def handle(self, name: str, event: dict[str, Any]) -> Any:
        """The handler's answer to ``event``; its exception, raised."""
        with self._locks[name]:
            return self.handlers[name].lambda_handler(event, LambdaContextStandIn())

    def invoke(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A synchronous Invoke, answered as the Lambda service answers it (see ``invoke``)."""
        with self._locks[name]:
            return invoke(self.handlers[name], payload)


def route_lambda_tasks(setattr: SetAttr, invoke_task: Callable[[dict[str, Any], str, Any], dict[str, Any]]) -> None:
    """Send every ``lambda:invoke`` task of moto's interpreter to ``invoke_task(parameters, region, credentials)``."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    setattr(lambda_eval_utils, "_invoke_lambda_function", invoke_task)


def fresh_token_per_attempt(setattr: SetAttr) -> None:
    """A retried waitForTaskToken attempt gets a new token and callback endpoint, as in Step Functions.

    moto makes one token when the state is entered and keeps it, with the outcome already sent for it, through the
    state's retries: a retried task would fail again at once with the first attempt's SendTaskFailure.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )

    original = state_task_service.StateTaskService._eval_execution

    def eval_execution(self: Any, env: Any) -> None:
        context = env.states.context_object
        retried = context.context_object_data.get("State", {}).get("RetryCount", 0) > 0
        waits = isinstance(self, StateTaskServiceCallback) and self._is_integration_pattern()
        if retried and waits and ResourceCondition.WaitForTaskToken in self._supported_integration_patterns:
            env.callback_pool_manager.add(context.update_task_token())
        original(self, env)

    setattr(state_task_service.StateTaskService, "_eval_execution", eval_execution)
