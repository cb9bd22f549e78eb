"""A SCIM server that hides group members, as AWS IAM Identity Center does: a proxy in front of a
real SCIM server that strips ``members`` from every Group and ``groups`` from every User it returns.

Modes:
- ``aws``: membership can still be asked, as AWS allows it, with ``id eq "g" and members eq "u"``;
  any other member filter is refused (400).
- ``opaque``: every filter that mentions members is refused: membership cannot be observed at all.
``--no-discovery`` answers 404 to /ResourceTypes, /Schemas and /ServiceProviderConfig.

Run: ``python tests/scim_peers/hiding_proxy.py LISTEN_PORT UPSTREAM_PORT MODE [--no-discovery]``.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

AWS_MEMBER_FILTER = re.compile(r'^\s*id eq "[^"]*" and members eq "[^"]*"\s*$')
DISCOVERY = ("/ResourceTypes", "/Schemas", "/ServiceProviderConfig")


def strip(resource: Any) -> Any:
    if isinstance(resource, dict):
        schemas = " ".join(resource.get("schemas") or [])
        if "ListResponse" in schemas:
            resource["Resources"] = [strip(r) for r in resource.get("Resources") or []]
        if schemas.endswith(":Group") or ":Group " in schemas:
            resource.pop("members", None)
        if schemas.endswith(":User") or ":User " in schemas:
            resource.pop("groups", None)
    return resource


def serve(listen: int, upstream: int, mode: str, discovery: bool) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self, status: int, body: bytes, content_type: str = "application/scim+json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _refuse(self, status: int, detail: str) -> None:
            error = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": str(status),
                "detail": detail,
            }
            self._answer(status, json.dumps(error).encode())

        def _forward(self) -> None:
            url = urlsplit(self.path)
            if not discovery and url.path.endswith(DISCOVERY):
                return self._refuse(404, "no discovery here")
            for value in parse_qs(url.query).get("filter", []):
                if "members" in value and (mode == "opaque" or not AWS_MEMBER_FILTER.match(value)):
                    return self._refuse(400, f"unsupported filter: {value}")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {
                k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization", "accept")
            }
            request = urllib.request.Request(
                f"http://127.0.0.1:{upstream}{self.path}", data=body, headers=headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    status, payload, kind = response.status, response.read(), response.headers.get("Content-Type")
            except urllib.error.HTTPError as error:
                status, payload, kind = error.code, error.read(), error.headers.get("Content-Type")
            if payload and status < 300:
                payload = json.dumps(strip(json.loads(payload))).encode()
            self._answer(status, payload or b"", kind or "application/scim+json")

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    with ThreadingHTTPServer(("127.0.0.1", listen), Handler) as server:
        server.daemon_threads = True
        print(f"member-hiding proxy ({mode}) on {listen} -> {upstream}", flush=True)
        server.serve_forever()


if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], "--no-discovery" not in sys.argv[4:])
