"""Give back a stage's slot (or, on the failure path, every slot and queue place of the execution); grant the next."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from spaceport.cloud.models import ReleaseSlotInput
from spaceport.cloud.settings import slot_settings
from spaceport.cloud.slots import release_slot

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ReleaseSlotInput)
def lambda_handler(event: ReleaseSlotInput, context: LambdaContext) -> dict:
    logger.append_keys(job_id=event.job_id, stage=event.stage.value if event.stage else "all")
    result = release_slot(slot_settings(), event)
    metrics.add_metric(name="SlotsReleased", unit=MetricUnit.Count, value=len(result["released"]))
    logger.info("slots released", extra=result)
    return result
