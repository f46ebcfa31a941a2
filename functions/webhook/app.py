"""Post a job's status changes to its webhook, signed, in order: on each change (EventBridge) and on each due retry
(SQS); every delivery's outcome goes into the job record."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from spaceport.cloud.settings import webhook_settings
from spaceport.cloud.webhook import handle

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result = handle(webhook_settings(), event)
    logger.info("webhook deliveries handled", extra=result)
    return result
