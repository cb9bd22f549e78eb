"""A loopback stand-in for Checkr's v1 API, for tests of the real adapter, workflow and webhook.

It implements the documented contract the adapter uses: HTTP Basic with the API key as the user
name (else 401, Checkr's ``{"error": ...}`` shape); candidates (``POST``, ``GET ?custom_id=``);
invitations (``POST`` with ``candidate_id`` and ``package``, ``GET ?candidate_id=``, ``GET``/``DELETE``
by id); reports (``GET`` by id); adverse items and adverse actions of a report (only on a
``consider`` report, at most one live action: else 400). Unknown ids answer 404.

The candidate's side and the screening happen through the test: ``complete_invitation`` (consent
given: a pending report), ``complete_report`` (clear or consider), ``dispute``, ``resolve_dispute``,
``expire_invitation``. Each sends the webhook Checkr would (``invitation.completed``,
``report.completed``, ``report.disputed``, ...), signed with HMAC-SHA256 of the raw body keyed with
the API key in ``X-Checkr-Signature``, to ``webhook_url``, unless ``webhooks_lost`` is set (a webhook
URL that Checkr has disabled); ``deliveries`` records every post and its answer.

A test peer, not production code: it binds 127.0.0.1 on a free port and serves from a thread.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from adapters.checkr import SIGNATURE_HEADER, signature


def _id() -> str:
    return secrets.token_hex(12)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Delivery:
    event: dict[str, Any]
    status: int


@dataclass
class CheckrPeer:
    api_key: str = field(default_factory=lambda: "sk_test_" + secrets.token_hex(16))
    webhook_url: str | None = None
    webhooks_lost: bool = False
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)
    invitations: dict[str, dict[str, Any]] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    adverse_actions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> CheckrPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                expected = "Basic " + base64.b64encode(f"{peer.api_key}:".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self._answer(401, {"error": "Bad authentication error"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    self._answer(400, {"error": "Invalid JSON"})
                    return
                url = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                with peer._lock:
                    peer.requests.append((method, url.path))
                    status, answer = peer.route(method, url.path.rstrip("/").split("/")[1:], query, body)
                self._answer(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------------ the API

    def route(self, method: str, parts: list[str], query: dict[str, str], body: Any) -> tuple[int, object]:
        if len(parts) < 2 or parts[0] != "v1" or not isinstance(body, dict):
            return 404, {"error": "Not found"}
        resource, rest = parts[1], parts[2:]
        if resource == "candidates" and not rest:
            if method == "POST":
                if not isinstance(body.get("email"), str):
                    return 400, {"error": "email is required"}
                candidate = {
                    "id": _id(),
                    "object": "candidate",
                    "email": body["email"],
                    "custom_id": body.get("custom_id"),
                }
                self.candidates[candidate["id"]] = candidate
                return 201, candidate
            found = [c for c in self.candidates.values() if c.get("custom_id") == query.get("custom_id")]
            return 200, {"object": "list", "data": found, "count": len(found)}
        if resource == "invitations":
            return self._invitations(method, rest, query, body)
        if resource == "reports" and rest and rest[0] in self.reports:
            return self._report(method, self.reports[rest[0]], rest[1:], body)
        return 404, {"error": "Not found"}

    def _invitations(self, method: str, rest: list[str], query: dict[str, str], body: Any) -> tuple[int, object]:
        if not rest and method == "POST":
            if body.get("candidate_id") not in self.candidates or not isinstance(body.get("package"), str):
                return 400, {"error": "candidate_id and package are required"}
            invitation = {
                "id": _id(),
                "object": "invitation",
                "status": "pending",
                "candidate_id": body["candidate_id"],
                "package": body["package"],
                "work_locations": body.get("work_locations", []),
                "invitation_url": f"https://apply.checkr.example/{_id()}",
                "report_id": None,
                "created_at": _now(),
            }
            self.invitations[invitation["id"]] = invitation
            return 201, invitation
        if not rest:
            found = [i for i in self.invitations.values() if i["candidate_id"] == query.get("candidate_id")]
            return 200, {"object": "list", "data": found, "count": len(found)}
        if rest[0] not in self.invitations:
            return 404, {"error": "Not found"}
        invitation = self.invitations[rest[0]]
        if method == "DELETE":
            if invitation["status"] != "pending":
                return 400, {"error": "Invitation cannot be canceled"}
            invitation["status"] = "expired"
        return 200, invitation

    def _report(self, method: str, report: dict[str, Any], rest: list[str], body: Any) -> tuple[int, object]:
        if not rest:
            return 200, report
        live = [
            a for a in self.adverse_actions.values() if a["report_id"] == report["id"] and a["status"] != "canceled"
        ]
        if rest == ["adverse_items"]:
            if report["result"] != "consider" or live:
                return 400, {"error": "Report must be consider without an active adverse action"}
            return 200, {"object": "list", "data": [{"id": f"{report['id']}-item-1", "text": "record"}], "count": 1}
        if rest == ["adverse_actions"] and method == "GET":
            mine = [a for a in self.adverse_actions.values() if a["report_id"] == report["id"]]
            return 200, {"object": "list", "data": mine, "count": len(mine)}
        if rest == ["adverse_actions"] and method == "POST":
            if report["result"] != "consider" or live or not body.get("adverse_item_ids"):
                return 400, {"error": "Report must be consider without an active adverse action"}
            action = {
                "id": _id(),
                "object": "adverse_action",
                "status": "pending",
                "report_id": report["id"],
                "post_notice_scheduled_at": body.get("post_notice_scheduled_at"),
                "created_at": _now(),
            }
            self.adverse_actions[action["id"]] = action
            report["adjudication"] = "pre_adverse_action"
            return 201, action
        return 404, {"error": "Not found"}

    # ------------------------------------------------------------------ the candidate and the screening

    def invitation_of(self, custom_id: str) -> dict[str, Any] | None:
        with self._lock:
            candidate = next((c for c in self.candidates.values() if c.get("custom_id") == custom_id), None)
            if candidate is None:
                return None
            return next((i for i in self.invitations.values() if i["candidate_id"] == candidate["id"]), None)

    async def complete_invitation(self, invitation_id: str) -> str:
        with self._lock:
            invitation = self.invitations[invitation_id]
            report = {
                "id": _id(),
                "object": "report",
                "status": "pending",
                "result": None,
                "adjudication": None,
                "candidate_id": invitation["candidate_id"],
                "package": invitation["package"],
                "created_at": _now(),
            }
            self.reports[report["id"]] = report
            invitation.update(status="completed", report_id=report["id"])
        await self.emit("invitation.completed", dict(invitation))
        return str(report["id"])

    async def expire_invitation(self, invitation_id: str) -> None:
        with self._lock:
            self.invitations[invitation_id]["status"] = "expired"
        await self.emit("invitation.expired", dict(self.invitations[invitation_id]))

    async def complete_report(self, report_id: str, result: str) -> None:
        with self._lock:
            self.reports[report_id].update(status="complete", result=result)
        await self.emit("report.completed", dict(self.reports[report_id]))

    async def dispute(self, report_id: str) -> None:
        with self._lock:
            self.reports[report_id]["status"] = "dispute"
        await self.emit("report.disputed", dict(self.reports[report_id]))

    async def resolve_dispute(self, report_id: str, result: str) -> None:
        await self.complete_report(report_id, result)

    # ------------------------------------------------------------------ webhooks

    def event(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return {"id": _id(), "object": "event", "type": kind, "created_at": _now(), "data": {"object": obj}}

    async def emit(self, kind: str, obj: dict[str, Any]) -> None:
        if self.webhooks_lost or self.webhook_url is None:
            return
        await self.post(self.event(kind, obj))

    async def post(self, event: dict[str, Any], *, body: bytes | None = None, sign_with: str | None = None) -> int:
        """Post an event as Checkr does (or a tampered one: another body, another key)."""
        assert self.webhook_url is not None
        raw = body if body is not None else json.dumps(event).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Checkr-Webhook/1.0"}
        headers[SIGNATURE_HEADER] = signature(sign_with or self.api_key, raw)
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(self.webhook_url, content=raw, headers=headers)
        self.deliveries.append(Delivery(event, response.status_code))
        return response.status_code
