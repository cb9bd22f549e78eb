"""Commands that are malformed or illegal in the current phase are refused and change nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.commands import (
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    CancelEngagement,
    ChangeRole,
    GiveNotice,
    MoveEndDate,
    RecordCheckResult,
    RecordDocument,
    RecordNdaSigned,
    RecordSessionHeld,
    RemoveEngineer,
    RequestAccessReview,
    ScheduleSession,
)
from domain.spec import EngineerSpec
from domain.vocabulary import KnowledgeTransferDocument, Phase
from tests.helpers import Harness

ALICE, CAROL = "alice@firm.example", "carol@firm.example"
DAVE = EngineerSpec(name="Dave New", email="dave@firm.example", role="developer", jurisdiction="PT")


async def refused(handle: WorkflowHandle[Any, Any], name: str, command: BaseModel | dict[str, Any]) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await handle.execute_update(name, command)
    cause = failure.value.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


async def accepted_updates(handle: WorkflowHandle[Any, Any]) -> int:
    count = 0
    async for event in handle.fetch_history_events():
        count += event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return count


async def test_commands_illegal_in_the_phase_are_refused_without_trace(
    env: WorkflowEnvironment, harness: Harness
) -> None:
    handle = await harness.start(harness.spec())
    before = await harness.settle(handle, Phase.AWAITING_NDA)
    soon = before.timeline.contract_signed_at + timedelta(days=1)
    illegal: list[tuple[str, BaseModel]] = [
        ("add_engineer", AddEngineer(actor="m", engineer=DAVE)),
        ("remove_engineer", RemoveEngineer(actor="m", email=ALICE)),
        ("change_role", ChangeRole(actor="m", email=CAROL, role="developer")),
        ("record_check_result", RecordCheckResult(actor="hr", email=ALICE, outcome="cleared")),
        ("give_notice", GiveNotice(actor="m", given_by="client")),
        ("move_end_date", MoveEndDate(actor="m", end_date=soon)),
        ("record_document", RecordDocument(actor="m", document=KnowledgeTransferDocument.DECISION_LOGS, location="x")),
        ("schedule_session", ScheduleSession(actor="m", session_id="s1", title="t", starts_at=soon)),
        ("record_session_held", RecordSessionHeld(actor="m", session_id="s1")),
        ("ask_question", AskQuestion(actor="m", question_id="q1", text="?")),
        ("answer_question", AnswerQuestion(actor="m", question_id="q1", answer="!")),
        ("request_access_review", RequestAccessReview(actor="m")),
    ]
    for name, command in illegal:
        message = await refused(handle, name, command)
        assert "not allowed in phase awaiting_nda" in message, (name, message)
    after = await harness.status(handle)
    assert after == before
    assert await accepted_updates(handle) == 0
    assert {r.kind for r in await harness.mail.outbox(handle.id)} == {"nda_request"}


async def test_malformed_commands_are_refused_with_the_reason(env: WorkflowEnvironment, harness: Harness) -> None:
    handle = await harness.start(harness.spec())
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam"))
    assert "not allowed in phase onboarding" in await refused(
        handle, "record_nda_signed", RecordNdaSigned(actor="ops", signed_by="Sam")
    )
    before = await harness.settle(handle, Phase.ONBOARDING)
    accepted = await accepted_updates(handle)

    assert "unknown role 'wizard'" in await refused(
        handle, "add_engineer", AddEngineer(actor="m", engineer=DAVE.model_copy(update={"role": "wizard"}))
    )
    assert "already on this engagement" in await refused(
        handle, "add_engineer", AddEngineer(actor="m", engineer=DAVE.model_copy(update={"email": ALICE}))
    )
    assert "grants no production access" in await refused(
        handle,
        "add_engineer",
        AddEngineer(actor="m", engineer=DAVE.model_copy(update={"role": "analyst", "production_access": True})),
    )
    assert "no engineer nobody@firm.example" in await refused(
        handle, "remove_engineer", RemoveEngineer(actor="m", email="nobody@firm.example")
    )
    assert "already has role" in await refused(
        handle, "change_role", ChangeRole(actor="m", email=CAROL, role="analyst")
    )
    assert "no background check in progress" in await refused(
        handle, "record_check_result", RecordCheckResult(actor="hr", email=CAROL, outcome="cleared")
    )
    # A payload that is not a valid command at all (bad email, unknown outcome) is refused too.
    await refused(handle, "remove_engineer", {"actor": "m", "email": "not-an-email"})
    await refused(handle, "record_check_result", {"actor": "hr", "email": ALICE, "outcome": "maybe"})
    await refused(handle, "add_engineer", {"actor": "m", "engineer": {"name": "x"}})

    assert await harness.status(handle) == before
    assert await accepted_updates(handle) == accepted


async def test_notice_phase_rules(env: WorkflowEnvironment, harness: Harness) -> None:
    handle = await harness.start(
        harness.spec(
            engineers=[harness.spec().engineers[2].model_dump(mode="json")],
            roles={"analyst": {"non_production": ["ticketing"]}},
        )
    )
    await harness.settle(handle, Phase.AWAITING_NDA)
    await harness.update(handle, RecordNdaSigned(actor="ops", signed_by="Sam"))
    await harness.settle(handle, Phase.DELIVERY)
    await harness.update(handle, GiveNotice(actor="erin", given_by="firm"))
    view = await harness.settle(handle, Phase.NOTICE)
    assert view.timeline.end_date
    past = view.timeline.notice_given_at - timedelta(days=1)  # type: ignore[operator]
    assert "cannot move into the past" in await refused(
        handle, "move_end_date", MoveEndDate(actor="erin", end_date=past)
    )
    assert "not allowed in phase notice" in await refused(
        handle, "give_notice", GiveNotice(actor="erin", given_by="client")
    )
    assert "not allowed in phase notice" in await refused(
        handle, "cancel_engagement", CancelEngagement(actor="x", reason="y")
    )
    assert "not allowed in phase notice" in await refused(handle, "add_engineer", AddEngineer(actor="m", engineer=DAVE))
    await harness.update(
        handle,
        ScheduleSession(
            actor="f", session_id="s1", title="Runbooks", starts_at=view.timeline.end_date - timedelta(days=2)
        ),
    )
    assert "already exists" in await refused(
        handle,
        "schedule_session",
        ScheduleSession(
            actor="f", session_id="s1", title="Again", starts_at=view.timeline.end_date - timedelta(days=1)
        ),
    )
    assert "must start in the future" in await refused(
        handle, "schedule_session", ScheduleSession(actor="f", session_id="s2", title="Late", starts_at=past)
    )
    assert (await harness.status(handle)).timeline.end_date == view.timeline.end_date
