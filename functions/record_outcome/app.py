"""Write a job's final status (SUCCEEDED, or FAILED with its stage and reason) and notify."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from spaceport.cloud.models import RecordOutcomeInput
from spaceport.cloud.pipeline import record_outcome
from spaceport.cloud.settings import common_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=RecordOutcomeInput)
def lambda_handler(event: RecordOutcomeInput, context: LambdaContext) -> dict:
    logger.append_keys(job_id=event.job_id)
    result = record_outcome(common_settings(), event)
    metrics.add_metric(name=f"Jobs{result['status'].title()}", unit=MetricUnit.Count, value=1)
    return result
