"""``spaceport cloud build-images``: this checkout's committed sources to the stack's CodeBuild project, which builds
the sfm, train and compress images (linux/amd64) and pushes them; ``--wait`` follows the build to its end."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spaceport.cloud.client.config import Deployment
from spaceport.cloud.client.errors import CloudError
from spaceport.cloud.client.session import AwsSession

SOURCE_KEY = "build/source.zip"
POLL_S = 15.0


def source_archive(checkout: Path, target: Path) -> list[str]:
    """``git archive`` of HEAD into ``target``; returns what is not in it (uncommitted changes), to warn about."""
    try:
        subprocess.run(["git", "-C", str(checkout), "archive", "--format=zip", "-o", str(target), "HEAD"],
                       check=True, capture_output=True, text=True)  # fmt: skip
        status = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                                check=True, capture_output=True, text=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise CloudError(f"{checkout} is not a git checkout of Spaceport: {detail.strip()}") from error
    return [line[3:] for line in status.stdout.splitlines()]


def start_build(session: AwsSession, deployment: Deployment, checkout: Path) -> tuple[str, list[str]]:
    """Upload the sources (boto3's transfer manager) and start the project; the build id and the uncommitted files."""
    if not deployment.build_project:
        raise CloudError(f"stack {deployment.stack} has no ImageBuildProjectName output: redeploy it")
    with tempfile.TemporaryDirectory(prefix="spaceport-build-") as scratch:
        archive = Path(scratch) / "source.zip"
        uncommitted = source_archive(checkout, archive)
        session.client("s3").upload_file(str(archive), deployment.bucket, SOURCE_KEY)
    build = session.client("codebuild").start_build(projectName=deployment.build_project)["build"]
    return build["id"], uncommitted


def follow_build(
    session: AwsSession, build_id: str, on_phase: Callable[[str, dict[str, Any]], None], poll_s: float = POLL_S
) -> str:
    """Poll the build until it ends, calling ``on_phase`` at each new phase; its final status."""
    codebuild, seen = session.client("codebuild"), None
    while True:
        build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if build.get("currentPhase") != seen:
            seen = build.get("currentPhase")
            on_phase(str(seen), build)
        if build.get("buildComplete") or build.get("buildStatus") not in (None, "IN_PROGRESS"):
            return str(build["buildStatus"])
        time.sleep(poll_s)
