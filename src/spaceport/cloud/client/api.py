"""The jobs API, called with SigV4-signed requests (botocore's signer, service ``execute-api``).

Every attempt is signed afresh. A broken connection, a throttled (429) or failed (5xx) answer is retried with
backoff; a request that changes state is retried only where repeating it is harmless (POST /jobs is not: a lost
answer would leave a second job, so it is tried once).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from spaceport.cloud.client.errors import ApiError, ApiForbiddenError, CloudError
from spaceport.cloud.client.session import AwsSession

ATTEMPTS = 5
BACKOFF_S = 0.5
TIMEOUT_S = 60
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class JobsApi:
    """``api_url``'s routes (README, "API"), as the caller that ``session`` holds the credentials of."""

    def __init__(self, api_url: str, session: AwsSession) -> None:
        self.api_url, self.session = api_url.rstrip("/"), session
        self._http = requests.Session()

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, retry: bool = True) -> dict[str, Any]:
        """One API call; the answer's JSON.

        Raises:
            ApiForbiddenError: the signature or the caller's permission was refused (names what is needed).
            ApiError: any other error status.
            CloudError: the API could not be reached.
        """
        data = json.dumps(body).encode() if body is not None else b""
        for attempt in range(1, (ATTEMPTS if retry else 1) + 1):
            try:
                response = self._send(method, path, data)
            except requests.RequestException as error:
                if attempt >= (ATTEMPTS if retry else 1):
                    raise CloudError(f"cannot reach the jobs API at {self.api_url}: {error}") from error
            else:
                if response.status_code not in RETRIED_STATUSES or not retry or attempt == ATTEMPTS:
                    return self._answer(method, path, response)
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, data: bytes) -> requests.Response:
        request = AWSRequest(method=method, url=self.api_url + path, data=data,
                             headers={"Content-Type": "application/json"})  # fmt: skip
        SigV4Auth(self.session.frozen_credentials(), "execute-api", self.session.region).add_auth(request)
        return self._http.request(method, request.url, data=data, headers=dict(request.headers), timeout=TIMEOUT_S)

    def _answer(self, method: str, path: str, response: requests.Response) -> dict[str, Any]:
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"message": response.text[:500]}
        if response.status_code == 403:
            raise ApiForbiddenError(403, self._forbidden(method, path, body.get("message", "")))
        if response.status_code >= 400:
            raise ApiError(response.status_code, body.get("message") or response.reason)
        return body

    def _forbidden(self, method: str, path: str, message: str) -> str:
        who = f"profile {self.session.profile}" if self.session.profile else "the default credential chain"
        return (
            f"{message} The caller ({who}, region {self.session.region}) needs execute-api:Invoke on this API "
            f"({method} {self.api_url}{path}) and a valid signature: check the profile's keys and that "
            "`spaceport cloud init` ran with the same --profile and --region."
        )

    # ------------------------------------------------------------ routes

    def create_job(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/jobs", request, retry=False)

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"/jobs/{job_id}")

    def list_jobs(self, limit: int = 25, next_token: str | None = None) -> dict[str, Any]:
        query = {"limit": str(limit)} | ({"next": next_token} if next_token else {})
        return self.call("GET", f"/jobs?{urlencode(query)}")

    def sign_parts(self, job_id: str, part_numbers: list[int] | None = None) -> dict[str, Any]:
        """Fresh URLs: the parts named, or every part S3 does not hold yet (with those it holds)."""
        body = {} if part_numbers is None else {"part_numbers": part_numbers}
        return self.call("POST", f"/jobs/{job_id}/upload/parts", body)["upload"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.call("POST", f"/jobs/{job_id}/cancel", {})

    def retry(self, job_id: str, from_stage: str | None = None) -> dict[str, Any]:
        body = {"from_stage": from_stage} if from_stage else {}
        return self.call("POST", f"/jobs/{job_id}/retry", body, retry=False)
