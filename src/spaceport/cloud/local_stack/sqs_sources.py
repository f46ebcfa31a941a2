"""Lambda's SQS event sources of the template's functions, run in this process against moto's queues.

Lambda polls the queue, invokes the function with a batch of messages (``{"Records": [...]}``), then deletes the
batch, except, with ``ReportBatchItemFailures``, the messages the function names in ``batchItemFailures``; a
function that raises leaves the whole batch, which SQS delivers again once its visibility timeout passes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("spaceport.local_stack")

BATCH = 10


@dataclass(frozen=True)
class QueueSource:
    """One SQS event of a function: the queue's logical id and the function it invokes."""

    queue: str
    function: str
    partial_failures: bool


def template_queue_sources(template: dict[str, Any]) -> list[QueueSource]:
    """Every ``SQS`` event of the template's functions (the queue given as ``!GetAtt Queue.Arn``)."""
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                properties = event["Properties"]
                queue = properties["Queue"]["GetAtt"].split(".")[0]
                partial = "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", [])
                found.append(QueueSource(queue, logical_id, partial))
    return found


def _record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """A message as Lambda hands it to the function."""
    return {"messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": message.get("Attributes", {}), "messageAttributes": {}, "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn}  # fmt: skip


class QueuePollers:
    """A thread per event source, polling its queue and invoking the function with each batch."""

    def __init__(self, sqs: Callable[[], Any]) -> None:
        self._sqs = sqs
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add(self, source: QueueSource, url: str, handler: Callable[[dict[str, Any]], Any]) -> None:
        thread = threading.Thread(target=self._poll, args=(source, url, handler), name=source.queue, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _poll(self, source: QueueSource, url: str, handler: Callable[[dict[str, Any]], Any]) -> None:
        sqs = self._sqs()
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=BATCH, WaitTimeSeconds=1)
            except Exception:  # the server is going away with the stack
                if self._stop.is_set():
                    return
                raise
            batch = messages.get("Messages", [])
            if batch:
                self._invoke(sqs, source, url, arn, batch, handler)

    def _invoke(self, sqs: Any, source: QueueSource, url: str, arn: str, batch: list[dict], handler: Any) -> None:
        try:
            answer = handler({"Records": [_record(message, arn) for message in batch]}) or {}
        except Exception:
            logger.exception("%s: the batch failed; SQS delivers it again", source.function)
            return
        failures = answer.get("batchItemFailures", []) if source.partial_failures else []
        failed = {item["itemIdentifier"] for item in failures}
        for message in batch:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
