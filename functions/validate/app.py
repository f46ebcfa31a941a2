"""The Validate task: is the upload usable photos within the limits? Publishes them for the SfM stage."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from spaceport.cloud.models import ValidateInput
from spaceport.cloud.settings import validator_settings
from spaceport.cloud.validate import validate_job

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=ValidateInput)
def lambda_handler(event: ValidateInput, context: LambdaContext) -> dict:
    logger.append_keys(job_id=event.job_id)
    figures = validate_job(validator_settings(), event.job_id)
    metrics.add_metric(name="ImagesAccepted", unit=MetricUnit.Count, value=figures["images"])
    return figures
