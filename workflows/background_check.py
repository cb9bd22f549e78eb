"""BackgroundCheckWorkflow: one engineer's screening before any production access.

Consent request, reminders until a result is recorded, adjudication, and the outcome reported to
the engagement by signal (the engagement may have continued as new since it started the check).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities, EmailRequest
    from domain.commands import RecordCheckResult
    from domain.email_builders import check_consent, check_consent_reminder
    from domain.email_facts import EmailFacts
    from domain.email_kinds import Recipient
    from domain.state import BackgroundCheckInput, CheckCompleted
    from workflows.effects import EMAIL


@workflow.defn(name="BackgroundCheckWorkflow")
class BackgroundCheckWorkflow:
    def __init__(self) -> None:
        self._result: RecordCheckResult | None = None

    @workflow.run
    async def run(self, input: BackgroundCheckInput) -> CheckCompleted:
        await self._email(input, check_consent(input.client, input.engineer, input.checks), occurrence=1)
        reminders = 0
        while self._result is None:
            try:
                await workflow.wait_condition(lambda: self._result is not None, timeout=input.reminder_interval)
            except TimeoutError:
                reminders += 1
                reminder = check_consent_reminder(input.client, input.engineer, input.checks)
                await self._email(input, reminder, occurrence=reminders)
        # Adjudication: production access needs every check the jurisdiction allows to be clear.
        outcome = self._result.outcome
        completed = CheckCompleted(
            email=str(input.engineer.email),
            outcome=outcome,
            checks=input.checks,
            notes=self._result.notes,
            check_workflow_id=workflow.info().workflow_id,
        )
        await workflow.get_external_workflow_handle(input.engagement_workflow_id).signal(
            "background_check_completed", completed
        )
        return completed

    async def _email(self, input: BackgroundCheckInput, facts: EmailFacts, occurrence: int) -> None:
        kind = facts.kind
        await workflow.execute_activity_method(
            EmailActivities.send_email,
            EmailRequest(
                engagement_id=input.engagement_id,
                kind=kind,
                step=f"{kind.value}:{workflow.info().workflow_id}",
                occurrence=occurrence,
                recipients=[
                    Recipient(
                        name=input.engineer.name, email=str(input.engineer.email), timezone=input.engineer.timezone
                    )
                ],
                facts=facts.as_dict(),
            ),
            **EMAIL,
        )

    @workflow.signal(name="record_check_result")
    def record_result(self, result: RecordCheckResult) -> None:
        if self._result is None:  # the first recorded result is the one adjudicated
            self._result = result

    @workflow.query(name="check_status")
    def check_status(self) -> str:
        return "awaiting result" if self._result is None else self._result.outcome
