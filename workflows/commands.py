"""The client's side of the command table: each command model is sent as its own Update of
``EngagementWorkflow``, by method reference, so a wrong name is a type error and not a typo at run time."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from adapters.updates import execute
from domain.commands import (
    Ack,
    AddEngineer,
    AnswerQuestion,
    AskQuestion,
    CancelEngagement,
    CancelSession,
    CertifyAccess,
    ChangeRole,
    Command,
    DropParkedEffect,
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
    RetryParkedEffect,
    RevokeAccessNow,
    ScheduleSession,
)
from workflows.engagement import EngagementWorkflow as W

UPDATES: dict[type[Command], Any] = {
    RecordNdaSigned: W.record_nda_signed,
    AddEngineer: W.add_engineer,
    RemoveEngineer: W.remove_engineer,
    ChangeRole: W.change_role,
    RecordCheckResult: W.record_check_result,
    GiveNotice: W.give_notice,
    MoveEndDate: W.move_end_date,
    RecordDocument: W.record_document,
    ScheduleSession: W.schedule_session,
    RescheduleSession: W.reschedule_session,
    CancelSession: W.cancel_session,
    RecordSessionHeld: W.record_session_held,
    AskQuestion: W.ask_question,
    AnswerQuestion: W.answer_question,
    RequestAccessReview: W.request_access_review,
    CertifyAccess: W.certify_access,
    RevokeAccessNow: W.revoke_access_now,
    RestoreAccess: W.restore_access,
    CancelEngagement: W.cancel_engagement,
    RetryParkedEffect: W.retry_parked_effect,
    DropParkedEffect: W.drop_parked_effect,
}
"""Every command of the phase table, with the workflow method that receives it (a test holds the two together)."""


async def send(handle: WorkflowHandle[Any, Any], command: Command) -> Ack:
    """Send one command as its Update and wait for the engagement's acknowledgement (or refusal)."""
    return await execute(handle, UPDATES[type(command)], command)
