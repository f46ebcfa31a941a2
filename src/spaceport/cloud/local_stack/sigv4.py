"""Checking a request's Signature Version 4 as API Gateway's IAM authorisation does, with botocore's own signer.

Neither ``sam local start-api`` (aws-sam-cli issue 7750) nor moto checks signatures, so a local endpoint that must
refuse a badly signed request computes the signature it expected: the request as received, only the headers the
client signed, its ``X-Amz-Date``, and the secret key of the access key it names. The refusals read as API
Gateway's do.
"""

from __future__ import annotations

import hmac
import time
from calendar import timegm
from collections.abc import Mapping
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# How far a request's X-Amz-Date may stray from the clock (AWS allows 5 minutes).
MAX_SKEW_S = 300
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details."
)


@dataclass(frozen=True)
class Principal:
    """An IAM user of the local account: its secret key and ARN, and whether its policy allows execute-api:Invoke."""

    secret_key: str
    arn: str
    may_invoke: bool = True


class SignatureRefusedError(Exception):
    """API Gateway's 403 for a request it does not authorise; the message is its own."""


def _authorization_fields(header: str) -> dict[str, str]:
    algorithm, _, rest = header.partition(" ")
    if algorithm != "AWS4-HMAC-SHA256":
        raise SignatureRefusedError("Forbidden")
    fields = dict(part.strip().split("=", 1) for part in rest.split(",") if "=" in part)
    if not {"Credential", "SignedHeaders", "Signature"} <= fields.keys():
        raise SignatureRefusedError("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.")
    return fields


def verify(
    principals: Mapping[str, Principal],
    region: str,
    resource: str,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
) -> Principal:
    """The principal that signed the request, when the signature is its own, fresh, for ``region``'s
    ``execute-api``, and its policy allows invoking ``resource`` (an execute-api ARN).

    Raises:
        SignatureRefusedError: anything else, with API Gateway's message.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    if "authorization" not in lowered:
        raise SignatureRefusedError("Forbidden")
    fields = _authorization_fields(lowered["authorization"])
    access_key, date, scope_region, service, _ = (fields["Credential"].split("/") + [""] * 5)[:5]
    principal = principals.get(access_key)
    if principal is None:
        raise SignatureRefusedError("The security token included in the request is invalid.")
    if scope_region != region or service != "execute-api":
        raise SignatureRefusedError(
            f"Credential should be scoped to a valid region and service ({region}, execute-api)."
        )
    amz_date = lowered.get("x-amz-date", "")
    try:
        signed_at = timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
    except ValueError as error:
        raise SignatureRefusedError(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        ) from error
    if abs(time.time() - signed_at) > MAX_SKEW_S or not amz_date.startswith(date):
        raise SignatureRefusedError(f"Signature expired: {amz_date} is outside the {MAX_SKEW_S} s allowed.")
    signed = fields["SignedHeaders"].split(";")
    request = AWSRequest(method=method, url=url, headers={name: lowered.get(name, "") for name in signed}, data=body)
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(access_key, principal.secret_key), "execute-api", region)
    expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    if not hmac.compare_digest(expected, fields["Signature"]):
        raise SignatureRefusedError(MISMATCH)
    if not principal.may_invoke:
        raise SignatureRefusedError(
            f"User: {principal.arn} is not authorized to perform: execute-api:Invoke on resource: {resource}"
        )
    return principal
