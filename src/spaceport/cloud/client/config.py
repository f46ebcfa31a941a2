"""Where a deployment is: what ``spaceport cloud init`` found in the stack's outputs, kept per profile and region.

The file is ``$SPACEPORT_CLOUD_CONFIG``, else ``$XDG_CONFIG_HOME/spaceport/cloud.json`` (``~/.config/...``). It holds
no secret: credentials always come from the AWS SDK's own chain.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spaceport.cloud.client.errors import NotDeployedError


@dataclass(frozen=True)
class Deployment:
    """A deployed stack's coordinates, as its outputs and parameters give them."""

    stack: str
    region: str
    api_url: str
    bucket: str
    build_project: str = ""
    repositories: dict[str, str] = field(default_factory=dict)
    image_tags: dict[str, str] = field(default_factory=dict)
    train_instance_type: str = ""


def config_path() -> Path:
    if os.environ.get("SPACEPORT_CLOUD_CONFIG"):
        return Path(os.environ["SPACEPORT_CLOUD_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "spaceport" / "cloud.json"


def _key(profile: str | None, region: str) -> str:
    return f"{profile or 'default'}/{region}"


def save(deployment: Deployment, profile: str | None) -> Path:
    path = config_path()
    known = json.loads(path.read_text()) if path.is_file() else {}
    known[_key(profile, deployment.region)] = asdict(deployment)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(known, indent=2, sort_keys=True) + "\n")
    os.replace(partial, path)
    return path


def load(profile: str | None, region: str) -> Deployment:
    """The deployment ``init`` recorded for this profile and region.

    Raises:
        NotDeployedError: none was recorded.
    """
    path = config_path()
    known = json.loads(path.read_text()) if path.is_file() else {}
    entry = known.get(_key(profile, region))
    if entry is None:
        raise NotDeployedError(
            f"no deployment known for profile {profile or 'default'} in {region} ({path}): run "
            "`spaceport cloud init` (after `sam deploy`), with the same --profile and --region"
        )
    return Deployment(**entry)
