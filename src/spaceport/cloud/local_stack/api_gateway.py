"""The jobs API on 127.0.0.1 as the HTTP API serves it: IAM authorisation (SigV4 checked), the template's routes,
and the api function invoked with an HTTP API payload (format 2.0) event.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from spaceport.cloud.local_stack.sigv4 import Principal, SignatureRefusedError, verify

API_ID = "local"


def routes(template: dict[str, Any], function: str = "ApiFunction") -> list[tuple[str, str, re.Pattern[str]]]:
    """The function's HttpApi routes as (method, route key path, regex over a request path)."""
    found = []
    for event in template["Resources"][function]["Properties"]["Events"].values():
        if event["Type"] == "HttpApi":
            path, method = event["Properties"]["Path"], event["Properties"]["Method"].upper()
            pattern = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")
            found.append((method, path, pattern))
    return found


def http_api_event(
    method: str, route: str, path: str, query: str, headers: Mapping[str, str], body: bytes, caller: Principal,
    path_parameters: dict[str, str], account: str,
) -> dict[str, Any]:  # fmt: skip
    """The event API Gateway's HTTP API hands a Lambda proxy integration (payload format 2.0) for an IAM caller."""
    params = {key: values[-1] for key, values in parse_qs(query).items()} or None
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": f"{method} {route}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {name.lower(): value for name, value in headers.items()},
        "queryStringParameters": params,
        "pathParameters": path_parameters or None,
        "requestContext": {
            "accountId": account,
            "apiId": API_ID,
            "domainName": headers.get("Host", "127.0.0.1"),
            "domainPrefix": API_ID,
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("User-Agent", ""),
            },  # fmt: skip
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {route}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
            "authorizer": {
                "iam": {
                    "accessKey": "local",
                    "accountId": account,
                    "callerId": caller.arn,
                    "principalOrgId": None,
                    "userArn": caller.arn,
                    "userId": caller.arn,
                }
            },  # fmt: skip
        },
        "body": body.decode("utf-8") if body else None,
        "isBase64Encoded": False,
    }


class LocalHttpApi:
    """A threaded HTTP server in front of the api function, checking every request's signature first."""

    def __init__(
        self,
        template: dict[str, Any],
        handler: Callable[[dict[str, Any]], dict[str, Any]],
        principals: Mapping[str, Principal],
        region: str,
        account: str,
    ) -> None:
        self._routes, self._handler, self.principals = routes(template), handler, dict(principals)
        self.region, self.account = region, account
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._request_handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-http-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def resource(self, method: str, path: str) -> str:
        """The execute-api ARN a request invokes (what an IAM policy's execute-api:Invoke names)."""
        return f"arn:aws:execute-api:{self.region}:{self.account}:{API_ID}/$default/{method}{path}"

    def answer(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict, bytes]:
        """Status, headers and body for one request."""
        split = urlsplit(raw_path)
        url = f"http://{headers.get('Host', '127.0.0.1')}{raw_path}"
        try:
            caller = verify(self.principals, self.region, self.resource(method, split.path), method, url, headers, body)
        except SignatureRefusedError as refusal:
            return 403, {"Content-Type": "application/json"}, json.dumps({"message": str(refusal)}).encode()
        for route_method, route, pattern in self._routes:
            match = pattern.match(split.path)
            if match and route_method == method:
                event = http_api_event(method, route, split.path, split.query, headers, body, caller,
                                       match.groupdict(), self.account)  # fmt: skip
                response = self._handler(event)
                payload = (response.get("body") or "").encode()
                return int(response["statusCode"]), dict(response.get("headers") or {}), payload
        return 404, {"Content-Type": "application/json"}, b'{"message":"Not Found"}'

    def _request_handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers, payload = api.answer(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815 (http.server's naming)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet: the functions log what matters."""

        return Handler
