"""The replay net: each test drives one path of the engagement against the real peers, checks what
the path is for, and hands the resulting histories to ``tests/histories_io.keep`` (replayed with
today's code; saved as ``tests/histories/<name>_<label>.json`` under ``RECORD_HISTORIES=<label>``).

Together the saved histories cover every update and signal of the engagement, the NDA deadline, a
cancellation during onboarding, a continue-as-new, emergency revocations, both kinds of access
review, the admin alert of an unconfirmed revocation, and cleared, failed and cancelled checks.
The specs are as small as each path allows, to keep the saved histories small.

Record a new generation with today's code (existing files are never overwritten):
``RECORD_HISTORIES=v4 .venv/bin/python -m pytest tests/test_history_paths.py``, then add the names to
``tests/test_replay.py``. The continue-as-new path runs on the Temporal dev server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from adapters.db import EngagementStore
from adapters.scim import ScimDirectory
from domain.commands import (
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    CancelEngagement,
    CancelSession,
    ChangeRole,
    GiveNotice,
    MoveEndDate,
    RecordCheckResult,
    RecordDocument,
    RecordNdaSigned,
    RecordSessionHeld,
    RemoveEngineer,
    RequestAccessReview,
    RescheduleSession,
    RestoreAccess,
    RevokeAccessNow,
    ScheduleSession,
)
from domain.spec import EngagementSpec, EngineerSpec
from domain.state import CheckCompleted, DeliveryProblem
from domain.views import EngagementSummary, StatusView
from domain.vocabulary import CheckStatus, KnowledgeTransferDocument, Phase
from tests.conftest import ScimServer, free_port
from tests.devserver import dev_server, requires_temporal
from tests.helpers import Harness
from tests.histories_io import closed_history, keep
from tests.sample_spec import ROLES, spec_data
from tests.tcp_proxy import TcpProxy

__all__ = ["dev_server"]  # a fixture, imported for pytest

ALICE, BOB, CAROL, DAVE = "alice@firm.example", "bob@firm.example", "carol@firm.example", "dave@firm.example"
DEVELOPER_NON_PROD = {"repo-write", "staging-deploy"}
DEVELOPER_ALL = DEVELOPER_NON_PROD | {"prod-readonly"}


def lean(harness: Harness, *people: str, **changes: Any) -> EngagementSpec:
    """The sample spec with only these engineers (Alice: developer with production; Carol: analyst),
    every role kept but production groups only for the roles someone may use in production."""
    engineers = [e for e in spec_data()["engineers"] if e["email"] in people]
    in_production = {e["role"] for e in engineers if e.get("production_access")}
    roles = {
        name: {**policy, "production": policy["production"] if name in in_production else []}
        for name, policy in ROLES.items()
    }
    return harness.spec(engineers=engineers, roles=roles, **changes)


def newcomer(email: str, role: str = "analyst") -> EngineerSpec:
    return EngineerSpec(name=email.split("@")[0].title(), email=email, role=role, jurisdiction="PT")


async def settle_on(
    harness: Harness, handle: WorkflowHandle[Any, Any], phase: Phase, done: Callable[[StatusView], bool]
) -> StatusView:
    """Settle in the phase until ``done`` holds (a signal from a check may still be on its way)."""
    for _ in range(300):
        view = await harness.settle(handle, phase)
        if done(view):
            return view
        await asyncio.sleep(0.1)
    raise AssertionError(f"settled in {phase} but the condition never held: {view.model_dump_json(indent=1)}")


def check_of(view: StatusView, email: str) -> CheckStatus:
    return next(e.check for e in view.engineers if e.email == email)


async def nothing_left(harness: Harness, *people: str) -> None:
    for person in people:
        identity = await harness.iam(person)
        assert identity.groups == set() and not identity.active, (person, identity)


async def sent(harness: Harness, handle: WorkflowHandle[Any, Any]) -> list[Any]:
    return [r for r in await harness.mail.outbox(handle.id) if r.state == "sent"]


async def add_by_hand(tenant: ScimDirectory, email: str, group: str) -> None:
    """Somebody at the client grants a group in the IAM, outside the engagement."""
    user = await tenant.find_user(email)
    assert user is not None
    await tenant.add_member(group, user.id)


async def test_every_update_and_both_signals(env: WorkflowEnvironment, harness: Harness) -> None:
    handle = await harness.start(lean(harness, ALICE, CAROL))

    # awaiting_nda: SendGrid reports the NDA request bounced (signal email_delivery_problem).
    await harness.settle(handle, Phase.AWAITING_NDA)
    [request] = await harness.mail.outbox(handle.id)
    problem = DeliveryProblem(
        message_key=request.message_key,
        kind=request.kind,
        recipient=request.recipient,
        event="bounce",
        reason="552 mailbox full",
        at=datetime(2026, 11, 2, tzinfo=UTC),
    )
    await handle.signal("email_delivery_problem", problem)
    view = await settle_on(harness, handle, Phase.AWAITING_NDA, lambda v: bool(v.delivery_problems))
    assert [(p.message_key, p.event) for p in view.delivery_problems] == [(request.message_key, "bounce")]

    # onboarding: a newcomer; Alice's check fails (signal background_check_completed from check 1).
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
    view = await harness.settle(handle, Phase.ONBOARDING)
    assert check_of(view, ALICE) is CheckStatus.IN_PROGRESS
    assert (await harness.iam(ALICE)).groups == DEVELOPER_NON_PROD
    await harness.update(handle, AddEngineer(actor="erin", engineer=newcomer(DAVE)))
    await harness.settle(handle, Phase.ONBOARDING)
    assert (await harness.iam(DAVE)).groups == {"ticketing"}
    await harness.update(handle, RecordCheckResult(actor="hr", email=ALICE, outcome="failed", notes="credentials"))
    view = await harness.settle(handle, Phase.DELIVERY)  # nobody is waiting for a check any more
    assert check_of(view, ALICE) is CheckStatus.FAILED
    await nothing_left(harness, ALICE)

    # delivery: Carol moves to a role with production (check 2, cleared), Dave leaves.
    await harness.update(handle, ChangeRole(actor="erin", email=CAROL, role="developer", production_access=True))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert check_of(view, CAROL) is CheckStatus.IN_PROGRESS
    assert (await harness.iam(CAROL)).groups == DEVELOPER_NON_PROD
    await harness.update(handle, RecordCheckResult(actor="hr", email=CAROL, outcome="cleared"))
    await settle_on(harness, handle, Phase.DELIVERY, lambda v: check_of(v, CAROL) is CheckStatus.CLEARED)
    assert (await harness.iam(CAROL)).groups == DEVELOPER_ALL
    await harness.update(handle, RemoveEngineer(actor="erin", email=DAVE))
    await harness.settle(handle, Phase.DELIVERY)
    await nothing_left(harness, DAVE)

    # The emergency brake, for one engineer and for everyone, and the way back.
    await harness.update(handle, RevokeAccessNow(actor="ciso", email=CAROL, reason="lost laptop"))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert next(e for e in view.engineers if e.email == CAROL).suspended
    await nothing_left(harness, CAROL)
    await harness.update(handle, RestoreAccess(actor="ciso", email=CAROL))
    await harness.settle(handle, Phase.DELIVERY)
    assert (await harness.iam(CAROL)).groups == DEVELOPER_ALL
    await harness.update(handle, RevokeAccessNow(actor="ciso", reason="suspected breach"))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert view.access_suspended
    await nothing_left(harness, ALICE, CAROL, DAVE)
    await harness.update(handle, RestoreAccess(actor="ciso"))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert not view.access_suspended
    assert (await harness.iam(CAROL)).groups == DEVELOPER_ALL
    await nothing_left(harness, ALICE, DAVE)  # failed and removed: restoring the policy gives them nothing

    # A requested access review removes a grant added by hand.
    await add_by_hand(harness.tenant, CAROL, "staging-admin")
    await harness.update(handle, RequestAccessReview(actor="ian"))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert view.last_access_review_at is not None
    assert (await harness.iam(CAROL)).groups == DEVELOPER_ALL

    # notice: the end date moves, documents arrive, sessions are scheduled, moved, cancelled, held.
    await harness.update(handle, GiveNotice(actor="erin", given_by="client"))
    view = await harness.settle(handle, Phase.NOTICE)
    assert view.timeline.notice_given_at and view.timeline.end_date
    new_end = view.timeline.end_date + timedelta(days=10)
    await harness.update(handle, MoveEndDate(actor="erin", end_date=new_end, reason="budget"))
    for document in (KnowledgeTransferDocument.SYSTEM_RUNBOOKS, KnowledgeTransferDocument.DECISION_LOGS):
        await harness.update(
            handle, RecordDocument(actor="fran", document=document, location=f"https://wiki.example/{document}")
        )
    starts = view.timeline.notice_given_at + timedelta(days=20)
    for session_id, title in (("s1", "Architecture"), ("s2", "Runbooks")):
        await harness.update(
            handle,
            ScheduleSession(actor="fran", session_id=session_id, title=title, starts_at=starts),
        )
    await harness.update(handle, RescheduleSession(actor="fran", session_id="s2", starts_at=starts + timedelta(1)))
    await harness.update(handle, CancelSession(actor="fran", session_id="s2", reason="merged"))
    await env.sleep(timedelta(days=21))
    await harness.update(handle, RecordSessionHeld(actor="fran", session_id="s1"))
    view = await harness.settle(handle, Phase.NOTICE)
    assert {s.session_id: (s.status, s.sequence) for s in view.sessions} == {"s1": ("held", 0), "s2": ("cancelled", 2)}
    assert {d.name for d in view.documents if d.delivered_at} == {"system_runbooks", "decision_logs"}
    assert (await harness.iam(CAROL)).groups == DEVELOPER_ALL  # access holds until the moved end date

    # transition: everything revoked at the moved end date; a question asked and answered.
    await env.sleep(timedelta(days=50))
    view = await harness.settle(handle, Phase.TRANSITION)
    assert view.timeline.end_date == new_end
    await nothing_left(harness, ALICE, CAROL, DAVE)
    await harness.update(handle, AskQuestion(actor="lee", question_id="q1", text="Where is the DR plan?"))
    await harness.update(handle, AnswerQuestion(actor="fran", question_id="q1", answer="runbooks/dr"))
    view = await harness.settle(handle, Phase.TRANSITION)
    assert [(q.question_id, q.answer) for q in view.questions] == [("q1", "runbooks/dr")]

    summary = await handle.result()  # the transition window closes (the test server skips to it)
    assert isinstance(summary, EngagementSummary) and summary.phase is Phase.CLOSED
    assert (summary.remaining_grants, summary.active_identities) == (0, 0)
    assert (summary.documents_delivered, summary.sessions_held, summary.questions_answered) == (2, 1, 1)
    kinds = {r.kind for r in await sent(harness, handle)}
    assert {
        "nda_recorded",
        "engineer_added",
        "engineer_removed",
        "role_changed",
        "check_result",
        "emergency_revocation",
        "access_review",
        "notice_received",
        "end_date_moved",
        "session_invite",
        "session_rescheduled",
        "session_cancelled",
        "handover_reminder",
        "revocation_report",
        "transition_closing",
        "closing_report",
    } <= kinds
    actions = [a.action for a in await harness.store.audit_entries(handle.id)]
    for action in ("email_delivery_problem", "check_completed", "emergency_revocation", "access_restored"):
        assert action in actions
    grants = await harness.store.grants(handle.id)
    assert {g.revoked_by for g in grants if g.engineer_email == ALICE} == {"background-check (failed)"}

    failed, cleared = [await closed_history(harness.client, f"{handle.id}/check/{n}") for n in (1, 2)]
    for check, outcome in ((1, "failed"), (2, "cleared")):
        check_handle = harness.client.get_workflow_handle(f"{handle.id}/check/{check}", result_type=CheckCompleted)
        result = await check_handle.result()
        assert result.outcome == outcome
    await keep("every_update", await handle.fetch_history())
    await keep("every_update_check_failed", failed)
    await keep("every_update_check_cleared", cleared)


async def test_nda_deadline_cancels_after_reminders(env: WorkflowEnvironment, harness: Harness) -> None:
    # A reminder every 10 days (rather than 3) keeps the saved history small: two, then the deadline.
    handle = await harness.start(lean(harness, CAROL, nda_reminder_interval=timedelta(days=10)))
    await harness.settle(handle, Phase.AWAITING_NDA)
    await env.sleep(timedelta(days=10, hours=1))
    await harness.settle(handle, Phase.AWAITING_NDA)
    assert [(r.kind, r.occurrence) for r in await sent(harness, handle)] == [("nda_request", 1), ("nda_reminder", 1)]

    summary = await handle.result()  # the test server skips to the 30-day deadline
    assert summary.phase is Phase.CANCELLED
    view = await harness.status(handle)
    assert view.cancelled_reason and "NDA was not signed" in view.cancelled_reason
    rows = await sent(harness, handle)
    assert sorted(r.occurrence for r in rows if r.kind == "nda_reminder") == [1, 2]  # day 30 is the deadline
    assert {r.kind for r in rows} == {"nda_request", "nda_reminder", "cancellation"}
    assert "sam@acme.example" in {r.recipient for r in rows if r.kind == "cancellation"}
    assert not (await harness.iam(CAROL)).exists
    assert await harness.store.grants(handle.id) == []
    await keep("nda_expired", await handle.fetch_history())


async def test_cancelled_in_onboarding_cancels_the_running_check(env: WorkflowEnvironment, harness: Harness) -> None:
    handle = await harness.start(lean(harness, ALICE, CAROL))
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
    view = await harness.settle(handle, Phase.ONBOARDING)
    assert check_of(view, ALICE) is CheckStatus.IN_PROGRESS
    assert (await harness.iam(ALICE)).groups == DEVELOPER_NON_PROD

    ack = await harness.update(handle, CancelEngagement(actor="erin", reason="contract withdrawn"))
    assert ack.phase is Phase.CANCELLED
    summary = await handle.result()
    assert summary.phase is Phase.CANCELLED
    assert (summary.remaining_grants, summary.active_identities) == (0, 0)
    view = await harness.status(handle)
    assert view.cancelled_reason == "contract withdrawn"
    assert check_of(view, ALICE) is CheckStatus.CANCELLED
    await nothing_left(harness, ALICE, CAROL)
    grants = await harness.store.grants(handle.id)
    assert grants and all(g.revoked_at is not None for g in grants)
    assert "cancellation" in {r.kind for r in await sent(harness, handle)}

    check = await closed_history(harness.client, f"{handle.id}/check/1")
    described = await harness.client.get_workflow_handle(f"{handle.id}/check/1").describe()
    assert described.status is WorkflowExecutionStatus.CANCELED
    await keep("cancelled_in_onboarding", await handle.fetch_history())
    await keep("cancelled_in_onboarding_check", check)


async def test_emergency_revocation_and_restoration_during_a_check(env: WorkflowEnvironment, harness: Harness) -> None:
    handle = await harness.start(lean(harness, ALICE, CAROL))
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
    await harness.settle(handle, Phase.ONBOARDING)

    # Everyone, while Alice's check runs: nothing left, the client told once the IAM confirms it.
    await harness.update(handle, RevokeAccessNow(actor="ciso", reason="suspected breach"))
    view = await harness.settle(handle, Phase.ONBOARDING)
    assert view.access_suspended and check_of(view, ALICE) is CheckStatus.IN_PROGRESS
    await nothing_left(harness, ALICE, CAROL)
    told = [r for r in await sent(harness, handle) if r.kind == "emergency_revocation"]
    assert {r.recipient for r in told} >= {"ian@acme.example", "erin@acme.example"}
    await harness.update(handle, RestoreAccess(actor="ciso"))
    await harness.settle(handle, Phase.ONBOARDING)
    assert (await harness.iam(ALICE)).groups == DEVELOPER_NON_PROD  # still no production before the check
    assert (await harness.iam(CAROL)).groups == {"ticketing"}

    # The check clears: production now, and the revocation is in the ledger under who asked for it.
    await harness.update(handle, RecordCheckResult(actor="hr", email=ALICE, outcome="cleared"))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert not view.access_suspended
    assert (await harness.iam(ALICE)).groups == DEVELOPER_ALL
    revoked = [g for g in await harness.store.grants(handle.id) if g.revoked_at is not None]
    assert {(g.engineer_email, g.revoked_by) for g in revoked} == {(ALICE, "ciso"), (CAROL, "ciso")}
    await keep("emergency_revoke_restore", await handle.fetch_history())


async def into_delivery_with_drift(harness: Harness, spec: EngagementSpec) -> WorkflowHandle[Any, Any]:
    """Carol alone (no check) in delivery, and a group added to her by hand at the client."""
    handle = await harness.start(spec)
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert view.last_access_review_at is None
    await add_by_hand(harness.tenant, CAROL, "staging-admin")
    assert (await harness.iam(CAROL)).groups == {"ticketing", "staging-admin"}
    return handle


async def review_removed_the_drift(harness: Harness, handle: WorkflowHandle[Any, Any]) -> None:
    assert (await harness.iam(CAROL)).groups == {"ticketing"}
    reports = [r for r in await sent(harness, handle) if r.kind == "access_review"]
    assert {r.occurrence for r in reports} == {1} and "ian@acme.example" in {r.recipient for r in reports}
    assert all("1 engineer corrected" in r.subject and "staging-admin" in r.body_text for r in reports)
    changes = [a.details for a in await harness.store.audit_entries(handle.id) if a.action == "access_changed"]
    assert [(d["engineer"], d["revoked"]) for d in changes if d["reason"] == "access review"] == [
        (CAROL, ["staging-admin"])
    ]


async def test_scheduled_access_review_removes_drift(env: WorkflowEnvironment, harness: Harness) -> None:
    handle = await into_delivery_with_drift(harness, lean(harness, CAROL))
    await env.sleep(timedelta(days=30, hours=1))  # the review timer (every 30 days) fires
    view = await settle_on(harness, handle, Phase.DELIVERY, lambda v: v.last_access_review_at is not None)
    assert view.next_deadline and view.next_deadline.label == "next access review"
    await review_removed_the_drift(harness, handle)
    await keep("access_review_scheduled", await handle.fetch_history())


async def test_requested_access_review_removes_drift(env: WorkflowEnvironment, harness: Harness) -> None:
    handle = await into_delivery_with_drift(harness, lean(harness, CAROL))
    before = await harness.status(handle)
    await harness.update(handle, RequestAccessReview(actor="ian"))
    view = await harness.settle(handle, Phase.DELIVERY)
    assert view.last_access_review_at is not None
    assert before.next_deadline and view.next_deadline  # the next scheduled review counts from this one
    assert view.next_deadline.at > before.next_deadline.at
    await review_removed_the_drift(harness, handle)
    await keep("access_review_requested", await handle.fetch_history())


async def test_unconfirmed_revocation_raises_an_admin_alert(
    env: WorkflowEnvironment, harness: Harness, scim_server: ScimServer
) -> None:
    proxy = TcpProxy(scim_server.port, free_port())
    await proxy.up()
    tenant_path = harness.tenant.base_url.rsplit("/", 1)[1]
    spec = lean(harness, CAROL, iam={"scim_base_url": f"http://127.0.0.1:{proxy.port}/{tenant_path}"})
    handle = await harness.start(spec)
    try:
        await harness.settle(handle, Phase.AWAITING_NDA)
        await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
        await harness.settle(handle, Phase.DELIVERY)
        assert (await harness.iam(CAROL)).groups == {"ticketing"}

        await proxy.down()  # the client's IAM goes away, then Carol leaves
        await harness.update(handle, RemoveEngineer(actor="erin", email=CAROL))
        for _ in range(60):  # skip through the retries until the alert is raised (after 15 minutes)
            if await harness.alerts(handle):
                break
            await env.sleep(timedelta(minutes=5))
        [alert] = await harness.alerts(handle)
        assert alert.kind == "revocation_unconfirmed" and alert.details["engineer"] == CAROL
        assert (await harness.iam(CAROL)).groups == {"ticketing"}  # the IAM indeed still holds it
        assert all(g.revoked_at is None for g in await harness.store.grants(handle.id))
        assert not (await harness.status(handle)).settled

        await proxy.up()  # the IAM is back: a retry lands, and is read back
        for _ in range(60):
            if (await harness.status(handle)).settled:
                break
            await env.sleep(timedelta(minutes=2))
        await harness.settle(handle, Phase.DELIVERY)
        await nothing_left(harness, CAROL)
        grants = await harness.store.grants(handle.id)
        assert grants and all(g.revoked_at is not None for g in grants)
        assert len(await harness.alerts(handle)) == 1
        assert "engineer_removed" in {r.kind for r in await sent(harness, handle)}
        await keep("revocation_alert", await handle.fetch_history())
    finally:
        await proxy.down()


@requires_temporal
async def test_continue_as_new_carries_the_engagement_into_the_next_run(
    dev_server: WorkflowEnvironment, store: EngagementStore, tenant: ScimDirectory, tmp_path: Path
) -> None:
    # On the dev server: the time-skipping test server loses an update racing a continue-as-new.
    async with Harness.running(dev_server.client, store, tenant, tmp_path) as harness:
        handle = await harness.start(lean(harness, ALICE, CAROL), history_limit=50)
        await harness.settle(handle, Phase.AWAITING_NDA)
        await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam Signer"))
        await harness.settle(handle, Phase.ONBOARDING)
        await harness.update(handle, RecordCheckResult(actor="hr", email=ALICE, outcome="cleared"))
        # 50 events: the first run usually continues as new while Alice's check runs (the check, an
        # abandoned child, then reports to the next run); if not, commands follow until it does.
        view = await harness.settle(handle, Phase.DELIVERY)
        roles = ["developer", "analyst"]
        for n in range(10):  # one command at a time, each settled: none races the continue-as-new
            if view.runs > 1:
                break
            await harness.update(handle, ChangeRole(actor="erin", email=CAROL, role=roles[n % 2]))
            view = await harness.settle(handle, Phase.DELIVERY)
        assert view.runs > 1, "the workflow never continued as new"

        # The next run goes on where the first one stopped.
        await harness.update(handle, AddEngineer(actor="erin", engineer=newcomer(DAVE)))
        await harness.update(handle, RequestAccessReview(actor="ian"))
        view = await harness.settle(handle, Phase.DELIVERY)
        assert view.last_access_review_at is not None
        assert {e.email for e in view.engineers} == {ALICE, CAROL, DAVE}
        assert check_of(view, ALICE) is CheckStatus.CLEARED
        assert (await harness.iam(ALICE)).groups == DEVELOPER_ALL
        carol_role = next(e.role for e in view.engineers if e.email == CAROL)
        expected = DEVELOPER_NON_PROD if carol_role == "developer" else {"ticketing"}
        assert (await harness.iam(CAROL)).groups == expected
        assert (await harness.iam(DAVE)).groups == {"ticketing"}

        first = await closed_history(harness.client, handle.id, run_id=handle.first_execution_run_id)
        last = first.events[-1]
        assert last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        next_run = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        second = await harness.client.get_workflow_handle(handle.id, run_id=next_run).fetch_history()
        await keep("continue_as_new_run1", first)
        await keep("continue_as_new_run2", second)
