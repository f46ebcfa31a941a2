"""A SageMaker stage's waitForTaskToken task: check the image, start the job, park the token."""

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from spaceport.cloud.models import StartStageInput
from spaceport.cloud.pipeline import start_stage
from spaceport.cloud.settings import stage_settings

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
@event_parser(model=StartStageInput)
def lambda_handler(event: StartStageInput, context: LambdaContext) -> dict:
    logger.append_keys(job_id=event.job_id, stage=event.stage.value)
    started = start_stage(stage_settings(), event)
    metrics.add_dimension(name="stage", value=event.stage.value)
    metrics.add_metric(name="StageStarted", unit=MetricUnit.Count, value=1)
    return started
