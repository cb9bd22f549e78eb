"""The client's side of the command table: each command model is sent as its own Update of
``EngagementWorkflow``, by method reference, so a wrong name is a type error and not a typo at run time."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from adapters.updates import execute
from domain import commands as c
from workflows.engagement import EngagementWorkflow as W

UPDATES: dict[type[c.Command], Any] = {
    c.RecordNdaSigned: W.record_nda_signed,
    c.AddEngineer: W.add_engineer,
    c.RemoveEngineer: W.remove_engineer,
    c.ChangeRole: W.change_role,
    c.RecordCheckResult: W.record_check_result,
    c.GiveNotice: W.give_notice,
    c.MoveEndDate: W.move_end_date,
    c.RecordDocument: W.record_document,
    c.ScheduleSession: W.schedule_session,
    c.RescheduleSession: W.reschedule_session,
    c.CancelSession: W.cancel_session,
    c.RecordSessionHeld: W.record_session_held,
    c.AskQuestion: W.ask_question,
    c.AnswerQuestion: W.answer_question,
    c.RequestAccessReview: W.request_access_review,
    c.CertifyAccess: W.certify_access,
    c.RevokeAccessNow: W.revoke_access_now,
    c.RestoreAccess: W.restore_access,
    c.CancelEngagement: W.cancel_engagement,
    c.RetryParkedEffect: W.retry_parked_effect,
    c.DropParkedEffect: W.drop_parked_effect,
}
"""Every command of the phase table, with the workflow method that receives it (a test holds the two together)."""


async def send(handle: WorkflowHandle[Any, Any], command: c.Command) -> c.Ack:
    """Send one command as its Update and wait for the engagement's acknowledgement (or refusal)."""
    return await execute(handle, UPDATES[type(command)], command)
