"""Resume the waiting execution from a SageMaker Processing / Training job state change event."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from spaceport.cloud.pipeline import complete_stage
from spaceport.cloud.settings import completion_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    logger.append_keys(detail_type=event.detail_type)
    result = complete_stage(completion_settings(), event.detail)
    logger.info("state change handled", extra=result)
    return result
