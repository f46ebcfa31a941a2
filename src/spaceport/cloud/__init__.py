"""The AWS side of Spaceport: the logic behind every Lambda function of the SAM application.

Kept light on purpose: only boto3, pydantic and aws-lambda-powertools are imported here, never torch,
pycolmap or numpy, so a Lambda's cold start stays short (``tests/cloud/test_imports.py`` checks it).
"""
