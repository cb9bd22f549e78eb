"""ScreeningWorkflow: one engineer's background check through the screening provider's API.

Candidate and invitation (the package the jurisdiction permits), consent with reminders and a
deadline, the report by webhook signal with polling as the safety net, a person's adjudication of a
``consider`` report, the adverse action's waiting period (paused by a dispute), and the outcome
reported to the engagement with the same ``background_check_completed`` signal as the manual check.
Engagements whose spec does not name a provider keep ``BackgroundCheckWorkflow``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities, EmailRequest
    from activities.engagement import EngagementActivities
    from activities.payloads import AuditInput
    from activities.screening import ScreeningActivities
    from domain import email_builders as build
    from domain import screening_emails
    from domain.commands import RecordCheckResult
    from domain.email_facts import EmailFacts
    from domain.email_kinds import Recipient
    from domain.screening import (
        SCREENING_SIGNAL,
        Adjudicate,
        OpenCheck,
        ProviderSnapshot,
        ReadCheck,
        ScreeningInput,
        ScreeningPackage,
        ScreeningView,
        StartAdverseAction,
        adjudication_problem,
        disputed,
        stage,
    )
    from domain.state import CheckCompleted
    from workflows.effects import EMAIL, STORAGE, ActivityOptions

PROVIDER = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=10)),
)
"""Provider calls are retried for as long as the provider is unavailable; a refusal (4xx) is not."""

Outcome = Literal["cleared", "failed", "cancelled"]


@workflow.defn(name="ScreeningWorkflow")
class ScreeningWorkflow:
    def __init__(self) -> None:
        self._input: ScreeningInput | None = None
        self._package: ScreeningPackage | None = None
        self._snapshot: ProviderSnapshot | None = None
        self._fresh = False
        self._stage = "opening"
        self._adjudication: Adjudicate | None = None
        self._manual: RecordCheckResult | None = None
        self._final_at: datetime | None = None
        self._outcome: str | None = None
        self._next_poll: datetime | None = None
        self._sent: dict[str, int] = {}

    @property
    def _id(self) -> str:
        return workflow.info().workflow_id

    @workflow.run
    async def run(self, input: ScreeningInput) -> CheckCompleted:
        self._input = input
        try:
            outcome, notes = await self._check(input)
        except ActivityError as error:  # the provider refused for good: a person must look at it
            cause = error.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(error)
            outcome, notes = "cancelled", f"the screening provider refused the check: {reason}"
        self._outcome = outcome
        self._stage = outcome
        await self._audit("screening-provider", "screening_completed", outcome=outcome, notes=notes)
        completed = CheckCompleted(
            email=str(input.engineer.email),
            outcome=outcome,
            checks=self._package.checks if self._package else [],
            notes=notes,
            check_workflow_id=self._id,
        )
        await workflow.get_external_workflow_handle(input.engagement_workflow_id).signal(
            "background_check_completed", completed
        )
        return completed

    async def _check(self, input: ScreeningInput) -> tuple[Outcome, str]:
        package = await workflow.execute_activity_method(
            ScreeningActivities.screening_package, input.engineer.jurisdiction, **STORAGE
        )
        self._package = package
        self._snapshot = await workflow.execute_activity_method(
            ScreeningActivities.screening_open,
            OpenCheck(
                check_workflow_id=self._id,
                engagement_id=input.engagement_id,
                name=input.engineer.name,
                email=str(input.engineer.email),
                jurisdiction=input.engineer.jurisdiction,
                package=package.package,
            ),
            **PROVIDER,
        )
        self._next_poll = workflow.now() + input.poll_interval
        await self._audit("screening-provider", "screening_opened", package=package.package)
        await self._tell_engineer(build.check_consent(input.client, input.engineer, package.checks))
        consent_by = workflow.now() + input.consent_deadline
        next_reminder = workflow.now() + input.reminder_interval
        told_suspended = False
        while True:
            if self._manual is not None:
                return self._manual_outcome()
            assert self._snapshot is not None
            now_stage = stage(self._snapshot)
            self._stage = now_stage
            wake: datetime | None = None
            if now_stage == "awaiting_consent":
                if workflow.now() >= consent_by:
                    await workflow.execute_activity_method(
                        ScreeningActivities.screening_cancel_invitation,
                        ReadCheck(check_workflow_id=self._id, snapshot=self._snapshot),
                        **PROVIDER,
                    )
                    await self._tell_managers("consent_expired")
                    return "cancelled", f"consent not given within {input.consent_deadline}"
                if workflow.now() >= next_reminder:
                    reminder = build.check_consent_reminder(input.client, input.engineer, package.checks)
                    await self._tell_engineer(reminder)
                    next_reminder = workflow.now() + input.reminder_interval
                wake = min(consent_by, next_reminder)
            elif now_stage == "consent_expired":
                await self._tell_managers("consent_expired")
                return "cancelled", "the provider's invitation expired before consent was given"
            elif now_stage == "clear":
                return "cleared", "the screening provider's report is clear"
            elif now_stage == "canceled":
                return "cancelled", "the screening provider canceled the report"
            elif now_stage == "consider":
                return await self._adjudicate(input)
            elif now_stage == "suspended" and not told_suspended:
                await self._tell_managers("suspended")
                told_suspended = True
            await self._wait(wake)

    async def _adjudicate(self, input: ScreeningInput) -> tuple[Outcome, str]:
        self._stage = "awaiting_adjudication"
        await self._tell_managers("awaiting_adjudication")
        await workflow.wait_condition(lambda: self._adjudication is not None or self._manual is not None)
        if self._adjudication is None:
            return self._manual_outcome()
        decision = self._adjudication
        await self._audit(decision.actor, "screening_adjudicated", decision=decision.decision, reason=decision.reason)
        if decision.decision == "engaged":
            return "cleared", f"report to consider; engaged by {decision.actor}: {decision.reason}"
        assert self._snapshot is not None and self._snapshot.report_id is not None
        final_at = workflow.now() + input.adverse_action_wait
        await workflow.execute_activity_method(
            ScreeningActivities.screening_start_adverse_action,
            StartAdverseAction(check_workflow_id=self._id, report_id=self._snapshot.report_id, post_notice_at=final_at),
            **PROVIDER,
        )
        return await self._wait_out_adverse_action(input, decision, final_at)

    async def _wait_out_adverse_action(
        self, input: ScreeningInput, decision: Adjudicate, final_at: datetime
    ) -> tuple[Outcome, str]:
        """The pre-adverse notice, then the waiting period; a dispute stops the clock until it is resolved."""
        assert self._package is not None
        await self._tell_engineer(
            screening_emails.check_pre_adverse_notice(input.client, input.engineer, self._package.checks, final_at)
        )
        await self._tell_managers("adverse_action", until=final_at)
        remaining: timedelta | None = None
        while True:
            self._final_at = final_at
            self._stage = "adverse_action_pending"
            if self._manual is not None:
                return self._manual_outcome()
            assert self._snapshot is not None
            if disputed(self._snapshot):
                if remaining is None:
                    remaining = max(final_at - workflow.now(), timedelta(0))
                    self._stage = "disputed"
                    await self._audit("screening-provider", "screening_disputed", report=self._snapshot.report_id or "")
                    await self._tell_managers("disputed")
                self._stage = "disputed"
                await self._wait(None)
                continue
            if remaining is not None:  # the dispute is over: what does the report say now?
                if stage(self._snapshot) == "clear":
                    return "cleared", "the report was corrected after the engineer's dispute: clear"
                if stage(self._snapshot) == "canceled":
                    return "cancelled", "the screening provider canceled the report after a dispute"
                final_at, remaining = workflow.now() + remaining, None
                continue
            if workflow.now() >= final_at:
                self._snapshot = await self._read()  # never final on a stale view: a dispute may be in
                if disputed(self._snapshot):
                    continue
                return "failed", f"adverse action final after the waiting period ({decision.actor}: {decision.reason})"
            await self._wait(final_at)

    async def _wait(self, wake: datetime | None) -> None:
        """Until the provider's webhook brings news, a person acts, ``wake`` comes, or the next poll is due."""
        assert self._input is not None and self._next_poll is not None
        until = self._next_poll if wake is None else min(wake, self._next_poll)
        self._fresh = False
        timeout = max(until - workflow.now(), timedelta(seconds=1))
        try:
            await workflow.wait_condition(lambda: self._fresh or self._manual is not None, timeout=timeout)
        except TimeoutError:
            pass
        if workflow.now() >= self._next_poll:  # the safety net: a webhook may have been lost
            self._snapshot = await self._read()
            self._next_poll = workflow.now() + self._input.poll_interval

    async def _read(self) -> ProviderSnapshot:
        assert self._snapshot is not None
        return await workflow.execute_activity_method(
            ScreeningActivities.screening_read,
            ReadCheck(check_workflow_id=self._id, snapshot=self._snapshot),
            **PROVIDER,
        )

    def _manual_outcome(self) -> tuple[Outcome, str]:
        assert self._manual is not None
        notes = f"recorded by {self._manual.actor}" + (f": {self._manual.notes}" if self._manual.notes else "")
        return self._manual.outcome, notes

    async def _audit(self, actor: str, action: str, **details: str) -> None:
        assert self._input is not None
        await workflow.execute_activity_method(
            EngagementActivities.append_audit,
            AuditInput(
                engagement_id=self._input.engagement_id,
                at=workflow.now(),
                actor=actor,
                action=action,
                details={"engineer": str(self._input.engineer.email), "check_workflow_id": self._id, **details},
            ),
            **STORAGE,
        )

    async def _tell_engineer(self, facts: EmailFacts) -> None:
        assert self._input is not None
        engineer = self._input.engineer
        recipient = Recipient(name=engineer.name, email=str(engineer.email), timezone=engineer.timezone)
        await self._email(facts, [recipient])

    async def _tell_managers(self, progress: screening_emails.CheckProgress, until: datetime | None = None) -> None:
        assert self._input is not None and self._package is not None
        facts = screening_emails.check_progress(
            self._input.client, self._input.engineer, self._package.checks, progress, until
        )
        await self._email(facts, self._input.managers, step=progress)

    async def _email(self, facts: EmailFacts, recipients: list[Recipient], step: str = "") -> None:
        assert self._input is not None
        key = f"{facts.kind.value}:{step}"
        self._sent[key] = self._sent.get(key, 0) + 1
        await workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(
                engagement_id=self._input.engagement_id,
                kind=facts.kind,
                step=f"{key}:{self._id}",
                occurrence=self._sent[key],
                recipients=recipients,
                facts=facts.as_dict(),
            ),
            **EMAIL,
        )

    @workflow.signal(name=SCREENING_SIGNAL)
    def report_changed(self, snapshot: ProviderSnapshot) -> None:
        """The provider webhook re-read this check after an event: believe the fresh read."""
        if self._snapshot is not None and snapshot.candidate_id == self._snapshot.candidate_id:
            self._snapshot = snapshot
            self._fresh = True

    @workflow.signal(name="record_check_result")
    def record_result(self, result: RecordCheckResult) -> None:
        """The manual fallback: a person records the result (the engagement's ``record-check``)."""
        if self._manual is None and self._outcome is None:
            self._manual = result

    @workflow.update(name="adjudicate_check")
    def adjudicate(self, command: Adjudicate) -> ScreeningView:
        self._adjudication = command
        self._stage = "adjudicated"
        return self.status()

    @adjudicate.validator
    def _validate_adjudication(self, command: Adjudicate) -> None:
        problem = adjudication_problem(self.status(), command)
        if problem is not None:
            raise ApplicationError(problem, type="AdjudicationRefused", non_retryable=True)

    @workflow.query(name="screening_status")
    def status(self) -> ScreeningView:
        return ScreeningView(
            check_workflow_id=self._id,
            engineer=str(self._input.engineer.email) if self._input else "",
            provider=self._input.provider if self._input else "",
            package=self._package.package if self._package else None,
            checks=self._package.checks if self._package else [],
            stage=self._stage,
            snapshot=self._snapshot,
            adjudication=self._adjudication,
            final_at=self._final_at,
            outcome=self._outcome,
        )
