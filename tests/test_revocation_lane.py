"""Nothing holds back a revocation: neither an email provider that is down nor our own database.

Real peers: the SendGrid v3 peer on loopback (scripted to fail), PostgreSQL behind a loopback proxy
that the test cuts, the scim2-server tenant read directly, Temporal's time-skipping server.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore
from adapters.scim import ScimDirectory
from domain.commands import (
    CancelEngagement,
    DropParkedEffect,
    MoveEndDate,
    RestoreAccess,
    RetryParkedEffect,
    RevokeAccessNow,
    ScheduleSession,
)
from domain.vocabulary import Phase
from tests.helpers import Harness, eventually
from tests.sendgrid_peer import SendGridPeer
from tests.tcp_proxy import database_behind_proxy

ENGINEERS = ("alice@firm.example", "bob@firm.example", "carol@firm.example")


MAIL_THROUGH_SENDGRID = True
"""The harness sends email through the product's SendGrid sender, to the peer (conftest ``mailer``)."""


async def nobody_has_access(harness: Harness) -> bool:
    for email in ENGINEERS:
        identity = await harness.iam(email)
        if identity.groups or identity.active:
            return False
    return True


async def test_an_email_outage_holds_back_neither_the_end_date_nor_the_records_behind_it(
    env: WorkflowEnvironment,
    peer: SendGridPeer,
    store: EngagementStore,
    harness: Harness,
) -> None:
    handle = await harness.start(harness.spec())
    await harness.drive_to(handle, Phase.NOTICE)
    now = await env.get_current_time()
    end_date = now + timedelta(minutes=10)
    await harness.update(handle, MoveEndDate(actor="erin", end_date=end_date, reason="the client decided"))
    await harness.settle(handle, Phase.NOTICE)

    peer.fail_next(503, count=100_000)  # SendGrid is down from here on
    starts = now + timedelta(minutes=2)
    session = ScheduleSession(
        actor="fran", session_id="s1", title="Runbooks", starts_at=starts, duration=timedelta(minutes=5)
    )
    await harness.update(handle, session)

    # The end date passes while the invitation keeps failing (inside its 15-minute bound, so it
    # still heads the email lane): every grant is revoked all the same.
    await env.sleep(timedelta(minutes=11))
    await eventually(lambda: nobody_has_access(harness), "every grant revoked at the end date")
    status = await harness.status(handle)
    assert status.phase is Phase.TRANSITION
    assert status.revocation is not None
    revoked_at = status.revocation.revoked_at
    assert revoked_at - end_date < timedelta(minutes=1)

    # The failing invitation is parked once its bound has passed; an admin hears of it, and the
    # records queued behind it (the revocations' ledger rows) go on.
    await env.sleep(timedelta(minutes=20))

    async def parked() -> Any:
        return (await harness.status(handle)).parked_effects

    parked_effects = await eventually(parked, "the invitation parked")
    [parked_effect] = [p for p in parked_effects if "session_invite" in p.what]
    assert all("503" in p.last_error for p in parked_effects)
    assert revoked_at < parked_effect.parked_at  # revoked while the failing email still headed the lane
    alerts = await eventually(lambda: harness.alerts(handle), "the parking alert")
    assert any(a.kind == "effect_parked" and "session_invite" in a.message for a in alerts)

    async def ledger_closed() -> bool:
        grants = await store.grants(handle.id)
        return bool(grants) and all(g.revoked_at is not None for g in grants)

    await eventually(ledger_closed, "the ledger records every revocation behind the parked email")

    # SendGrid is back: an operator retries the parked invitation, and it goes out.
    peer.recover()
    ack = await harness.update(handle, RetryParkedEffect(actor="ops", reason="SendGrid is back"))
    assert f"{len(parked_effects)} parked effect(s) queued again" in ack.accepted
    await eventually(lambda: _no_parked(harness, handle), "the retried emails sent")
    assert any(r.accepted and "Runbooks" in str(r.payload) for r in peer.requests)
    audit = [e.action for e in await store.audit_entries(handle.id)]
    assert "parked_effect_retried" in audit


async def _no_parked(harness: Harness, handle: WorkflowHandle[Any, Any]) -> bool:
    view = await harness.status(handle)
    return not view.parked_effects and view.pending_effects == 0


async def test_a_parked_effect_can_be_dropped_with_a_reason_and_the_engagement_closes(
    env: WorkflowEnvironment,
    peer: SendGridPeer,
    store: EngagementStore,
    harness: Harness,
) -> None:
    handle = await harness.start(harness.spec())
    await harness.settle(handle, Phase.AWAITING_NDA)
    peer.fail_next(500, count=100_000)
    await harness.update(handle, CancelEngagement(actor="erin", reason="contract withdrawn"))
    await env.sleep(timedelta(minutes=20))  # the cancellation email fails past its bound

    async def parked() -> Any:
        return (await harness.status(handle)).parked_effects

    parked_effects = await eventually(parked, "the cancellation email parked")
    for effect in parked_effects:
        await harness.update(
            handle, DropParkedEffect(actor="ops", effect_id=effect.effect_id, reason="phoned the client")
        )
    summary = await asyncio.wait_for(handle.result(), 60)
    assert summary.phase is Phase.CANCELLED
    dropped = [e for e in await store.audit_entries(handle.id) if e.action == "parked_effect_dropped"]
    assert dropped and all(e.actor == "ops" and e.details["reason"] == "phoned the client" for e in dropped)


async def test_our_database_down_during_an_emergency_revocation_delays_only_the_records(
    env: WorkflowEnvironment, database_url: str, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> None:
    async with database_behind_proxy(database_url) as (proxy, engine):
        async with Harness.running(env.client, EngagementStore(engine), tenant, tmp_path) as harness:
            handle = await harness.start(harness.spec())
            await harness.drive_to(handle, Phase.DELIVERY)
            assert not await nobody_has_access(harness)

            await proxy.down()  # the firm's own PostgreSQL is gone
            await harness.update(handle, RevokeAccessNow(actor="ciso", reason="suspected breach"))
            await eventually(lambda: nobody_has_access(harness), "the IAM revoked with the database down", 30)
            grants = await store.grants(handle.id)  # read directly, not through the cut proxy
            assert any(g.revoked_at is None for g in grants)  # the records wait; the IAM did not

            await proxy.up()

            async def recorded() -> bool:
                rows = await store.grants(handle.id)
                audit = {e.action for e in await store.audit_entries(handle.id)}
                return all(g.revoked_at is not None for g in rows) and "emergency_revocation" in audit

            await eventually(recorded, "the ledger and audit rows written once the database is back", 120)


async def test_a_revocation_sent_while_a_grant_is_in_flight_is_applied_at_once(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    """The emergency brake right after a restore: the revocation arrives while the re-grant is still
    being applied, and must not wait for some later event to be acted on."""
    handle = await harness.start(harness.spec())
    await harness.drive_to(handle, Phase.DELIVERY)
    for _ in range(2):
        await harness.update(handle, RevokeAccessNow(actor="ciso", reason="suspected breach"))
        await eventually(lambda: nobody_has_access(harness), "revoked", 30)
        await harness.update(handle, RestoreAccess(actor="ciso"))  # the re-grant starts...
        await harness.update(handle, RevokeAccessNow(actor="ciso", reason="again"))  # ...and is overtaken
        await eventually(lambda: nobody_has_access(harness), "revoked again with nothing else happening", 30)
        await harness.update(handle, RestoreAccess(actor="ciso"))
        await eventually(lambda: _everyone_has_access(harness), "restored", 30)


async def _everyone_has_access(harness: Harness) -> bool:
    return all([bool((await harness.iam(email)).groups) for email in ENGINEERS])
