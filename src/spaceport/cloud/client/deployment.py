"""``spaceport cloud init``: find the deployed stack by name, read its outputs, and check what a first job needs:
that the caller may invoke the API, that each stage's image tag is in its repository, and the account's GPU training
quota where Service Quotas can say it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from spaceport.cloud.client.api import JobsApi
from spaceport.cloud.client.config import Deployment
from spaceport.cloud.client.errors import ApiForbiddenError, CloudError
from spaceport.cloud.client.session import AwsSession

STAGES = ("sfm", "train", "compress")


@dataclass(frozen=True)
class Check:
    """One thing ``init`` looked at: ``ok`` True, False (what to do is in ``detail``) or None (could not tell)."""

    name: str
    ok: bool | None
    detail: str


def find_deployment(session: AwsSession, stack_name: str) -> Deployment:
    """The stack's outputs and the parameters the client needs.

    Raises:
        CloudError: no such stack in this account and region, or it lacks the outputs of ``template.yaml``.
    """
    try:
        stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    except (ClientError, BotoCoreError) as error:
        raise CloudError(
            f"stack {stack_name} not found in {session.region} ({error}): deploy it with `sam deploy`, or pass "
            "--stack-name, --profile and --region"
        ) from error
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    parameters = {item["ParameterKey"]: item.get("ParameterValue", "") for item in stack.get("Parameters", [])}
    missing = [name for name in ("ApiUrl", "DataBucketName") if name not in outputs]
    if missing:
        raise CloudError(f"stack {stack_name} has no output {', '.join(missing)}: is it a Spaceport stack?")
    return Deployment(
        stack=stack_name,
        region=session.region,
        api_url=outputs["ApiUrl"],
        bucket=outputs["DataBucketName"],
        build_project=outputs.get("ImageBuildProjectName", ""),
        repositories={
            stage: outputs[f"{stage.title()}RepositoryUri"]
            for stage in STAGES
            if f"{stage.title()}RepositoryUri" in outputs
        },  # fmt: skip
        image_tags={stage: parameters.get(f"{stage.title()}ImageTag", "") for stage in STAGES},
        train_instance_type=parameters.get("TrainInstanceType", ""),
    )


def check_api(deployment: Deployment, session: AwsSession) -> Check:
    try:
        JobsApi(deployment.api_url, session).list_jobs(limit=1)
    except ApiForbiddenError as error:
        return Check("API", False, str(error))
    except CloudError as error:
        return Check("API", False, str(error))
    return Check("API", True, f"{deployment.api_url} answers this caller (execute-api:Invoke)")


def check_images(deployment: Deployment, session: AwsSession) -> list[Check]:
    ecr, checks = session.client("ecr"), []
    for stage, uri in deployment.repositories.items():
        repository, tag = uri.split("/", 1)[1], deployment.image_tags.get(stage) or "?"
        try:
            found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}]).get("imageDetails")
        except ClientError as error:
            found = None if error.response["Error"]["Code"] == "ImageNotFoundException" else error
        if isinstance(found, ClientError):
            checks.append(Check(f"{stage} image", None, f"{repository}:{tag} could not be looked up: {found}"))
        elif found:
            checks.append(Check(f"{stage} image", True, f"{repository}:{tag}"))
        else:
            advice = "build it: `spaceport cloud build-images --wait`"
            checks.append(Check(f"{stage} image", False, f"{repository}:{tag} is missing; {advice}"))
    return checks


def training_quota_name(instance_type: str, spot: bool = False) -> str:
    """The Service Quotas name (Amazon SageMaker) of the quota a training job on ``instance_type`` uses."""
    return f"{instance_type} for {'spot ' if spot else ''}training job usage"


def check_gpu_quota(deployment: Deployment, session: AwsSession) -> Check:
    """The account's quota for training on the deployment's GPU instance, where Service Quotas lists it."""
    name = training_quota_name(deployment.train_instance_type)
    if not deployment.train_instance_type:
        return Check("GPU quota", None, "the stack does not say its TrainInstanceType")
    try:
        value = find_quota(session.client("service-quotas"), "sagemaker", name)
    except (ClientError, BotoCoreError) as error:
        reason = str(error).splitlines()[0][:160]
        return Check("GPU quota", None, f'Service Quotas could not say "{name}" ({reason}); check it in the console')
    if value is None:
        return Check("GPU quota", None, f'Service Quotas does not list "{name}"; check it in the console')
    if value < 1:
        return Check("GPU quota", False, f'"{name}" is {value:g}: request an increase in Service Quotas (SageMaker)')
    return Check("GPU quota", True, f'"{name}" is {value:g}')


def find_quota(quotas: Any, service_code: str, name: str) -> float | None:
    """The applied value of the quota called ``name`` (else its default), or None when it is not listed."""
    for listing in ("list_service_quotas", "list_aws_default_service_quotas"):
        for page in quotas.get_paginator(listing).paginate(ServiceCode=service_code):
            for quota in page.get("Quotas", []):
                if quota.get("QuotaName") == name:
                    return float(quota["Value"])
    return None


def check_deployment(deployment: Deployment, session: AwsSession) -> list[Check]:
    return [check_api(deployment, session), *check_images(deployment, session), check_gpu_quota(deployment, session)]
