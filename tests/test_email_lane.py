"""``email-lane``: emails go in a lane of their own, so an email that keeps failing holds back no record
(before, the records queued behind it waited until it was parked), and each lane keeps its order.

Real peers: the SendGrid v3 peer on loopback (scripted to fail), PostgreSQL, the scim2-server
tenant, Temporal's time-skipping server.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.commands import ScheduleSession
from domain.vocabulary import KnowledgeTransferDocument, Phase
from tests.helpers import Harness, eventually
from tests.histories_io import keep
from tests.sendgrid_peer import SendGridPeer
from tests.test_batched_records import delivered

MAIL_THROUGH_SENDGRID = True
"""The harness sends email through the product's SendGrid sender, to the peer (conftest ``mailer``)."""


async def test_a_failing_email_holds_back_no_record(
    env: WorkflowEnvironment,
    peer: SendGridPeer,
    harness: Harness,
) -> None:
    handle = await harness.start(harness.spec())
    await harness.drive_to(handle, Phase.NOTICE)
    sent_before = len(peer.received)

    peer.fail_next(503, count=100_000)  # SendGrid is down from here on
    starts = await env.get_current_time() + timedelta(days=2)
    await harness.update(handle, ScheduleSession(actor="fran", session_id="s1", title="Runbooks", starts_at=starts))
    await harness.hand_over(handle)  # five documents, queued behind the failing invitation

    # Every document is recorded while the invitation still fails, far inside its bound: nothing
    # has been parked, and the invitation is still queued.
    everything = {document.value for document in KnowledgeTransferDocument}

    async def recorded() -> bool:
        return await delivered(harness.store, handle.id) == everything

    await eventually(recorded, "the documents recorded behind a failing email", 30)
    status = await harness.status(handle)
    assert not status.parked_effects and status.pending_effects >= 1
    assert len(peer.received) == sent_before  # the invitation has not gone out

    peer.recover()  # SendGrid is back: the invitation goes out at its next retry, once to each attendee
    await env.sleep(timedelta(minutes=6))  # past the longest pause between retries (5 minutes)
    await harness.settle(handle, Phase.NOTICE)
    invitations = [r.payload["personalizations"][0]["to"][0]["email"] for r in peer.received[sent_before:]]
    assert invitations and len(invitations) == len(set(invitations))
    await keep("email_lane", await handle.fetch_history())
