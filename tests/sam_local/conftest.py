"""A local AWS (moto's server in a container) and ``sam local invoke``, for the tests of the built functions.

Network: sam starts each Lambda container on Docker's default bridge and ignores ``--docker-network host``; given a
network by name, it connects the container to it. So moto's server runs in a container on a network of its own,
reached by the functions as ``http://<its name>:5000`` and by this process through a port published on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..containers.engine import docker, require_engine, require_image, unavailable
from .stack import SETTINGS, reset_server

REPO = Path(__file__).resolve().parents[2]
SAM = REPO / ".tools" / "bin" / "sam"
BUILT_TEMPLATE = REPO / ".aws-sam" / "build" / "template.yaml"
LAMBDA_STANDIN = "spaceport-local/lambda-python:3.11"
LAMBDA_PUBLIC = "public.ecr.aws/lambda/python:3.11-x86_64"


def moto_image() -> str:
    """`make images` tags moto's server with the version of the moto these tests run in process."""
    from importlib.metadata import version

    return f"spaceport-local/moto:{version('moto')}"


@dataclass(frozen=True)
class LocalAws:
    """moto's server in a container on its own Docker network."""

    network: str
    container: str
    port: int

    @property
    def endpoint(self) -> str:
        """Where this process reaches it."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint_for_functions(self) -> str:
        """Where the Lambda containers reach it."""
        return f"http://{self.container}:5000"

    def reset(self, executes: bool) -> None:
        """An empty account; Step Functions executions really run only where the scenario resumes one."""
        reset_server(self.endpoint, executes)

    def wait_until_up(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2) as answer:  # noqa: S310
                    answer.read()
                return
            except OSError:
                if time.monotonic() > deadline:
                    logs = docker("logs", self.container).stderr[-2000:]
                    pytest.fail(f"moto's server did not come up: {logs}")
                time.sleep(0.2)


@pytest.fixture(autouse=True)
def forget_clients():
    """The tests point spaceport.cloud's cached clients and settings at one account or another: drop them after."""
    yield
    from spaceport.cloud import aws, settings

    aws.reset()
    settings.clear_cache()


@pytest.fixture(scope="session")
def local_aws():
    require_engine()
    image = moto_image()
    require_image(image)
    name = f"spaceport-sam-local-{os.getpid()}"
    docker("network", "create", name, check=True)
    started = docker(
        "run", "-d", "--rm", "--name", f"{name}-moto", "--network", name, "-p", "127.0.0.1::5000", image
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        port = int(docker("port", f"{name}-moto", "5000/tcp", check=True).stdout.split(":")[-1])
        aws = LocalAws(network=name, container=f"{name}-moto", port=port)
        aws.wait_until_up()
        yield aws
    finally:
        docker("rm", "-f", f"{name}-moto")
        docker("network", "rm", name)


@pytest.fixture(scope="session")
def sam_invoke(local_aws: LocalAws, tmp_path_factory):
    """``sam local invoke FUNCTION -e events/EVENT`` against the local AWS; returns the function's answer."""
    if not SAM.exists():
        unavailable(f"{SAM} is missing: run `make setup-tools`")
    if not BUILT_TEMPLATE.exists():
        unavailable("the functions are not built: run `make sam-build`")
    # Only files are sources, and bytecode is not one: the in-process tests that run first write
    # functions/*/__pycache__ after the build, which also changes the folder that holds it.
    functions = [path for path in (REPO / "functions").rglob("*") if path.is_file() and "__pycache__" not in path.parts]
    sources = [REPO / "template.yaml", *functions, *(REPO / "src" / "spaceport").rglob("*.py")]
    newest = max(sources, key=lambda path: path.stat().st_mtime)
    if newest.stat().st_mtime > BUILT_TEMPLATE.stat().st_mtime:
        pytest.fail(f"{newest.relative_to(REPO)} changed after `sam build`: run `make sam-build`", pytrace=False)
    if docker("image", "inspect", LAMBDA_STANDIN).returncode == 0:
        runtime = ["--invoke-image", LAMBDA_STANDIN]
    elif docker("image", "inspect", LAMBDA_PUBLIC).returncode == 0:
        runtime = []
    else:
        unavailable(f"no Lambda runtime image ({LAMBDA_PUBLIC} or {LAMBDA_STANDIN}): run `make images`")
    env_file = tmp_path_factory.mktemp("sam") / "env.json"
    env_file.write_text(json.dumps({"Parameters": {**SETTINGS, "AWS_ENDPOINT_URL": local_aws.endpoint_for_functions}}))
    # Only what sam needs: sam gives a function the value of any variable its template declares from sam's own
    # environment, and this process's environment holds the in-process run's settings.
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "SAM_CLI_TELEMETRY": "0",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # Before each invoke sam asks STS for the account id; without AWS it retries for ~10 s, moto answers at once.
        "AWS_ENDPOINT_URL_STS": local_aws.endpoint,
        **{key: os.environ[key] for key in ("DOCKER_HOST",) if key in os.environ},
    }

    def invoke(function: str, event: str) -> Any:
        command = [
            str(SAM), "local", "invoke", function, "-e", f"events/{event}", "--env-vars", str(env_file),
            "--docker-network", local_aws.network, *runtime, "--skip-pull-image", "--region", "us-east-1",
        ]  # fmt: skip
        done = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=300)
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        assert done.returncode == 0 and lines, f"sam local invoke failed ({done.returncode}): {done.stderr[-4000:]}"
        return json.loads(lines[-1])

    return invoke
