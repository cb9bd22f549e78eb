"""The screening provider port and its Checkr adapter: the only code that speaks Checkr's API.

Checkr's documented v1 API, as used here: HTTP Basic with the secret API key as the user name;
``POST /v1/candidates`` (``email``, ``custom_id``), ``GET /v1/candidates?custom_id=``;
``POST /v1/invitations`` (``candidate_id``, ``package``, ``work_locations``),
``GET /v1/invitations?candidate_id=``, ``GET``/``DELETE /v1/invitations/{id}``;
``GET /v1/reports/{id}``; ``GET /v1/reports/{id}/adverse_items``;
``GET``/``POST /v1/reports/{id}/adverse_actions`` (``adverse_item_ids``, ``post_notice_scheduled_at``).

Every call that creates something first looks for what an earlier attempt created, so an activity
retried after a lost answer does not order a second check. 5xx, 429 and network errors are
``ProviderUnavailable`` (retried); any other 4xx is ``ProviderRefused`` (a retry cannot fix it).

Webhooks: Checkr signs the raw body with HMAC-SHA256 keyed with the API key and sends the hex
digest in ``X-Checkr-Signature``; there is no timestamp, so replays are caught by event id.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx2

from domain.screening import OpenCheck, ProviderSnapshot

SIGNATURE_HEADER = "X-Checkr-Signature"


class ProviderError(Exception):
    pass


class ProviderUnavailable(ProviderError):
    """The provider did not answer usefully (network, 5xx, 429): try again later."""


class ProviderRefused(ProviderError):
    """The provider refused the request (4xx): retrying the same request cannot succeed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"the screening provider refused the request ({status}): {message}")
        self.status = status


class ScreeningProvider(Protocol):
    """What a screening provider does for a check: the port the activities use."""

    async def open(self, request: OpenCheck) -> ProviderSnapshot: ...
    async def read(self, known: ProviderSnapshot) -> ProviderSnapshot: ...
    async def cancel_invitation(self, invitation_id: str) -> None: ...
    async def start_adverse_action(self, report_id: str, post_notice_at: datetime) -> str: ...
    async def close(self) -> None: ...


def signature(api_key: str, body: bytes) -> str:
    return hmac.new(api_key.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(api_key: str, body: bytes, sent: str | None) -> bool:
    """Constant-time comparison of the sent hex digest with the expected one."""
    if not sent or len(sent) > 128:
        return False
    return hmac.compare_digest(signature(api_key, body).encode(), sent.strip().lower().encode())


def _message(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no detail"
    error = body.get("error") if isinstance(body, dict) else None
    return str(error)[:200] if error else response.reason_phrase or "no detail"


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class CheckrProvider:
    def __init__(self, base_url: str, api_key: str, timeout_seconds: float = 10.0) -> None:
        self._http = httpx2.AsyncClient(
            base_url=base_url.rstrip("/"),
            auth=(api_key, ""),
            timeout=timeout_seconds,
            headers={"Accept": "application/json"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx2.TransportError as error:
            raise ProviderUnavailable(f"{method} {path.split('?')[0]}: {type(error).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(f"{method} {path.split('?')[0]}: {response.status_code}")
        if response.status_code >= 400:
            raise ProviderRefused(response.status_code, _message(response))
        try:
            body = response.json()
        except ValueError:
            raise ProviderUnavailable(f"{method} {path.split('?')[0]}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"{method} {path.split('?')[0]}: the answer is not an object")
        return body

    async def _list(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        body = await self._call("GET", path, params=params)
        data = body.get("data")
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    async def open(self, request: OpenCheck) -> ProviderSnapshot:
        found = await self._list("/v1/candidates", {"custom_id": request.check_workflow_id})
        candidate = found[0] if found else None
        if candidate is None:
            candidate = await self._call(
                "POST", "/v1/candidates", json={"email": request.email, "custom_id": request.check_workflow_id}
            )
        candidate_id = str(candidate["id"])
        invitations = await self._list("/v1/invitations", {"candidate_id": candidate_id})
        invitation = next(
            (i for i in invitations if i.get("package") == request.package and i.get("status") != "expired"), None
        )
        if invitation is None:
            invitation = await self._call(
                "POST",
                "/v1/invitations",
                json={
                    "candidate_id": candidate_id,
                    "package": request.package,
                    "work_locations": [{"country": request.jurisdiction}],
                },
            )
        return ProviderSnapshot.model_validate(
            {
                "candidate_id": candidate_id,
                "invitation_id": invitation.get("id"),
                "invitation_status": invitation.get("status"),
                "report_id": _str(invitation.get("report_id")),
            }
        )

    async def read(self, known: ProviderSnapshot) -> ProviderSnapshot:
        """The check as the provider has it now: invitation, then its report, then adverse actions."""
        fresh: dict[str, Any] = known.model_dump()
        if known.invitation_id is not None:
            invitation = await self._call("GET", f"/v1/invitations/{known.invitation_id}")
            fresh["invitation_status"] = invitation.get("status")
            fresh["report_id"] = _str(invitation.get("report_id")) or known.report_id
        report_id = fresh["report_id"]
        if report_id is not None:
            report = await self._call("GET", f"/v1/reports/{report_id}")
            fresh["report_status"] = report.get("status")
            fresh["result"] = report.get("result") if report.get("status") == "complete" else None
            actions = await self._list(f"/v1/reports/{report_id}/adverse_actions", {})
            live = [a for a in actions if a.get("status") != "canceled"]
            latest = live[-1] if live else None
            fresh["adverse_action_id"] = _str(latest.get("id")) if latest else None
            fresh["adverse_action_status"] = latest.get("status") if latest else None
        return ProviderSnapshot.model_validate(fresh)

    async def cancel_invitation(self, invitation_id: str) -> None:
        try:
            await self._call("DELETE", f"/v1/invitations/{invitation_id}")
        except ProviderRefused as refused:
            if refused.status not in (400, 404, 409):  # already completed, expired or gone: nothing to do
                raise

    async def start_adverse_action(self, report_id: str, post_notice_at: datetime) -> str:
        existing = await self._list(f"/v1/reports/{report_id}/adverse_actions", {})
        live = [a for a in existing if a.get("status") != "canceled"]
        if live:
            return str(live[-1]["id"])
        items = await self._list(f"/v1/reports/{report_id}/adverse_items", {})
        action = await self._call(
            "POST",
            f"/v1/reports/{report_id}/adverse_actions",
            json={
                "adverse_item_ids": [str(item["id"]) for item in items if "id" in item],
                "post_notice_scheduled_at": post_notice_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        return str(action["id"])
