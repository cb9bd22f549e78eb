"""A whole engagement on SendGrid's wire protocol (the loopback peer): a message SendGrid refuses
for good is recorded with its error and an admin alert, and the engagement carries on."""

from __future__ import annotations

from domain.commands import RecordNdaSigned
from domain.vocabulary import Phase
from tests.helpers import Harness
from tests.sendgrid_peer import SendGridPeer

MAIL_THROUGH_SENDGRID = True
"""The harness sends email through the product's SendGrid sender, to the peer (conftest ``mailer``)."""


async def test_a_refused_email_is_recorded_alerted_and_the_engagement_carries_on(
    peer: SendGridPeer,
    harness: Harness,
) -> None:
    peer.fail_next(400)  # the NDA request: SendGrid says the payload is bad, for good
    handle = await harness.start(harness.spec())
    await harness.settle(handle, Phase.AWAITING_NDA)
    [request] = await harness.mail.outbox(handle.id)
    assert (request.kind, request.state) == ("nda_request", "failed")
    assert request.error
    alerts = await harness.alerts(handle)
    assert [a.kind for a in alerts] == ["email_rejected"]

    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam"))
    await harness.settle(handle, Phase.ONBOARDING)
    sent = [r for r in await harness.mail.outbox(handle.id) if r.kind == "nda_recorded"]
    assert sent and all(r.state == "sent" and r.provider_message_id for r in sent)
    ids = {r.message_id for r in peer.received}
    assert {r.provider_message_id for r in sent} <= ids
    assert all(r.payload["custom_args"]["message_key"] for r in peer.received)
