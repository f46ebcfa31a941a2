"""A "Wait for a <stage> slot" task: queue the execution in upload order; the grant of a slot returns its token."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from spaceport.cloud.models import SlotRequest
from spaceport.cloud.settings import slot_settings
from spaceport.cloud.slots import wait_for_slot

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=SlotRequest)
def lambda_handler(event: SlotRequest, context: LambdaContext) -> dict:
    logger.append_keys(job_id=event.job_id, stage=event.stage.value)
    result = wait_for_slot(slot_settings(), event)
    metrics.add_dimension(name="stage", value=event.stage.value)
    queued = "queued" in result
    metrics.add_metric(name="JobsQueued" if queued else "SlotsGrantedAtOnce", unit=MetricUnit.Count, value=1)
    logger.info("slot requested", extra=result)
    return result
