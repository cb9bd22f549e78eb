"""Exactly once in effect: the ``send_email`` activity over PostgreSQL and the loopback SendGrid peer,
when a worker dies between SendGrid's 202 and the outbox row saying so, or the answer is lost.

The clock of the reconciliation window is injected, so the window passes without sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email import RECIPIENTS_AT_ONCE, EmailActivities, EmailOutcome, EmailRequest
from adapters.db import EngagementStore
from adapters.email import EmailSender, OutboxFolderSender, OutgoingEmail, SendGridSender, SendReceipt
from adapters.outbox import OutboxStore
from adapters.sendgrid_events import DeliveryEventStore, parse_post
from domain.email_kinds import EmailKind, Recipient, message_key
from domain.spec import parse_spec
from emails.samples import sample_facts
from tests.helpers import eventually
from tests.sample_spec import spec_data
from tests.sendgrid_peer import PeerRequest, SendGridPeer, delivery_event

SENDER = "engagements@firm.example"
SENDER_NAME = "Firm Engagements"
SIGNATORY = Recipient(name="Sam Signer", email="sam@acme.example")
MANAGER = Recipient(name="Erin Manager", email="erin@acme.example")
WINDOW = timedelta(minutes=10)
POLL = timedelta(seconds=30)


class WorkerDies(Exception):
    """Stands for the worker process dying: nothing after it in the attempt runs."""


class DiesAfterHandingOver:
    """A real sender, but the attempt dies right after the sender took the message (``only``: a message
    to that address; the recipients of one email are handed over side by side, in no set order)."""

    def __init__(self, inner: EmailSender, deaths: int = 1, only: str | None = None) -> None:
        self._inner = inner
        self.name = inner.name
        self.from_email = inner.from_email
        self.from_name = inner.from_name
        self.idempotent = inner.idempotent
        self.deaths = deaths
        self._only = only

    async def send(self, message: OutgoingEmail) -> SendReceipt:
        receipt = await self._inner.send(message)
        if self.deaths and self._only in (None, message.to_email):
            self.deaths -= 1
            raise WorkerDies("the worker died after SendGrid's 202")
        return receipt


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def sendgrid(peer: SendGridPeer, timeout_seconds: float = 5.0) -> SendGridSender:
    return SendGridSender(peer.api_key, SENDER, SENDER_NAME, host=peer.host, timeout_seconds=timeout_seconds)


def activities(store: EngagementStore, sender: Any, clock: Clock) -> EmailActivities:
    return EmailActivities(
        OutboxStore(store.engine), sender, reconciliation_window=WINDOW, reconciliation_poll=POLL, clock=clock
    )


def request_to(*recipients: Recipient, kind: EmailKind = EmailKind.NDA_REQUEST) -> EmailRequest:
    spec = parse_spec(spec_data())
    return EmailRequest(
        engagement_id=f"engagement-{uuid.uuid4().hex}",
        kind=kind,
        step=kind.value,
        occurrence=1,
        recipients=list(recipients),
        facts=sample_facts(kind, spec),
    )


async def attempt(activities: EmailActivities, request: EmailRequest) -> EmailOutcome:
    return await ActivityEnvironment().run(activities.send_email, request)


async def dies_after_sendgrid_accepted(
    store: EngagementStore, peer: SendGridPeer, clock: Clock, request: EmailRequest, only: str | None = None
) -> None:
    """A first attempt whose worker dies once SendGrid has accepted the message, before it is marked sent."""
    with pytest.raises(WorkerDies):
        await attempt(activities(store, DiesAfterHandingOver(sendgrid(peer), only=only), clock), request)


async def must_wait(activities: EmailActivities, request: EmailRequest) -> timedelta:
    with pytest.raises(ApplicationError) as caught:
        await attempt(activities, request)
    assert caught.value.type == "EmailOutcomeUnknown"
    assert not caught.value.non_retryable
    assert caught.value.next_retry_delay is not None
    return caught.value.next_retry_delay


async def row_of(store: EngagementStore, request: EmailRequest, recipient: Recipient) -> Any:
    key = message_key(request.engagement_id, request.step, recipient.email, request.occurrence)
    return await OutboxStore(store.engine).message(key)


async def sendgrid_posts(store: EngagementStore, *events: dict[str, Any]) -> None:
    """What the Event Webhook records once a post is verified (the HTTP side is in test_webhook.py)."""
    await DeliveryEventStore(store.engine).record(parse_post(json.dumps(list(events)).encode()).events)


def keys_sent(peer: SendGridPeer) -> list[str]:
    return [r.payload["custom_args"]["message_key"] for r in peer.received]


async def test_a_retry_after_death_waits_and_a_delivery_event_settles_it(
    store: EngagementStore, peer: SendGridPeer
) -> None:
    clock = Clock()
    request = request_to(SIGNATORY)
    await dies_after_sendgrid_accepted(store, peer, clock, request)
    assert (await row_of(store, request, SIGNATORY)).state == "sending"
    [accepted] = peer.received

    # The retry cannot know whether SendGrid has it: it must not send blindly; it waits for events.
    retry = activities(store, sendgrid(peer), clock)
    assert await must_wait(retry, request) == POLL
    row = await row_of(store, request, SIGNATORY)
    assert row.state == "unknown" and row.unknown_since == clock.now
    assert len(peer.received) == 1

    await sendgrid_posts(store, delivery_event(accepted, "processed"), delivery_event(accepted, "delivered"))
    clock.now += timedelta(seconds=30)
    outcome = await attempt(retry, request)

    assert outcome == EmailOutcome(sent=[SIGNATORY.email], failed=[])
    assert len(peer.received) == 1, "sent a second time"
    assert (await row_of(store, request, SIGNATORY)).state == "delivered"


async def test_any_event_proves_the_send_even_one_that_moves_no_state(
    store: EngagementStore, peer: SendGridPeer
) -> None:
    """SendGrid posts only the event types the account selected: an open alone proves it was sent."""
    clock = Clock()
    request = request_to(SIGNATORY)
    await dies_after_sendgrid_accepted(store, peer, clock, request)
    retry = activities(store, sendgrid(peer), clock)
    await must_wait(retry, request)

    await sendgrid_posts(store, delivery_event(peer.received[0], "open"))
    assert (await row_of(store, request, SIGNATORY)).state == "unknown"
    outcome = await attempt(retry, request)

    assert outcome.sent == [SIGNATORY.email]
    assert len(peer.received) == 1
    assert (await row_of(store, request, SIGNATORY)).state == "sent"


async def test_without_any_event_it_sends_again_only_after_the_window(
    store: EngagementStore, peer: SendGridPeer
) -> None:
    clock = Clock()
    request = request_to(SIGNATORY)
    await dies_after_sendgrid_accepted(store, peer, clock, request)
    retry = activities(store, sendgrid(peer), clock)
    assert await must_wait(retry, request) == POLL
    became_unknown = clock.now

    clock.now = became_unknown + WINDOW - timedelta(seconds=10)
    assert await must_wait(retry, request) == timedelta(seconds=10)  # never past the window's end
    assert len(peer.received) == 1

    clock.now = became_unknown + WINDOW
    outcome = await attempt(retry, request)

    # The deliberate at-least-once fallback: the same message, with the same key, a second time.
    assert outcome.sent == [SIGNATORY.email]
    key = message_key(request.engagement_id, request.step, SIGNATORY.email, request.occurrence)
    assert keys_sent(peer) == [key, key]
    row = await row_of(store, request, SIGNATORY)
    assert row.state == "sent" and row.attempts == 2
    assert row.provider_message_id == peer.received[1].message_id
    assert await attempt(retry, request) == outcome  # and never a third time
    assert len(peer.received) == 2


async def test_a_sender_that_takes_a_key_once_is_given_an_unknown_message_again_at_once(
    store: EngagementStore, tmp_path: Path
) -> None:
    """The outbox folder names each file after its message key: a second write replaces the first, so a
    message left "sending" by a dead worker is written again at once instead of waiting for events
    that this sender never produces (a lane behind it would otherwise wait out the whole window)."""
    clock = Clock()
    request = request_to(SIGNATORY)
    folder = OutboxFolderSender(tmp_path / "outbox", SENDER, SENDER_NAME)
    with pytest.raises(WorkerDies):
        await attempt(activities(store, DiesAfterHandingOver(folder), clock), request)
    assert (await row_of(store, request, SIGNATORY)).state == "sending"

    outcome = await attempt(activities(store, folder, clock), request)  # no time has passed

    assert outcome == EmailOutcome(sent=[SIGNATORY.email], failed=[])
    row = await row_of(store, request, SIGNATORY)
    assert row.state == "sent" and row.attempts == 2
    assert [path.name for path in (tmp_path / "outbox").iterdir()] == [f"{row.message_key}.eml"]


async def test_a_lost_answer_is_reconciled_from_events(store: EngagementStore, peer: SendGridPeer) -> None:
    """SendGrid took the message but its answer came too late for the client's timeout."""
    clock = Clock()
    request = request_to(SIGNATORY)
    peer.delay_next(0.5)
    impatient = activities(store, sendgrid(peer, timeout_seconds=0.1), clock)

    assert await must_wait(impatient, request) == POLL
    assert (await row_of(store, request, SIGNATORY)).state == "unknown"
    accepted = await late_acceptance(peer)

    await sendgrid_posts(store, delivery_event(accepted, "delivered"))
    outcome = await attempt(impatient, request)
    assert outcome.sent == [SIGNATORY.email]
    assert len(peer.received) == 1
    assert (await row_of(store, request, SIGNATORY)).state == "delivered"


async def late_acceptance(peer: SendGridPeer) -> PeerRequest:
    """The peer finishes the slow request on its own thread; wait (briefly) until it has."""
    for _ in range(200):
        if peer.received:
            return peer.received[0]
        await asyncio.sleep(0.01)
    raise AssertionError("the peer never accepted the slow message")


async def test_one_unknown_message_does_not_hold_back_the_others(store: EngagementStore, peer: SendGridPeer) -> None:
    clock = Clock()
    request = request_to(SIGNATORY, MANAGER)
    await dies_after_sendgrid_accepted(store, peer, clock, request, only=SIGNATORY.email)
    retry = activities(store, sendgrid(peer), clock)

    await must_wait(retry, request)

    assert sorted(r.payload["personalizations"][0]["to"][0]["email"] for r in peer.received) == [
        MANAGER.email,
        SIGNATORY.email,
    ]
    assert (await row_of(store, request, MANAGER)).state == "sent"
    assert (await row_of(store, request, SIGNATORY)).state == "unknown"


async def test_server_errors_leave_the_message_pending_and_it_is_sent_once(
    store: EngagementStore, peer: SendGridPeer
) -> None:
    clock = Clock()
    request = request_to(SIGNATORY)
    peer.fail_next(503)
    sender = activities(store, sendgrid(peer), clock)
    with pytest.raises(ApplicationError) as caught:
        await attempt(sender, request)
    assert caught.value.type == "EmailTemporarilyFailed" and not caught.value.non_retryable
    row = await row_of(store, request, SIGNATORY)
    assert row.state == "pending" and "503" in row.error

    assert (await attempt(sender, request)).sent == [SIGNATORY.email]
    assert len(peer.received) == 1
    assert (await row_of(store, request, SIGNATORY)).error is None


async def test_a_session_invite_carries_the_invitation_to_sendgrid(store: EngagementStore, peer: SendGridPeer) -> None:
    request = request_to(SIGNATORY, kind=EmailKind.SESSION_INVITE)
    await attempt(activities(store, sendgrid(peer), Clock()), request)

    [accepted] = peer.received
    [attachment] = accepted.payload["attachments"]
    assert attachment["type"] == "text/calendar; method=REQUEST" and attachment["filename"] == "invite.ics"
    ics = base64.b64decode(attachment["content"]).decode()
    assert f'ORGANIZER;CN="{SENDER_NAME}":mailto:{SENDER}' in ics
    assert f"mailto:{SIGNATORY.email}" in ics and f"UID:{request.facts['session_uid']}" in ics
    assert accepted.payload["categories"] == ["session_invite"]


def people(count: int) -> list[Recipient]:
    return [Recipient(name=f"Person {n}", email=f"person{n}@acme.example") for n in range(count)]


async def test_the_recipients_of_one_email_are_handed_over_side_by_side(
    store: EngagementStore, peer: SendGridPeer
) -> None:
    clock = Clock()
    recipients = people(3)
    request = request_to(*recipients)
    peer.hold_next(503, count=3)
    sender = activities(store, sendgrid(peer, timeout_seconds=60), clock)
    first = asyncio.create_task(attempt(sender, request))

    async def all_in_flight() -> bool:
        return peer.held == len(recipients)

    await eventually(all_in_flight, "every recipient's message in flight at once")  # one after another: never
    peer.release()
    with pytest.raises(ApplicationError) as caught:
        await first
    assert caught.value.type == "EmailTemporarilyFailed"
    assert [(await row_of(store, request, r)).state for r in recipients] == ["pending"] * 3

    outcome = await attempt(sender, request)
    assert outcome.sent == [r.email for r in recipients]  # in recipient order, whatever order they went in
    assert sorted(keys_sent(peer)) == sorted(
        message_key(request.engagement_id, request.step, r.email, 1) for r in recipients
    )


async def test_no_more_than_a_few_messages_of_one_email_are_in_flight_at_once(
    store: EngagementStore, peer: SendGridPeer
) -> None:
    clock = Clock()
    recipients = people(RECIPIENTS_AT_ONCE + 3)
    request = request_to(*recipients)
    peer.hold_next(503, count=len(recipients))
    sender = activities(store, sendgrid(peer, timeout_seconds=60), clock)
    first = asyncio.create_task(attempt(sender, request))

    async def bound_reached() -> bool:
        return peer.held == RECIPIENTS_AT_ONCE

    await eventually(bound_reached, "the first messages in flight")
    peer.release()
    with pytest.raises(ApplicationError):
        await first
    assert len(peer.requests) == len(recipients)  # every one was tried, the later ones as the first answered
    assert peer.most_held == RECIPIENTS_AT_ONCE

    assert (await attempt(sender, request)).sent == [r.email for r in recipients]
    assert len(peer.received) == len(recipients)


async def test_a_failure_of_one_recipient_waits_for_the_others_to_settle(
    store: EngagementStore, peer: SendGridPeer
) -> None:
    """A message is never cut off between "sending" and its answer because another one failed."""
    clock = Clock()
    request = request_to(SIGNATORY, MANAGER)
    peer.refuse_address(SIGNATORY.email, 500)  # a temporary failure: the attempt fails
    peer.hold_next(503)  # ... while the manager's message waits for its answer (503 once let go)
    sender = activities(store, sendgrid(peer, timeout_seconds=60), clock)
    first = asyncio.create_task(attempt(sender, request))

    async def manager_in_flight() -> bool:
        return peer.held == 1 and any(r.status == 500 for r in peer.requests)

    await eventually(manager_in_flight, "the signatory refused and the manager's message in flight")
    assert not first.done()  # the signatory's failure is not raised while the manager's send is open
    peer.release()
    with pytest.raises(ApplicationError) as caught:
        await first
    assert caught.value.type == "EmailTemporarilyFailed"
    assert (await row_of(store, request, MANAGER)).state == "pending"  # released, never left "sending"
    assert (await row_of(store, request, SIGNATORY)).state == "pending"


async def test_an_address_listed_twice_is_sent_one_message(store: EngagementStore, peer: SendGridPeer) -> None:
    """An address listed twice (in any case) is one message, handed over once and reported for each listing
    (the activity delivers each address once: side by side, two deliveries would race for its one row)."""
    clock = Clock()
    shouting = Recipient(name=SIGNATORY.name, email=SIGNATORY.email.upper())
    request = request_to(SIGNATORY, MANAGER, shouting)
    outcome = await attempt(activities(store, sendgrid(peer), clock), request)

    assert outcome.sent == [SIGNATORY.email, MANAGER.email, shouting.email] and outcome.failed == []
    assert sorted(keys_sent(peer)) == sorted(
        message_key(request.engagement_id, request.step, r.email, 1) for r in (SIGNATORY, MANAGER)
    )
    assert (await row_of(store, request, SIGNATORY)).state == "sent"
