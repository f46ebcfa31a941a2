"""The signature on every webhook delivery, and how a receiver checks it (importable by receivers: standard library
only).

Each POST carries ``Spaceport-Signature: t=<unix seconds>,v1=<hex>``, where ``<hex>`` is the HMAC-SHA256, keyed with
the stack's webhook secret, of ``<t>.`` followed by the request's exact body bytes. A receiver recomputes it over the
body it received, compares in constant time, and refuses a timestamp older than a few minutes, so that a captured
delivery cannot be replayed later. Every attempt of a delivery is signed afresh.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Spaceport-Signature"
TOLERANCE_S = 300


class InvalidSignatureError(ValueError):
    """The delivery was not signed with this secret, was altered, or is too old."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Spaceport-Signature`` header value for ``body`` sent at ``timestamp`` (default: now)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={signature(secret, at, body)}"


def verify(secret: str, header: str, body: bytes, tolerance_s: int = TOLERANCE_S, now: float | None = None) -> int:
    """Check a delivery's ``Spaceport-Signature`` header against its body; returns the signed timestamp.

    Raises:
        InvalidSignatureError: the header is malformed, no ``v1`` matches, or the timestamp is more than
            ``tolerance_s`` seconds away from ``now``.
    """
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError) as error:
        raise InvalidSignatureError(f"no timestamp in {SIGNATURE_HEADER}") from error
    expected = signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", [])):
        raise InvalidSignatureError("the signature does not match this body and secret")
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        raise InvalidSignatureError(f"signed at {timestamp}, more than {tolerance_s} s from now: a replay?")
    return timestamp
