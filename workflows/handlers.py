"""The engagement's commands as Temporal Updates: each a two-line delegation to its decision
(``record_check_result``, which signals the check, stays with the workflow).

A mixin of ``EngagementWorkflow``: the names and signatures are the workflow's public contract
(stable for as long as engagements run); ``_validate`` and ``_decide`` are the workflow's.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
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


class EngagementCommands:
    def _validate(self, command: Command) -> None:
        raise NotImplementedError

    def _decide(self, command: Command) -> Ack:
        raise NotImplementedError

    @workflow.update(name="record_nda_signed")
    def record_nda_signed(self, command: RecordNdaSigned) -> Ack:
        return self._decide(command)

    @record_nda_signed.validator
    def _validate_nda(self, command: RecordNdaSigned) -> None:
        self._validate(command)

    @workflow.update(name="add_engineer")
    def add_engineer(self, command: AddEngineer) -> Ack:
        return self._decide(command)

    @add_engineer.validator
    def _validate_add(self, command: AddEngineer) -> None:
        self._validate(command)

    @workflow.update(name="remove_engineer")
    def remove_engineer(self, command: RemoveEngineer) -> Ack:
        return self._decide(command)

    @remove_engineer.validator
    def _validate_remove(self, command: RemoveEngineer) -> None:
        self._validate(command)

    @workflow.update(name="change_role")
    def change_role(self, command: ChangeRole) -> Ack:
        return self._decide(command)

    @change_role.validator
    def _validate_change_role(self, command: ChangeRole) -> None:
        self._validate(command)

    @workflow.update(name="give_notice")
    def give_notice(self, command: GiveNotice) -> Ack:
        return self._decide(command)

    @give_notice.validator
    def _validate_notice(self, command: GiveNotice) -> None:
        self._validate(command)

    @workflow.update(name="move_end_date")
    def move_end_date(self, command: MoveEndDate) -> Ack:
        return self._decide(command)

    @move_end_date.validator
    def _validate_move(self, command: MoveEndDate) -> None:
        self._validate(command)

    @workflow.update(name="record_document")
    def record_document(self, command: RecordDocument) -> Ack:
        return self._decide(command)

    @record_document.validator
    def _validate_document(self, command: RecordDocument) -> None:
        self._validate(command)

    @workflow.update(name="schedule_session")
    def schedule_session(self, command: ScheduleSession) -> Ack:
        return self._decide(command)

    @schedule_session.validator
    def _validate_schedule(self, command: ScheduleSession) -> None:
        self._validate(command)

    @workflow.update(name="record_session_held")
    def record_session_held(self, command: RecordSessionHeld) -> Ack:
        return self._decide(command)

    @record_session_held.validator
    def _validate_held(self, command: RecordSessionHeld) -> None:
        self._validate(command)

    @workflow.update(name="ask_question")
    def ask_question(self, command: AskQuestion) -> Ack:
        return self._decide(command)

    @ask_question.validator
    def _validate_ask(self, command: AskQuestion) -> None:
        self._validate(command)

    @workflow.update(name="answer_question")
    def answer_question(self, command: AnswerQuestion) -> Ack:
        return self._decide(command)

    @answer_question.validator
    def _validate_answer(self, command: AnswerQuestion) -> None:
        self._validate(command)

    @workflow.update(name="request_access_review")
    def request_access_review(self, command: RequestAccessReview) -> Ack:
        return self._decide(command)

    @request_access_review.validator
    def _validate_review(self, command: RequestAccessReview) -> None:
        self._validate(command)

    @workflow.update(name="certify_access")
    def certify_access(self, command: CertifyAccess) -> Ack:
        """The client's IAM owner keeps or revokes one engineer (through the signed certification link)."""
        return self._decide(command)

    @certify_access.validator
    def _validate_certify(self, command: CertifyAccess) -> None:
        self._validate(command)

    @workflow.update(name="cancel_engagement")
    def cancel_engagement(self, command: CancelEngagement) -> Ack:
        return self._decide(command)

    @cancel_engagement.validator
    def _validate_cancel(self, command: CancelEngagement) -> None:
        self._validate(command)

    @workflow.update(name="revoke_access_now")
    def revoke_access_now(self, command: RevokeAccessNow) -> Ack:
        """The emergency brake: revoke now, in any running phase, one engineer or everyone."""
        return self._decide(command)

    @revoke_access_now.validator
    def _validate_revoke_now(self, command: RevokeAccessNow) -> None:
        self._validate(command)

    @workflow.update(name="restore_access")
    def restore_access(self, command: RestoreAccess) -> Ack:
        return self._decide(command)

    @restore_access.validator
    def _validate_restore(self, command: RestoreAccess) -> None:
        self._validate(command)

    @workflow.update(name="reschedule_session")
    def reschedule_session(self, command: RescheduleSession) -> Ack:
        return self._decide(command)

    @reschedule_session.validator
    def _validate_reschedule(self, command: RescheduleSession) -> None:
        self._validate(command)

    @workflow.update(name="cancel_session")
    def cancel_session(self, command: CancelSession) -> Ack:
        return self._decide(command)

    @cancel_session.validator
    def _validate_cancel_session(self, command: CancelSession) -> None:
        self._validate(command)

    @workflow.update(name="retry_parked_effect")
    def retry_parked_effect(self, command: RetryParkedEffect) -> Ack:
        return self._decide(command)

    @retry_parked_effect.validator
    def _validate_retry_parked(self, command: RetryParkedEffect) -> None:
        self._validate(command)

    @workflow.update(name="drop_parked_effect")
    def drop_parked_effect(self, command: DropParkedEffect) -> Ack:
        return self._decide(command)

    @drop_parked_effect.validator
    def _validate_drop_parked(self, command: DropParkedEffect) -> None:
        self._validate(command)
