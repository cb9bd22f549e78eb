"""Handover sessions (scheduled, moved, cancelled), the transition-closing notice, and delivery
problems that SendGrid reports back to the engagement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from domain.commands import CancelSession, RescheduleSession, ScheduleSession
from domain.state import DeliveryProblem
from domain.vocabulary import Phase
from tests.helpers import Harness
from tests.test_updates import refused


async def test_sessions_are_invited_moved_and_cancelled_with_a_growing_sequence(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    handle = await harness.start(harness.spec())
    view = await harness.drive_to(handle, Phase.NOTICE)
    assert view.timeline.end_date is not None
    first = view.timeline.end_date - timedelta(days=20)
    await harness.update(handle, ScheduleSession(actor="f", session_id="arch", title="Architecture", starts_at=first))
    moved = first + timedelta(days=2)
    await harness.update(handle, RescheduleSession(actor="f", session_id="arch", starts_at=moved))
    await harness.update(handle, CancelSession(actor="f", session_id="arch", reason="merged"))
    view = await harness.settle(handle, Phase.NOTICE)
    [session] = view.sessions
    assert (session.status, session.sequence, session.starts_at) == ("cancelled", 2, moved)

    rows = await harness.mail.outbox(handle.id)
    steps = {r.kind for r in rows}
    assert {"session_invite", "session_rescheduled", "session_cancelled"} <= steps
    recipients = {r.recipient for r in rows if r.kind == "session_cancelled"}
    assert recipients == {"lee@acme.example", "erin@acme.example", "fran@firm.example"}

    assert "is already cancelled" in await refused(
        handle, "reschedule_session", RescheduleSession(actor="f", session_id="arch", starts_at=moved)
    )
    assert "no session nope" in await refused(handle, "cancel_session", CancelSession(actor="f", session_id="nope"))
    past = datetime(2020, 1, 1, tzinfo=UTC)
    await harness.update(handle, ScheduleSession(actor="f", session_id="ops", title="Runbooks", starts_at=first))
    assert "must start in the future" in await refused(
        handle, "reschedule_session", RescheduleSession(actor="f", session_id="ops", starts_at=past)
    )


async def test_the_client_is_told_before_the_transition_window_closes(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    handle = await harness.start(harness.spec())
    await harness.drive_to(handle, Phase.NOTICE)
    await env.sleep(timedelta(days=60, hours=1))
    await harness.settle(handle, Phase.TRANSITION)
    assert "transition_closing" not in {r.kind for r in await harness.mail.outbox(handle.id)}
    await env.sleep(timedelta(days=23, hours=1))  # 7 days before the 30-day window closes
    await harness.settle(handle, Phase.TRANSITION)
    closing = [r for r in await harness.mail.outbox(handle.id) if r.kind == "transition_closing"]
    assert {r.recipient for r in closing} == {"erin@acme.example", "lee@acme.example"}


async def test_a_bounced_client_email_shows_in_status_once(env: WorkflowEnvironment, harness: Harness) -> None:
    handle = await harness.start(harness.spec())
    await harness.settle(handle, Phase.AWAITING_NDA)
    [row] = await harness.mail.outbox(handle.id)
    problem = DeliveryProblem(
        message_key=row.message_key,
        kind=row.kind,
        recipient=row.recipient,
        event="bounce",
        reason="550 5.1.1 mailbox does not exist",
        at=datetime.now(UTC),
    )
    await handle.signal("email_delivery_problem", problem)
    await handle.signal("email_delivery_problem", problem)  # SendGrid sends duplicates
    view = await harness.settle(handle, Phase.AWAITING_NDA)
    assert [p.message_key for p in view.delivery_problems] == [row.message_key]
    assert view.delivery_problems[0].recipient == "sam@acme.example"
