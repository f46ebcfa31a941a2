"""Fixtures for the cloud tests: environment, a moto account, and the wired-up World."""

from __future__ import annotations

import functools
import io
import zipfile

import pytest
from moto import mock_aws

from .harness import ACCOUNT, BUCKET, REGION, SLOTS_TABLE, TABLE, World, load_template

STATE_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:spaceport-pipeline"


@functools.cache
def instance_prices() -> str:
    """The template's InstancePrices default, read once: every test here sets it, and parsing template.yaml takes a
    fifth of a second."""
    return load_template()["Parameters"]["InstancePrices"]["Default"]


@pytest.fixture(autouse=True)
def cloud_env(monkeypatch: pytest.MonkeyPatch) -> None:
    ecr = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"
    values = {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "spaceport",
        "POWERTOOLS_METRICS_NAMESPACE": "Spaceport",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "JOBS_TABLE_NAME": TABLE,
        "DATA_BUCKET_NAME": BUCKET,
        "NOTIFICATION_TOPIC_ARN": f"arn:aws:sns:{REGION}:{ACCOUNT}:spaceport",
        "EVENT_BUS_NAME": "default",
        "STATE_MACHINE_ARN": STATE_MACHINE_ARN,
        "DEFAULT_PRESET": "default",
        "UPLOAD_URL_EXPIRY_SECONDS": "900",
        "SAGEMAKER_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/spaceport-sagemaker",
        "SFM_REPOSITORY_URI": f"{ecr}/spaceport-sfm",
        "TRAIN_REPOSITORY_URI": f"{ecr}/spaceport-train",
        "COMPRESS_REPOSITORY_URI": f"{ecr}/spaceport-compress",
        "SFM_IMAGE_TAG": "0.1.0",
        "TRAIN_IMAGE_TAG": "0.1.0",
        "COMPRESS_IMAGE_TAG": "0.1.0",
        "SFM_INSTANCE_TYPE": "ml.c5.4xlarge",
        "TRAIN_INSTANCE_TYPE": "ml.g5.xlarge",
        "COMPRESS_INSTANCE_TYPE": "ml.m5.2xlarge",
        "SFM_LARGEST_INSTANCE_TYPE": "ml.c5.4xlarge",
        "COMPRESS_LARGEST_INSTANCE_TYPE": "ml.m5.2xlarge",
        "SFM_VOLUME_GB": "50",
        "TRAIN_VOLUME_GB": "50",
        "COMPRESS_VOLUME_GB": "30",
        "SFM_MAX_RUNTIME_SECONDS": "7200",
        "TRAIN_MAX_RUNTIME_SECONDS": "14400",
        "COMPRESS_MAX_RUNTIME_SECONDS": "3600",
        "SPOT_TRAINING": "false",
        "SPOT_CAPACITY_WAIT_SECONDS": "14400",
        "QUOTA_WAIT_SECONDS": "21600",
        "SLOTS_TABLE_NAME": SLOTS_TABLE,
        "MAX_CONCURRENT_SFM_JOBS": "2",
        "MAX_CONCURRENT_TRAIN_JOBS": "1",
        "MAX_CONCURRENT_COMPRESS_JOBS": "2",
        "SPACEPORT_MAX_IMAGES": "100",
        "SPACEPORT_MIN_IMAGES": "3",
        "SPACEPORT_MAX_ARCHIVE_BYTES": "10000000",
        "SPACEPORT_MAX_EXPANDED_BYTES": "50000000",
        "SPACEPORT_MAX_IMAGE_PIXELS": "1000000",
        "INSTANCE_PRICES": instance_prices(),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    from spaceport.cloud import aws, settings

    aws.reset()
    settings.clear_cache()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        from spaceport.cloud import aws

        aws.reset()
        yield World(monkeypatch)


def photo_zip(count: int = 4) -> bytes:
    """A zip of distinct small JPEG photos the validator accepts."""
    from PIL import Image

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(count):
            image = Image.new("RGB", (96, 96), (40 * index % 256, 90, 200 - 30 * index))
            for x in range(0, 96, 8):
                image.putpixel((x, (x * (index + 3)) % 96), (255, 255, 255))
            data = io.BytesIO()
            image.save(data, "JPEG", quality=90)
            archive.writestr(f"IMG_{index:04d}.jpg", data.getvalue())
    return buffer.getvalue()
