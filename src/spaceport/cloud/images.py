"""Check that a stage's container image exists before a SageMaker job is asked to pull it."""

from __future__ import annotations

from botocore.exceptions import ClientError

from spaceport.cloud import aws


class StageImageMissingError(Exception):
    """The stage's image tag is not in its repository (images not built yet, or a wrong tag parameter)."""


def resolve_image(repository_uri: str, tag: str) -> str:
    """Return ``repository@digest`` for ``tag``: pinning the digest keeps a retagged image from changing a
    job midway, and an empty repository fails here with a clear reason instead of as a SageMaker error."""
    repository_name = repository_uri.split("/", 1)[1]
    try:
        response = aws.client("ecr").describe_images(repositoryName=repository_name, imageIds=[{"imageTag": tag}])
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in ("ImageNotFoundException", "RepositoryNotFoundException"):
            raise StageImageMissingError(
                f"image {repository_name}:{tag} not found; build and push it with the CodeBuild project "
                "(see README, 'Build the stage images')"
            ) from error
        raise
    details = response.get("imageDetails", [])
    if not details:
        raise StageImageMissingError(f"image {repository_name}:{tag} not found")
    return f"{repository_uri}@{details[0]['imageDigest']}"
