"""EventBridge's rules of the template, delivering to our functions in this process.

moto's EventBridge matches events against rules and delivers to SQS targets, but never invokes a Lambda target.
Each of the template's ``EventBridgeRule`` events becomes a rule with its own pattern on the default bus, targeting
a queue; a thread per queue hands each event to the function's handler, as EventBridge invokes a function
asynchronously: a failed invocation is tried again (Lambda retries an asynchronous invocation twice), then dropped
with a log line (the deployed stack keeps it in a dead-letter queue).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("spaceport.local_stack")

ASYNC_ATTEMPTS = 3


@dataclass(frozen=True)
class Rule:
    """One EventBridge rule of a function: its name, pattern and the function it invokes."""

    name: str
    function: str
    pattern: dict[str, Any]


def template_rules(template: dict[str, Any], resources: dict[str, str]) -> list[Rule]:
    """Every ``EventBridgeRule`` event of the template's functions, ``!Ref`` of a resource filled from ``resources``."""
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event_name, event in resource["Properties"].get("Events", {}).items():
            if event["Type"] == "EventBridgeRule":
                text = json.dumps(event["Properties"]["Pattern"])
                for ref, value in resources.items():
                    text = text.replace(json.dumps({"Ref": ref}), json.dumps(value))
                found.append(Rule(f"{logical_id}-{event_name}", logical_id, json.loads(text)))
    return found


class RuleDeliveries:
    """The rules on moto's bus, each with a queue, and the threads that invoke the functions from the queues."""

    def __init__(self, sqs: Callable[[], Any], events: Callable[[], Any]) -> None:
        self._sqs, self._events = sqs, events
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.delivered: list[tuple[str, dict[str, Any]]] = []

    def add(self, rule: Rule, handler: Callable[[dict[str, Any]], Any]) -> None:
        sqs = self._sqs()
        url = sqs.create_queue(QueueName=rule.name[:80])["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._events().put_rule(Name=rule.name, EventPattern=json.dumps(rule.pattern))
        self._events().put_targets(Rule=rule.name, Targets=[{"Id": "function", "Arn": arn}])
        thread = threading.Thread(target=self._pump, args=(rule, url, handler), name=rule.name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _pump(self, rule: Rule, url: str, handler: Callable[[dict[str, Any]], Any]) -> None:
        sqs = self._sqs()
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            except Exception:  # the server is going away with the stack
                if self._stop.is_set():
                    return
                raise
            for message in messages.get("Messages", []):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                event = json.loads(message["Body"])
                self.delivered.append((rule.function, event))
                self._invoke(rule, handler, event)

    def _invoke(self, rule: Rule, handler: Callable[[dict[str, Any]], Any], event: dict[str, Any]) -> None:
        for attempt in range(1, ASYNC_ATTEMPTS + 1):
            try:
                handler(event)
                return
            except Exception:
                logger.exception("%s: invocation %d of %d failed", rule.function, attempt, ASYNC_ATTEMPTS)
                time.sleep(attempt)
        logger.error("%s: event dropped after %d attempts: %s", rule.function, ASYNC_ATTEMPTS, event.get("id"))
