"""The engagement's commands as Temporal Updates: each a two-line delegation to its decision
(``record_check_result``, which signals the check, stays with the workflow).

A mixin of ``EngagementWorkflow``: the names and signatures are the workflow's public contract
(stable for as long as engagements run); ``_validate`` and ``_decide`` are the workflow's.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import commands as c


class EngagementCommands:
    def _validate(self, command: c.Command) -> None:
        raise NotImplementedError

    def _decide(self, command: c.Command) -> c.Ack:
        raise NotImplementedError

    @workflow.update(name="record_nda_signed")
    def record_nda_signed(self, command: c.RecordNdaSigned) -> c.Ack:
        return self._decide(command)

    @record_nda_signed.validator
    def _validate_nda(self, command: c.RecordNdaSigned) -> None:
        self._validate(command)

    @workflow.update(name="add_engineer")
    def add_engineer(self, command: c.AddEngineer) -> c.Ack:
        return self._decide(command)

    @add_engineer.validator
    def _validate_add(self, command: c.AddEngineer) -> None:
        self._validate(command)

    @workflow.update(name="remove_engineer")
    def remove_engineer(self, command: c.RemoveEngineer) -> c.Ack:
        return self._decide(command)

    @remove_engineer.validator
    def _validate_remove(self, command: c.RemoveEngineer) -> None:
        self._validate(command)

    @workflow.update(name="change_role")
    def change_role(self, command: c.ChangeRole) -> c.Ack:
        return self._decide(command)

    @change_role.validator
    def _validate_change_role(self, command: c.ChangeRole) -> None:
        self._validate(command)

    @workflow.update(name="give_notice")
    def give_notice(self, command: c.GiveNotice) -> c.Ack:
        return self._decide(command)

    @give_notice.validator
    def _validate_notice(self, command: c.GiveNotice) -> None:
        self._validate(command)

    @workflow.update(name="move_end_date")
    def move_end_date(self, command: c.MoveEndDate) -> c.Ack:
        return self._decide(command)

    @move_end_date.validator
    def _validate_move(self, command: c.MoveEndDate) -> None:
        self._validate(command)

    @workflow.update(name="record_document")
    def record_document(self, command: c.RecordDocument) -> c.Ack:
        return self._decide(command)

    @record_document.validator
    def _validate_document(self, command: c.RecordDocument) -> None:
        self._validate(command)

    @workflow.update(name="schedule_session")
    def schedule_session(self, command: c.ScheduleSession) -> c.Ack:
        return self._decide(command)

    @schedule_session.validator
    def _validate_schedule(self, command: c.ScheduleSession) -> None:
        self._validate(command)

    @workflow.update(name="record_session_held")
    def record_session_held(self, command: c.RecordSessionHeld) -> c.Ack:
        return self._decide(command)

    @record_session_held.validator
    def _validate_held(self, command: c.RecordSessionHeld) -> None:
        self._validate(command)

    @workflow.update(name="ask_question")
    def ask_question(self, command: c.AskQuestion) -> c.Ack:
        return self._decide(command)

    @ask_question.validator
    def _validate_ask(self, command: c.AskQuestion) -> None:
        self._validate(command)

    @workflow.update(name="answer_question")
    def answer_question(self, command: c.AnswerQuestion) -> c.Ack:
        return self._decide(command)

    @answer_question.validator
    def _validate_answer(self, command: c.AnswerQuestion) -> None:
        self._validate(command)

    @workflow.update(name="request_access_review")
    def request_access_review(self, command: c.RequestAccessReview) -> c.Ack:
        return self._decide(command)

    @request_access_review.validator
    def _validate_review(self, command: c.RequestAccessReview) -> None:
        self._validate(command)

    @workflow.update(name="certify_access")
    def certify_access(self, command: c.CertifyAccess) -> c.Ack:
        """The client's IAM owner keeps or revokes one engineer (through the signed certification link)."""
        return self._decide(command)

    @certify_access.validator
    def _validate_certify(self, command: c.CertifyAccess) -> None:
        self._validate(command)

    @workflow.update(name="cancel_engagement")
    def cancel_engagement(self, command: c.CancelEngagement) -> c.Ack:
        return self._decide(command)

    @cancel_engagement.validator
    def _validate_cancel(self, command: c.CancelEngagement) -> None:
        self._validate(command)

    @workflow.update(name="revoke_access_now")
    def revoke_access_now(self, command: c.RevokeAccessNow) -> c.Ack:
        """The emergency brake: revoke now, in any running phase, one engineer or everyone."""
        return self._decide(command)

    @revoke_access_now.validator
    def _validate_revoke_now(self, command: c.RevokeAccessNow) -> None:
        self._validate(command)

    @workflow.update(name="restore_access")
    def restore_access(self, command: c.RestoreAccess) -> c.Ack:
        return self._decide(command)

    @restore_access.validator
    def _validate_restore(self, command: c.RestoreAccess) -> None:
        self._validate(command)

    @workflow.update(name="reschedule_session")
    def reschedule_session(self, command: c.RescheduleSession) -> c.Ack:
        return self._decide(command)

    @reschedule_session.validator
    def _validate_reschedule(self, command: c.RescheduleSession) -> None:
        self._validate(command)

    @workflow.update(name="cancel_session")
    def cancel_session(self, command: c.CancelSession) -> c.Ack:
        return self._decide(command)

    @cancel_session.validator
    def _validate_cancel_session(self, command: c.CancelSession) -> None:
        self._validate(command)

    @workflow.update(name="retry_parked_effect")
    def retry_parked_effect(self, command: c.RetryParkedEffect) -> c.Ack:
        return self._decide(command)

    @retry_parked_effect.validator
    def _validate_retry_parked(self, command: c.RetryParkedEffect) -> None:
        self._validate(command)

    @workflow.update(name="drop_parked_effect")
    def drop_parked_effect(self, command: c.DropParkedEffect) -> c.Ack:
        return self._decide(command)

    @drop_parked_effect.validator
    def _validate_drop_parked(self, command: c.DropParkedEffect) -> None:
        self._validate(command)
