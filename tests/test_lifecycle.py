"""The whole engagement, contract to closed, against the real SCIM server and PostgreSQL."""

from __future__ import annotations

import email
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from domain.commands import (
    AnswerQuestion,
    AskQuestion,
    CancelSession,
    GiveNotice,
    MoveEndDate,
    RecordCheckResult,
    RecordNdaSigned,
    RecordSessionHeld,
    RescheduleSession,
    ScheduleSession,
)
from domain.views import EngagementSummary
from domain.vocabulary import Phase
from tests.helpers import Harness
from tests.histories_io import keep

ALICE, BOB, CAROL = "alice@firm.example", "bob@firm.example", "carol@firm.example"


def kinds(harness: Harness) -> list[str]:
    return [email.message_from_bytes(p.read_bytes())["X-Email-Kind"] for p in harness.outbox_files()]


async def test_full_lifecycle_contract_to_closed(env: WorkflowEnvironment, harness: Harness) -> None:
    spec = harness.spec()
    handle = await harness.start(spec)

    # awaiting_nda: only the NDA request goes out; no identity exists anywhere.
    view = await harness.settle(handle, Phase.AWAITING_NDA)
    assert view.next_deadline and view.next_deadline.label == "NDA deadline"
    assert {(await harness.iam(e)).exists for e in (ALICE, BOB, CAROL)} == {False}
    rows = await harness.mail.outbox(handle.id)
    assert {(r.kind, r.recipient) for r in rows} == {("nda_request", "sam@acme.example")}

    # onboarding: non-production groups only until each check clears.
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
    view = await harness.settle(handle, Phase.ONBOARDING)
    alice, bob, carol = [await harness.iam(e) for e in (ALICE, BOB, CAROL)]
    assert alice.groups == {"repo-write", "staging-deploy"} and alice.active
    assert bob.groups == {"repo-read", "staging-admin"} and bob.active
    assert carol.groups == {"ticketing"} and carol.active
    assert {e.email: e.check.value for e in view.engineers} == {
        ALICE: "in_progress",
        BOB: "in_progress",
        CAROL: "not_required",
    }

    await harness.update(handle, RecordCheckResult(actor="hr", email=ALICE, outcome="cleared"))
    await harness.update(handle, RecordCheckResult(actor="hr", email=BOB, outcome="cleared"))

    # delivery: production groups for the cleared engineers, exactly their role's.
    view = await harness.settle(handle, Phase.DELIVERY)
    assert (await harness.iam(ALICE)).groups == {"repo-write", "staging-deploy", "prod-readonly"}
    assert (await harness.iam(BOB)).groups == {"repo-read", "staging-admin", "prod-admin"}
    assert (await harness.iam(CAROL)).groups == {"ticketing"}

    # notice: end = notice + 60 days; the client moves it 10 days later.
    ack = await harness.update(handle, GiveNotice(actor="erin", given_by="client"))
    assert ack.phase is Phase.NOTICE
    view = await harness.settle(handle, Phase.NOTICE)
    assert view.timeline.notice_given_at and view.timeline.end_date
    assert view.timeline.end_date - view.timeline.notice_given_at == timedelta(days=60)
    new_end = view.timeline.end_date + timedelta(days=10)
    await harness.update(handle, MoveEndDate(actor="erin", end_date=new_end))
    starts = view.timeline.notice_given_at + timedelta(days=20)
    await harness.hand_over(handle, starts)
    await harness.update(handle, ScheduleSession(actor="fran", session_id="s2", title="Runbooks", starts_at=starts))
    await harness.update(
        handle,
        RescheduleSession(actor="fran", session_id="s2", starts_at=starts + timedelta(days=1)),
    )
    await harness.update(handle, CancelSession(actor="fran", session_id="s2"))
    await env.sleep(timedelta(days=21))
    await harness.update(handle, RecordSessionHeld(actor="fran", session_id="s1"))
    view = await harness.settle(handle, Phase.NOTICE)
    assert all(d.delivered_at for d in view.documents)
    assert (await harness.iam(ALICE)).groups  # access holds until the (moved) end date

    # end date: everything revoked at once, read back from the IAM.
    await env.sleep(timedelta(days=50))
    view = await harness.settle(handle, Phase.TRANSITION)
    assert view.timeline.end_date == new_end
    for person in (ALICE, BOB, CAROL):
        identity = await harness.iam(person)
        assert identity.groups == set() and not identity.active
    assert view.revocation and all(not r.groups and not r.identity_active for r in view.revocation.engineers)

    # transition: questions asked and answered, no system access.
    await harness.update(handle, AskQuestion(actor="lee", question_id="q1", text="Where is the DR plan?"))
    await harness.update(handle, AnswerQuestion(actor="fran", question_id="q1", answer="runbooks/dr"))

    # closed: the final sweep, the closing report, and the summary.
    await env.sleep(timedelta(days=31))
    summary = await handle.result()
    assert isinstance(summary, EngagementSummary)
    assert summary.phase is Phase.CLOSED
    assert (summary.remaining_grants, summary.active_identities) == (0, 0)
    assert (summary.documents_delivered, summary.sessions_held, summary.questions_answered) == (5, 1, 1)
    for person in (ALICE, BOB, CAROL):  # the final sweep left nothing in the IAM
        identity = await harness.iam(person)
        assert identity.exists and not identity.active and identity.groups == set()

    sent = {r.kind for r in await harness.mail.outbox(handle.id) if r.state == "sent"}
    assert {
        "nda_request",
        "nda_recorded",
        "check_consent_request",
        "check_result",
        "access_granted",
        "notice_received",
        "end_date_moved",
        "session_invite",
        "session_rescheduled",
        "session_cancelled",
        "transition_closing",
        "revocation_report",
        "transition_open",
        "closing_report",
    } <= sent
    assert len(harness.outbox_files()) == len(await harness.mail.outbox(handle.id))

    grants = await harness.store.grants(handle.id)
    assert grants and all(g.revoked_at is not None for g in grants)
    assert {(g.engineer_email, g.group_name) for g in grants} >= {(ALICE, "prod-readonly"), (BOB, "prod-admin")}
    actions = [a.action for a in await harness.store.audit_entries(handle.id)]
    for expected in ("engagement_recorded", "nda_signed", "phase:onboarding", "notice_given", "phase:closed"):
        assert expected in actions

    # The fresh histories replay deterministically; RECORD_HISTORIES=v3 saves them as *_v3.json.
    await keep("engagement_full_lifecycle", await handle.fetch_history())
    for n in (1, 2):
        await keep(
            f"background_check_{n}", await harness.client.get_workflow_handle(f"{handle.id}/check/{n}").fetch_history()
        )
