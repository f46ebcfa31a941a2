"""On a schedule: reclaim the slots of executions that ended without giving them back, grant what is free, and
describe again the SageMaker jobs whose billable time was not reported yet."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from spaceport.cloud import billing
from spaceport.cloud.settings import sweep_settings
from spaceport.cloud.slots import sweep

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict:
    logger.append_keys(scheduled_at=event.time)
    settings = sweep_settings()
    result = sweep(settings)
    result["billing"] = billing.recheck(settings)
    metrics.add_metric(name="SlotsReclaimed", unit=MetricUnit.Count, value=len(result["reclaimed"]))
    metrics.add_metric(name="QueuePlacesDropped", unit=MetricUnit.Count, value=len(result["dropped"]))
    metrics.add_metric(name="BillingRechecked", unit=MetricUnit.Count, value=len(result["billing"]))
    return result
