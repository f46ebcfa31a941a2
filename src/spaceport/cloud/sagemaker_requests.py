"""Build the CreateProcessingJob / CreateTrainingJob requests for each stage (checked against botocore's
SageMaker model in the tests) and turn Describe*Job answers into stage results.

S3 layout under the data bucket, per job: ``jobs/<id>/images/`` (validated photos), ``jobs/<id>/sfm/``,
``jobs/<id>/train/<sagemaker job>/output/model.tar.gz``, ``jobs/<id>/compress/``; spot checkpoints under
``checkpoints/<id>/``, outside ``jobs/`` so that a lifecycle rule (S3 filters by prefix only) can expire them
and nothing else.
"""

from __future__ import annotations

from typing import Any

from spaceport.cloud.models import Preset, Stage
from spaceport.cloud.settings import StageSettings
from spaceport.train.progress import METRIC_DEFINITIONS

PROCESSING_ROOT = "/opt/ml/processing"
CHECKPOINT_PATH = "/opt/ml/checkpoints"
# The template's lifecycle rule "expire-spot-checkpoints" filters on this prefix.
CHECKPOINTS_PREFIX = "checkpoints/"
# SageMaker's metric names (train:psnr, test:ssim, ...) as the job record's figures: "train:" dropped, "test:"
# kept as a prefix, so the held-out scores never overwrite the training ones.
FIGURE_PREFIXES = {"train:": "", "test:": "test_"}
COUNT_FIGURES = ("iteration", "gaussians")


def job_prefix(bucket: str, job_id: str, part: str) -> str:
    return f"s3://{bucket}/jobs/{job_id}/{part}/"


def images_prefix(bucket: str, job_id: str) -> str:
    return job_prefix(bucket, job_id, "images")


def checkpoints_prefix(bucket: str, job_id: str) -> str:
    return f"s3://{bucket}/{CHECKPOINTS_PREFIX}{job_id}/"


def _tags(job_id: str, stage: Stage) -> list[dict[str, str]]:
    return [{"Key": "spaceport:job", "Value": job_id}, {"Key": "spaceport:stage", "Value": stage.value}]


def _processing_request(
    settings: StageSettings,
    *,
    name: str,
    job_id: str,
    stage: Stage,
    image_uri: str,
    input_name: str,
    input_uri: str,
    instance_type: str,
    volume_gb: int,
    max_runtime_s: int,
    environment: dict[str, str] | None = None,
    arguments: list[str] | None = None,
    extra_inputs: dict[str, str] | None = None,
) -> dict[str, Any]:
    app: dict[str, Any] = {"ImageUri": image_uri} | ({"ContainerArguments": arguments} if arguments else {})
    inputs = {input_name: input_uri, **(extra_inputs or {})}
    return {
        "ProcessingJobName": name,
        "RoleArn": settings.role_arn,
        "AppSpecification": app,
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": instance_type, "VolumeSizeInGB": volume_gb}
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_s},
        "ProcessingInputs": [
            {
                "InputName": channel,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": f"{PROCESSING_ROOT}/input/{channel}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            }
            for channel, uri in inputs.items()
        ],
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "output",
                    "S3Output": {
                        "S3Uri": job_prefix(settings.data_bucket, job_id, stage.value),
                        "LocalPath": f"{PROCESSING_ROOT}/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
        "Environment": {"SPACEPORT_JOB_ID": job_id, **(environment or {})},
        "Tags": _tags(job_id, stage),
    }


def sfm_request(
    settings: StageSettings,
    name: str,
    job_id: str,
    image_uri: str,
    options: dict[str, Any] | None = None,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """CreateProcessingJob for structure from motion over the validated photos, with the validate Lambda's limits
    (the stage checks the photos again with the same validator: it must reach the same verdict); a job whose
    options say ``"georef": false`` keeps SfM's own frame (``--no-georef``). ``resources`` (the job record's, chosen
    for its size) override the configured instance type and volume."""
    resources = resources or {}
    return _processing_request(
        settings,
        name=name,
        job_id=job_id,
        stage=Stage.SFM,
        image_uri=image_uri,
        input_name="images",
        input_uri=images_prefix(settings.data_bucket, job_id),
        instance_type=resources.get("instance_type", settings.sfm_instance_type),
        volume_gb=int(resources.get("volume_gb", settings.sfm_volume_gb)),
        max_runtime_s=settings.sfm_max_runtime_s,
        environment=settings.limits_environment(),
        arguments=["--no-georef"] if (options or {}).get("georef") is False else None,
    )


def compress_request(
    settings: StageSettings,
    name: str,
    job_id: str,
    image_uri: str,
    model_uri: str,
    resources: dict[str, Any] | None = None,
    georef_uri: str | None = None,
) -> dict:
    """CreateProcessingJob that turns the trained model.tar.gz into SOG and the exports (glTF, SPZ and, for a scene
    registered by GPS, 3D Tiles from the sfm stage's ``georef_uri``), on the job's ``resources`` if recorded."""
    resources = resources or {}
    return _processing_request(
        settings,
        name=name,
        job_id=job_id,
        stage=Stage.COMPRESS,
        image_uri=image_uri,
        input_name="model",
        input_uri=model_uri,
        instance_type=resources.get("instance_type", settings.compress_instance_type),
        volume_gb=int(resources.get("volume_gb", settings.compress_volume_gb)),
        max_runtime_s=settings.compress_max_runtime_s,
        extra_inputs={"georef": georef_uri} if georef_uri else None,
    )


def hyperparameters(settings: StageSettings, options: dict[str, Any]) -> dict[str, str]:
    """SageMaker passes hyperparameters as strings; only options the user set override the preset."""
    values = {"preset": str(options.get("preset") or Preset(settings.default_preset).value), "device": settings.device}
    for key in ("iterations", "sh_degree", "max_gaussians"):
        if options.get(key) is not None:
            values[key] = str(options[key])
    return values


def train_request(
    settings: StageSettings, name: str, job_id: str, image_uri: str, options: dict[str, Any]
) -> dict[str, Any]:
    """CreateTrainingJob on a GPU instance; with managed spot, checkpoints let an interrupted job resume."""
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": settings.train_max_runtime_s}
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": settings.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRIC_DEFINITIONS,
        },
        "HyperParameters": hyperparameters(settings, options),
        "InputDataConfig": [
            {
                "ChannelName": "sfm",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": job_prefix(settings.data_bucket, job_id, Stage.SFM.value),
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": job_prefix(settings.data_bucket, job_id, Stage.TRAIN.value)},
        "ResourceConfig": {
            "InstanceType": settings.train_instance_type,
            "InstanceCount": 1,
            "VolumeSizeInGB": settings.train_volume_gb,
        },
        "StoppingCondition": stopping,
        "Environment": {"SPACEPORT_JOB_ID": job_id},
        "Tags": _tags(job_id, Stage.TRAIN),
    }
    if settings.spot_training:
        stopping["MaxWaitTimeInSeconds"] = longest_training_seconds(settings)
        request["EnableManagedSpotTraining"] = True
        request["CheckpointConfig"] = {
            "S3Uri": checkpoints_prefix(settings.data_bucket, job_id),
            "LocalPath": CHECKPOINT_PATH,
        }
    return request


def longest_training_seconds(settings: StageSettings) -> int:
    """How long SageMaker may take over a training job: its runtime, plus the wait for spot capacity with spot.

    The state machine's "Set the stage time limits" computes the same sum from the same template parameters.
    """
    if not settings.spot_training:
        return settings.train_max_runtime_s
    return settings.train_max_runtime_s + settings.spot_capacity_wait_s


def final_metrics(description: dict[str, Any]) -> dict[str, float | int]:
    """The training job's last logged figures, as SageMaker reports them for the metric definitions above."""
    figures: dict[str, float | int] = {}
    for metric in description.get("FinalMetricDataList", []):
        name = metric["MetricName"]
        for prefix, replacement in FIGURE_PREFIXES.items():
            if name.startswith(prefix):
                name = replacement + name.removeprefix(prefix)
        value = float(metric["Value"])
        figures[name] = int(value) if name in COUNT_FIGURES else value
    return figures
