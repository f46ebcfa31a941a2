"""Start a job when its upload completes (S3 Object Created, delivered by EventBridge)."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from spaceport.cloud.settings import execution_settings
from spaceport.cloud.trigger import handle_object_created

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    detail = event.detail
    result = handle_object_created(execution_settings(), detail["bucket"]["name"], detail["object"]["key"])
    if result["started"]:
        metrics.add_metric(name="JobsStarted", unit=MetricUnit.Count, value=1)
    return result
