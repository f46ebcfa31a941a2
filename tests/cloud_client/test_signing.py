"""Requests to the jobs API are signed with SigV4 (botocore), and the local endpoint checks them as API Gateway's IAM
authorisation does: a bad signature or a caller without execute-api:Invoke is refused, saying what is needed."""

from __future__ import annotations

import time

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from spaceport.cli import main
from spaceport.cloud.client.errors import ApiForbiddenError
from spaceport.cloud.local_stack.sigv4 import MISMATCH, Principal, SignatureRefusedError, verify
from spaceport.cloud.local_stack.stack import OUTSIDER, USER

from .conftest import client_for

RESOURCE = "arn:aws:execute-api:us-east-1:123456789012:local/$default/POST/jobs"
PRINCIPALS = {USER[0]: Principal(USER[1], USER[2])}


def signed(body: bytes, region: str = "us-east-1", secret: str = USER[1]) -> AWSRequest:
    request = AWSRequest(method="POST", url="http://127.0.0.1:9/jobs", data=body, headers={"Content-Type": "a/b"})
    SigV4Auth(Credentials(USER[0], secret), "execute-api", region).add_auth(request)
    return request


def check(request: AWSRequest, body: bytes | None = None) -> Principal:
    headers = dict(request.headers) | {"Host": "127.0.0.1:9"}
    sent = request.body if body is None else body
    return verify(PRINCIPALS, "us-east-1", RESOURCE, "POST", request.url, headers, sent)


def test_a_request_signed_by_botocore_is_accepted_and_a_changed_one_is_not():
    # GIVEN a request signed as the local user
    request = signed(b'{"upload": "zip"}')
    # WHEN it is checked as sent, with its body changed, and signed for another region or with a wrong secret
    # THEN only the first passes; the others are refused with API Gateway's words
    assert check(request).arn == USER[2]
    with pytest.raises(SignatureRefusedError, match="does not match"):
        check(request, body=b'{"upload": "images"}')
    with pytest.raises(SignatureRefusedError, match="valid region"):
        check(signed(b"{}", region="eu-west-1"))
    with pytest.raises(SignatureRefusedError) as refused:
        check(signed(b"{}", secret="not-the-secret"))
    assert str(refused.value) == MISMATCH


def test_a_signature_older_than_five_minutes_is_refused(monkeypatch):
    # GIVEN a request signed now WHEN it arrives six minutes later THEN it is refused as expired
    request = signed(b"{}")
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 360)
    with pytest.raises(SignatureRefusedError, match="expired"):
        check(request)


def test_a_bad_signature_is_refused_naming_execute_api_invoke_and_creates_nothing(stack, monkeypatch):
    # GIVEN the client with the right access key and a wrong secret key
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    # WHEN it creates a job
    with pytest.raises(ApiForbiddenError) as refused:
        client_for(stack).api.create_job({"upload": "zip", "archive_bytes": 1000, "photo_count": 8})
    # THEN the 403 says the signature did not match and what the caller needs: execute-api:Invoke
    assert refused.value.status == 403
    assert "signature we calculated does not match" in str(refused.value)
    assert "execute-api:Invoke" in str(refused.value)
    # AND no job was created
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", USER[1])
    assert client_for(stack).api.list_jobs()["jobs"] == []


def test_a_caller_without_execute_api_invoke_is_told_so(stack, monkeypatch, capsys):
    # GIVEN a user of the account whose policy does not allow invoking the API, signing correctly
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", OUTSIDER[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", OUTSIDER[1])
    # WHEN they list the jobs from the command line
    status = main(["cloud", "list", "--api-url", stack.api_url, "--region", "us-east-1"])
    # THEN the command fails with API Gateway's refusal, naming the user, the action and the resource
    error = capsys.readouterr().err
    assert status == 1
    assert f"User: {OUTSIDER[2]} is not authorized to perform: execute-api:Invoke on resource" in error
    assert "local/$default/GET/jobs" in error
