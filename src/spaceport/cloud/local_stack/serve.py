"""A local stack in its own process: started, its endpoints written to a file for the processes that use it, then
kept up until SIGINT or SIGTERM."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from spaceport.cloud.local_stack import stages
from spaceport.cloud.local_stack.stack import LocalStack

PROFILE = "spaceport-local"


def serve(work: Path, ready: Path | None, allow_docker: bool = True) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalStack(work, allow_docker=allow_docker) as stack:
        runners = {stage: stages.docker_image(stage, allow_docker) for stage in ("sfm", "compress")}
        described = {
            "endpoint": stack.endpoint,
            "api_url": stack.api_url,
            "profile": PROFILE,
            "aws_files": stack.write_profile(work / "aws", PROFILE),
            "stages": {stage: f"container {image}" if image else "process" for stage, image in runners.items()}
            | {"train": "process (CPU)"},
        }
        if ready is not None:
            ready.parent.mkdir(parents=True, exist_ok=True)
            partial = ready.with_name(f".{ready.name}.partial")
            partial.write_text(json.dumps(described, indent=2))
            partial.replace(ready)
        print(f"local stack up: API {stack.api_url}, AWS {stack.endpoint}; stages: {described['stages']}", flush=True)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
    return 0
