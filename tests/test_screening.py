"""Background checks through the screening provider: the real adapter, workflow and webhook endpoint
against a loopback peer that speaks Checkr's documented API and signs its webhooks
(``tests/checkr_peer.py``), on Temporal's time-skipping server, PostgreSQL and the SCIM server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.screening import ScreeningActivities
from adapters.checkr import SIGNATURE_HEADER, CheckrProvider, signature
from adapters.checkr_webhook import ProviderEventProcessor, WorkflowSignalNotifier
from adapters.db import EngagementStore
from adapters.http_endpoint import in_background
from adapters.scim import ScimDirectory
from adapters.screening_store import ScreeningStore
from domain.commands import RecordNdaSigned
from domain.screening import Adjudicate, ScreeningView, load_jurisdictions
from domain.spec import EngagementSpec
from domain.state import CheckCompleted
from domain.vocabulary import CheckStatus, Phase
from provider_webhook import EVENTS_PATH, provider_webhook_app
from tests.checkr_peer import CheckrPeer
from tests.conftest import free_port
from tests.helpers import Harness
from tests.sample_spec import spec_data
from workflows.screening import ScreeningWorkflow
from workflows.screening_commands import adjudicate


@dataclass
class Screening:
    harness: Harness
    peer: CheckrPeer
    client: Client

    def spec(self, contract: str, **screening: Any) -> EngagementSpec:
        data = spec_data(self.harness.tenant.base_url)
        data["contract_id"] = contract
        data["engineers"] = data["engineers"][:2]  # alice (PT: full package), bob (DE: credentials only)
        data["screening"] = {"provider": "checkr", "poll_interval": "PT1H", **screening}
        return EngagementSpec.model_validate(data)  # short durations: no floors outside the edges

    async def onboard(self, spec: EngagementSpec) -> WorkflowHandle[Any, Any]:
        handle = await self.harness.start(spec)
        await self.harness.settle(handle, Phase.AWAITING_NDA)
        await self.harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam"))
        return handle

    async def invitation(self, check_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await until(
            lambda: _now(self.peer.invitation_of(check_id)), f"an invitation for {check_id}"
        )
        return found

    def check(self, handle: WorkflowHandle[Any, Any], n: int) -> WorkflowHandle[Any, CheckCompleted]:
        return self.client.get_workflow_handle_for(ScreeningWorkflow.run, f"{handle.id}/check/{n}")

    async def stage(self, check: WorkflowHandle[Any, CheckCompleted], wanted: str) -> ScreeningView:
        async def probe() -> ScreeningView | None:
            view: ScreeningView = await check.query(ScreeningWorkflow.status)
            return view if view.stage == wanted else None

        view: ScreeningView = await until(probe, f"{check.id} in stage {wanted}")
        return view


async def _now(value: Any) -> Any:
    return value


async def until(probe: Callable[[], Awaitable[Any]], what: str, within: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {what} within {within}s")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def webhook_server(
    peer: CheckrPeer, provider: CheckrProvider, store: ScreeningStore, client: Client
) -> AsyncIterator[None]:
    app = provider_webhook_app(peer.api_key, ProviderEventProcessor(provider, store, WorkflowSignalNotifier(client)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    async with in_background(server):
        peer.webhook_url = f"http://127.0.0.1:{port}{EVENTS_PATH}"
        yield


@pytest.fixture
async def screening(
    env: WorkflowEnvironment, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> AsyncIterator[Screening]:
    peer = CheckrPeer().start()
    provider = CheckrProvider(peer.base_url, peer.api_key)
    records = ScreeningStore(store.engine)
    activities = ScreeningActivities(provider, records, load_jurisdictions())
    async with Harness.running(env.client, store, tenant, tmp_path, screening=activities) as harness:
        async with webhook_server(peer, provider, records, env.client):
            yield Screening(harness, peer, env.client)
    await provider.close()
    peer.stop()


async def test_clear_reports_by_webhook_grant_production_with_the_jurisdictions_packages(screening: Screening) -> None:
    s = screening
    handle = await s.onboard(s.spec("SCR-CLEAR"))
    for n in (1, 2):
        invitation = await s.invitation(f"{handle.id}/check/{n}")
        report = await s.peer.complete_invitation(invitation["id"])
        await s.peer.complete_report(report, "clear")
    view = await s.harness.settle(handle, Phase.DELIVERY)

    assert {e.email: e.check for e in view.engineers} == {
        "alice@firm.example": CheckStatus.CLEARED,
        "bob@firm.example": CheckStatus.CLEARED,
    }
    packages = {i["work_locations"][0]["country"]: i["package"] for i in s.peer.invitations.values()}
    assert packages == {"PT": "credentials_and_criminal_record", "DE": "credentials_only"}
    assert "prod-readonly" in (await s.harness.iam("alice@firm.example")).groups
    assert all(d.status == 200 for d in s.peer.deliveries)
    assert ("POST", "/v1/candidates") in s.peer.requests  # and no candidate twice:
    assert len(s.peer.candidates) == 2


async def test_consider_goes_to_a_person_engaged_clears_and_a_bad_adjudication_is_refused(screening: Screening) -> None:
    s = screening
    handle = await s.onboard(s.spec("SCR-ENGAGED"))
    check = s.check(handle, 1)
    invitation = await s.invitation(check.id)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await check.execute_update(
            ScreeningWorkflow.adjudicate, Adjudicate(actor="hr", decision="engaged", reason="too early")
        )
    assert "no report awaits adjudication" in str(refused.value.cause)
    report = await s.peer.complete_invitation(invitation["id"])
    await s.peer.complete_report(report, "consider")
    await s.stage(check, "awaiting_adjudication")

    decision = Adjudicate(actor="hr", decision="engaged", reason="old, unrelated record")
    view = await adjudicate(s.client, handle.id, "ALICE@firm.example", decision)  # as the CLI finds and sends it

    assert view.adjudication is not None and view.adjudication.actor == "hr"
    completed = await check.result()
    assert completed.outcome == "cleared" and "old, unrelated record" in (completed.notes or "")
    query = text(
        "SELECT actor, details->>'decision' FROM audit_log"
        " WHERE action = 'screening_adjudicated' AND details->>'check_workflow_id' = :id"
    )
    async with s.harness.store.engine.connect() as conn:
        rows = [tuple(row) for row in await conn.execute(query, {"id": check.id})]
    assert rows == [("hr", "engaged")]


async def test_adverse_action_waits_its_period_and_a_dispute_pauses_it(screening: Screening) -> None:
    s = screening
    spec = s.spec("SCR-ADVERSE", adverse_action_wait="PT3S")
    handle = await s.onboard(spec)
    check = s.check(handle, 1)
    report = await s.peer.complete_invitation((await s.invitation(check.id))["id"])
    await s.peer.complete_report(report, "consider")
    await s.stage(check, "awaiting_adjudication")
    await check.execute_update(
        ScreeningWorkflow.adjudicate, Adjudicate(actor="hr", decision="adverse_action", reason="fraud conviction")
    )
    await s.stage(check, "adverse_action_pending")
    assert [a["status"] for a in s.peer.adverse_actions.values()] == ["pending"]

    await s.peer.dispute(report)
    await s.stage(check, "disputed")
    await asyncio.sleep(4)  # longer than the waiting period: a dispute stops the clock
    assert (await check.query(ScreeningWorkflow.status)).outcome is None

    await s.peer.resolve_dispute(report, "consider")  # the provider stands by the report
    completed = await check.result()
    assert completed.outcome == "failed" and "fraud conviction" in (completed.notes or "")
    view = await s.harness.settle(handle)
    alice = next(e for e in view.engineers if e.email == "alice@firm.example")
    assert alice.check is CheckStatus.FAILED and not alice.groups  # revoked on the final adverse action
    notices = [f.read_text() for f in s.harness.outbox_files() if "alice" in f.read_text()]
    assert any("please read before" in n for n in notices)


async def test_an_expired_invitation_cancels_the_check(screening: Screening) -> None:
    s = screening
    handle = await s.onboard(s.spec("SCR-EXPIRED", consent_deadline="PT2S"))
    check = s.check(handle, 1)
    invitation = await s.invitation(check.id)
    completed = await check.result()
    assert completed.outcome == "cancelled" and "consent" in (completed.notes or "")
    assert s.peer.invitations[invitation["id"]]["status"] == "expired"  # cancelled at the provider too
    view = await s.harness.settle(handle)
    assert next(e for e in view.engineers if e.email == "alice@firm.example").check is CheckStatus.FAILED


async def test_a_lost_webhook_is_caught_by_polling(screening: Screening) -> None:
    s = screening
    s.peer.webhooks_lost = True  # Checkr disabled the URL: nothing arrives
    handle = await s.onboard(s.spec("SCR-POLL", poll_interval="PT1S"))
    check = s.check(handle, 1)
    report = await s.peer.complete_invitation((await s.invitation(check.id))["id"])
    await s.peer.complete_report(report, "clear")
    completed = await check.result()
    assert completed.outcome == "cleared"
    assert not s.peer.deliveries and ("GET", f"/v1/reports/{report}") in s.peer.requests


async def test_forged_tampered_replayed_and_malformed_posts_change_nothing(screening: Screening) -> None:
    s = screening
    handle = await s.onboard(s.spec("SCR-FORGED"))
    check = s.check(handle, 1)
    invitation = await s.invitation(check.id)
    report = await s.peer.complete_invitation(invitation["id"])
    s.peer.reports[report].update(status="complete", result="clear")  # true at the provider, not yet told
    event = s.peer.event("report.completed", dict(s.peer.reports[report]))
    body = json.dumps(event).encode()
    url = s.peer.webhook_url
    assert url is not None
    async with httpx.AsyncClient() as http:
        unsigned = await http.post(url, content=body)
        forged = await http.post(url, content=body, headers={SIGNATURE_HEADER: signature("not-the-key", body)})
        tampered_body = body.replace(b"report.completed", b"report.complete_")
        tampered = await http.post(
            url, content=tampered_body, headers={SIGNATURE_HEADER: signature(s.peer.api_key, body)}
        )
        deep = b"[" * 5000 + b"]" * 5000
        too_deep = await http.post(url, content=deep, headers={SIGNATURE_HEADER: signature(s.peer.api_key, deep)})
        huge = b"{" + b" " * (1024 * 1024 + 1) + b"}"
        too_large = await http.post(url, content=huge, headers={SIGNATURE_HEADER: signature(s.peer.api_key, huge)})
        odd = json.dumps({"id": "evt\u0000x", "type": "report.completed"}).encode()
        unusable = await http.post(url, content=odd, headers={SIGNATURE_HEADER: signature(s.peer.api_key, odd)})
    assert [r.status_code for r in (unsigned, forged, tampered, too_deep, too_large)] == [401, 403, 403, 400, 413]
    assert unusable.status_code == 200 and "ignored" in unusable.json()
    await asyncio.sleep(0.3)
    assert (await check.query(ScreeningWorkflow.status)).outcome is None  # none of them reached the check

    assert await s.peer.post(event) == 200  # the genuine post
    completed = await check.result()
    assert completed.outcome == "cleared"
    async with httpx.AsyncClient() as http:  # the same signed post again: a replay
        replay = await http.post(url, content=body, headers={SIGNATURE_HEADER: signature(s.peer.api_key, body)})
    assert replay.status_code == 200 and replay.json()["outcome"] == "duplicate"
