"""EngagementWorkflow: one client engagement, from contract signature to the final revocation sweep.

Shape: update handlers validate a command, change the state and queue the side effects it calls
for; the main loop performs queued effects in order, converges the client's IAM on the
least-privilege plan, and moves through the phases on timers. Everything pending lives in the
state, so continue-as-new loses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypedDict

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities, EmailRequest
    from activities.engagement import (
        AccessRequest,
        AlertInput,
        AuditInput,
        DocumentInput,
        EngagementActivities,
        EngineerRecord,
        PhaseChange,
        QuestionInput,
        RecordEngagementInput,
        SessionInput,
    )
    from domain.access import AccessPlan, checks_for, is_in_step, managed_groups, plan_engineer
    from domain.emails import EmailKind, Recipient, recipients
    from domain.models import (
        ACCESS_PHASES,
        Ack,
        AddEngineer,
        Announcement,
        AnswerQuestion,
        AskQuestion,
        AuditEffect,
        BackgroundCheckInput,
        CancelEngagement,
        CancelSession,
        ChangeRole,
        CheckCompleted,
        CheckStatus,
        Deadline,
        DeliveryProblem,
        DocumentRecord,
        DocumentView,
        EmailEffect,
        EmergencyRevocation,
        EngagementInput,
        EngagementState,
        EngagementSummary,
        EngineerAccessReadBack,
        EngineerEffect,
        EngineerState,
        EngineerView,
        GiveNotice,
        HandoverSession,
        KnowledgeTransferDocument,
        MoveEndDate,
        Notice,
        Phase,
        PhaseEffect,
        Question,
        RecordCheckResult,
        RecordDocument,
        RecordEffect,
        RecordNdaSigned,
        RecordSessionHeld,
        RemoveEngineer,
        RequestAccessReview,
        RescheduleSession,
        RestoreAccess,
        RevocationEvidence,
        RevokeAccessNow,
        ScheduleSession,
        StatusView,
        Timeline,
    )
    from domain.spec import EngagementSpec
    from workflows.background_check import BackgroundCheckWorkflow

SYSTEM = "engagement-workflow"


class ActivityOptions(TypedDict):
    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy


# Writes to our own database: retried quickly, for as long as it takes.
STORAGE = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
)
# The client's IAM: retried through outages with backoff, never given up on (revocation must land).
IAM = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2)),
)
EMAIL = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5)),
)


def _iso(moment: datetime | None) -> str:
    """A date fact for an email: ISO 8601, formatted in each recipient's time zone by the template."""
    return moment.isoformat() if moment else "not set"


def _fmt(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "not set"


@workflow.defn(name="EngagementWorkflow")
class EngagementWorkflow:
    @workflow.init
    def __init__(self, input: EngagementInput) -> None:
        self._spec: EngagementSpec = input.spec
        self._state: EngagementState = input.state or EngagementState(
            contract_signed_at=workflow.now(),
            engineers=[
                EngineerState(spec=e, check=CheckStatus.PENDING if e.production_access else CheckStatus.NOT_REQUIRED)
                for e in input.spec.engineers
            ],
        )
        self._first_run = input.state is None
        if self._first_run:
            self._email(EmailKind.NDA_REQUEST, self._nda_facts())
        self._history_limit = input.continue_as_new_after_events
        self._events = 0
        """Bumped by every handler, so the main loop wakes up to act on it."""

    # ================================================================ the main loop

    @workflow.run
    async def run(self, input: EngagementInput) -> EngagementSummary:
        if self._first_run:
            await workflow.execute_activity_method(
                EngagementActivities.record_engagement,
                RecordEngagementInput(engagement_id=self._id, spec=self._spec, at=self._state.contract_signed_at),
                **STORAGE,
            )
        steps: dict[Phase, Callable[[], Any]] = {
            Phase.AWAITING_NDA: self._awaiting_nda,
            Phase.ONBOARDING: self._onboarding,
            Phase.DELIVERY: self._delivery,
            Phase.NOTICE: self._notice,
            Phase.TRANSITION: self._transition,
        }
        while self._state.phase in steps:
            await self._perform_effects()
            await steps[self._state.phase]()
            await self._perform_effects()
            if self._state.phase in steps and self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._perform_effects()
                self._state.runs += 1
                workflow.continue_as_new(
                    EngagementInput(
                        spec=self._spec, state=self._state, continue_as_new_after_events=self._history_limit
                    )
                )
        if self._state.phase is Phase.CANCELLED:
            await self._wind_down_access(actor=SYSTEM, reason="engagement cancelled")
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._perform_effects()
        return self._summary()

    @property
    def _id(self) -> str:
        return workflow.info().workflow_id

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        return self._history_limit is not None and info.get_current_history_length() >= self._history_limit

    async def _sleep_until(self, moment: datetime | None) -> None:
        """Wait until the moment passes or a handler changes something, whichever comes first."""
        seen = self._events
        timeout = None
        if moment is not None:
            timeout = (moment - workflow.now()).total_seconds()
            if timeout <= 0:
                return
        try:
            await workflow.wait_condition(lambda: self._events != seen or bool(self._state.effects), timeout=timeout)
        except TimeoutError:
            pass

    # ================================================================ phases

    async def _awaiting_nda(self) -> None:
        state = self._state
        if state.emergency is not None:
            await self._converge()
        deadline = state.contract_signed_at + self._spec.nda_deadline
        reminders = state.email_occurrences.get(EmailKind.NDA_REMINDER, 0)
        next_reminder = state.contract_signed_at + self._spec.nda_reminder_interval * (reminders + 1)
        await self._sleep_until(min(deadline, next_reminder))
        if state.phase is not Phase.AWAITING_NDA:
            return
        now = workflow.now()
        if now >= deadline:
            self._cancel(actor=SYSTEM, reason=f"the NDA was not signed by {_fmt(deadline)}")
        elif now >= next_reminder:
            self._email(EmailKind.NDA_REMINDER, {**self._nda_facts(), "reminder": reminders + 1})

    async def _onboarding(self) -> None:
        await self._converge()
        state = self._state
        if state.phase is not Phase.ONBOARDING:
            return
        waiting = [e for e in state.current_engineers() if e.check in (CheckStatus.PENDING, CheckStatus.IN_PROGRESS)]
        if waiting:
            await self._sleep_until(None)
            return
        self._email(EmailKind.ACCESS_GRANTED, {**self._facts(), "roster": self._roster()})
        state.next_access_review_at = workflow.now() + self._spec.access_review_interval
        self._enter(Phase.DELIVERY, actor=SYSTEM, reason="every engineer onboarded")

    async def _delivery(self) -> None:
        await self._converge()
        state = self._state
        if state.phase is not Phase.DELIVERY:
            return
        if state.access_review_requested or (
            state.next_access_review_at is not None and workflow.now() >= state.next_access_review_at
        ):
            await self._access_review()
            return
        await self._sleep_until(state.next_access_review_at)

    async def _notice(self) -> None:
        await self._converge()
        state = self._state
        if state.phase is not Phase.NOTICE:
            return
        assert state.end_date is not None
        now = workflow.now()
        if now >= state.end_date:
            await self._end_date()
            return
        remind_at = state.end_date - self._spec.handover_reminder_lead
        if now >= remind_at and state.handover_reminder_sent_for != state.end_date:
            missing = self._missing_documents()
            open_sessions = [s.title for s in state.sessions if s.status == "scheduled"]
            if missing or open_sessions or not state.sessions:
                self._email(
                    EmailKind.HANDOVER_REMINDER,
                    {
                        **self._facts(),
                        "missing_documents": ", ".join(d.value for d in missing) or "none",
                        "open_sessions": ", ".join(open_sessions) or "none scheduled yet",
                    },
                )
            state.handover_reminder_sent_for = state.end_date
            return
        await self._sleep_until(remind_at if now < remind_at else state.end_date)

    async def _end_date(self) -> None:
        """The agreed end: every grant of every engineer revoked at once, and proven by read-back."""
        state = self._state
        assert state.end_date is not None
        self._enter(Phase.TRANSITION, actor=SYSTEM, reason="end date reached: all access revoked")
        readbacks = await self._wind_down_access(actor=SYSTEM, reason="end date")
        state.revocation = RevocationEvidence(revoked_at=workflow.now(), engineers=readbacks)
        self._email(
            EmailKind.REVOCATION_REPORT,
            {**self._facts(), "revoked_at": _iso(workflow.now()), "evidence": self._evidence_text(readbacks)},
        )
        self._email(EmailKind.TRANSITION_OPEN, self._facts())

    async def _transition(self) -> None:
        state = self._state
        assert state.transition_ends_at is not None
        if workflow.now() < state.transition_ends_at:
            if workflow.patched("transition-closing-notice"):
                await self._converge()  # an emergency revocation is confirmed and reported here too
                closing_at = state.transition_ends_at - self._spec.transition_closing_notice
                if not state.transition_closing_sent:
                    if workflow.now() >= closing_at:
                        state.transition_closing_sent = True
                        open_questions = sum(1 for q in state.questions if q.answer is None)
                        self._email(EmailKind.TRANSITION_CLOSING, {**self._facts(), "open_questions": open_questions})
                        return
                    await self._sleep_until(closing_at)
                    return
            await self._sleep_until(state.transition_ends_at)
            return
        # The final sweep: read every identity back once more, and prove nothing remains.
        readbacks = await self._wind_down_access(actor=SYSTEM, reason="final revocation sweep")
        remaining = [r for r in readbacks if r.groups or r.identity_active]
        if remaining:
            raise ApplicationError(f"final sweep found access left: {remaining}", non_retryable=False)
        state.closed_at = workflow.now()
        delivered = [d.name.value for d in state.documents]
        self._email(
            EmailKind.CLOSING_REPORT,
            {
                **self._facts(),
                "documents": f"{len(delivered)} of 5 ({', '.join(delivered) or 'none'})",
                "sessions": str(sum(1 for s in state.sessions if s.status == "held")),
                "questions": f"{sum(1 for q in state.questions if q.answer)} of {len(state.questions)}",
                "sweep": f"{len(readbacks)} identities read back: no group membership, no active identity",
            },
        )
        self._enter(Phase.CLOSED, actor=SYSTEM, reason="transition window over, final sweep clean")

    # ================================================================ access

    async def _converge(self) -> None:
        """Start due background checks, then bring every identity in the IAM in line with the plan."""
        state = self._state
        for engineer in state.current_engineers():
            if engineer.check is CheckStatus.PENDING and state.phase in ACCESS_PHASES:
                await self._start_check(engineer)
        stale = [e for e in state.engineers if e.reconcile_requested or not is_in_step(self._plan(e), e)]
        if stale:
            await asyncio.gather(
                *(self._apply(e, actor=e.requested_by or SYSTEM, reason=state.phase.value) for e in stale)
            )
        for engineer in state.engineers:
            while engineer.announcements:
                self._announce(engineer, engineer.announcements.pop(0))
        self._report_emergency()

    def _plan(self, engineer: EngineerState) -> AccessPlan:
        return plan_engineer(self._spec.roles, engineer, self._state.phase, all_suspended=self._state.access_suspended)

    async def _apply(self, engineer: EngineerState, *, actor: str, reason: str) -> EngineerAccessReadBack:
        plan = self._plan(engineer)
        revoking = bool(set(engineer.groups) - plan.groups) or (engineer.identity_active and not plan.active)
        applying = asyncio.create_task(self._apply_plan(engineer, plan, actor=actor, reason=reason))
        if revoking and workflow.patched("revocation-alert"):
            # Revocation is retried until the IAM confirms it; an admin hears if that takes too long.
            try:
                await workflow.wait_condition(applying.done, timeout=self._spec.revocation_alert_after)
            except TimeoutError:
                await workflow.execute_activity_method(
                    EngagementActivities.raise_alert,
                    AlertInput(
                        engagement_id=self._id,
                        at=workflow.now(),
                        kind="revocation_unconfirmed",
                        message=(
                            f"the IAM has not confirmed the revocation of {engineer.email}'s access "
                            f"({reason}) after {self._spec.revocation_alert_after}; still retrying"
                        ),
                        details={"engineer": engineer.email, "reason": reason, "iam": self._spec.iam.scim_base_url},
                    ),
                    **STORAGE,
                )
        readback = await applying
        engineer.scim_user_id = readback.scim_user_id or engineer.scim_user_id
        engineer.identity_active = readback.identity_active
        engineer.groups = readback.groups
        engineer.reconcile_requested = False
        engineer.requested_by = None
        self._queue(EngineerEffect(email=engineer.email, at=workflow.now(), actor=actor, action=f"access:{reason}"))
        return readback

    async def _apply_plan(
        self, engineer: EngineerState, plan: AccessPlan, *, actor: str, reason: str
    ) -> EngineerAccessReadBack:
        return await workflow.execute_activity_method(
            EngagementActivities.apply_access,
            AccessRequest(
                engagement_id=self._id,
                iam=self._spec.iam,
                email=engineer.email,
                display_name=engineer.spec.name,
                active=plan.active,
                groups=sorted(plan.groups),
                scope=sorted(managed_groups(self._spec.roles)),
                expected_groups=sorted(engineer.groups),
                expected_active=engineer.identity_active,
                actor=actor,
                reason=reason,
                at=workflow.now(),
            ),
            **IAM,
        )

    async def _wind_down_access(self, *, actor: str, reason: str) -> list[EngineerAccessReadBack]:
        """Cancel running checks and apply the (empty) plan to every identity; return the read-backs."""
        state = self._state
        for engineer in state.engineers:
            if engineer.check is CheckStatus.IN_PROGRESS and engineer.check_workflow_id:
                await workflow.get_external_workflow_handle(engineer.check_workflow_id).cancel()
                engineer.check = CheckStatus.CANCELLED
            elif engineer.check is CheckStatus.PENDING:
                engineer.check = CheckStatus.CANCELLED
        readbacks = await asyncio.gather(*(self._apply(e, actor=actor, reason=reason) for e in state.engineers))
        return list(readbacks)

    async def _access_review(self) -> None:
        """Read what the IAM actually holds, remove drift, restore what is missing, report it."""
        state = self._state
        readbacks = await asyncio.gather(
            *(self._apply(e, actor=SYSTEM, reason="access review") for e in state.engineers)
        )
        changes = [
            f"{r.email}: removed {', '.join(r.removed_groups) or '-'}; restored {', '.join(r.granted_groups) or '-'}"
            for r in readbacks
            if r.removed_groups or r.granted_groups
        ]
        state.access_reviews_done += 1
        state.last_access_review_at = workflow.now()
        state.access_review_requested = False
        state.next_access_review_at = workflow.now() + self._spec.access_review_interval
        self._queue(
            AuditEffect(
                at=workflow.now(),
                actor=SYSTEM,
                action="access_review",
                details={"changes": changes, "engineers": len(readbacks)},
            )
        )
        self._email(
            EmailKind.ACCESS_REVIEW,
            {
                **self._facts(),
                "reviewed_at": _iso(workflow.now()),
                "review_result": f"{len(changes)} correction(s)" if changes else "no drift",
                "changes": "\n".join(changes) or "Every grant matches the policy.",
            },
        )

    async def _start_check(self, engineer: EngineerState) -> None:
        state = self._state
        state.check_workflows_started += 1
        child_id = f"{self._id}/check/{state.check_workflows_started}"
        await workflow.start_child_workflow(
            BackgroundCheckWorkflow.run,
            BackgroundCheckInput(
                engagement_workflow_id=self._id,
                engagement_id=self._id,
                client=self._spec.client.name,
                engineer=engineer.spec,
                checks=checks_for(engineer.spec.jurisdiction),
                reminder_interval=self._spec.check_reminder_interval,
            ),
            id=child_id,
            # The check outlives a continue-as-new of its engagement: it reports back by signal.
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        engineer.check = CheckStatus.IN_PROGRESS
        engineer.check_workflow_id = child_id
        engineer.checks_performed = checks_for(engineer.spec.jurisdiction)
        self._queue(EngineerEffect(email=engineer.email, at=workflow.now(), actor=SYSTEM, action="check_started"))

    def _report_emergency(self) -> None:
        """Once the IAM confirms an emergency revocation, tell the client with the read-back."""
        emergency = self._state.emergency
        if emergency is None:
            return
        affected = [e for e in self._state.engineers if e.email in emergency.emails]
        if any(e.identity_active or e.groups for e in affected):
            return
        self._state.emergency = None
        self._audit(emergency.actor, "emergency_revocation_confirmed", engineers=emergency.emails)
        self._email(
            EmailKind.EMERGENCY_REVOCATION,
            {
                **self._facts(),
                "engineers": "\n".join(f"- {e.spec.name} <{e.email}>: no group, identity inactive" for e in affected),
                "reason": emergency.reason,
                "revoked_at": _iso(workflow.now()),
            },
        )

    def _announce(self, engineer: EngineerState, announcement: Announcement) -> None:
        kind = announcement.kind
        facts = {**self._facts(), "engineer": engineer.spec.name, "role": announcement.role}
        if kind == "added":
            note = " (production access after a cleared background check)" if engineer.spec.production_access else ""
            self._email(EmailKind.ENGINEER_ADDED, {**facts, "production_note": note})
        elif kind == "removed":
            evidence = f"identity active={engineer.identity_active}, groups={engineer.groups or 'none'}"
            self._email(EmailKind.ENGINEER_REMOVED, {**facts, "evidence": evidence})
        elif kind == "role_changed":
            policy = self._spec.roles[announcement.role]
            groups = policy.non_production + (policy.production if engineer.check is CheckStatus.CLEARED else [])
            self._email(EmailKind.ROLE_CHANGED, {**facts, "groups": ", ".join(groups) or "none"})
        elif kind == "check_result":
            cleared = engineer.check is CheckStatus.CLEARED
            consequence = (
                "Production access has been granted: " + ", ".join(engineer.groups)
                if cleared
                else "Every grant of this engineer has been removed and the identity deactivated."
            )
            self._email(
                EmailKind.CHECK_RESULT,
                {
                    **facts,
                    "outcome": engineer.check.value,
                    "checks": ", ".join(engineer.checks_performed),
                    "consequence": consequence,
                },
            )

    # ================================================================ effects

    def _queue(self, effect: Any) -> None:
        self._state.effects.append(effect)

    def _email(self, kind: EmailKind, facts: dict[str, Any], to: list[Recipient] | None = None) -> None:
        occurrence = self._state.email_occurrences.get(kind, 0) + 1
        self._state.email_occurrences[kind] = occurrence
        self._queue(
            EmailEffect(
                kind=kind,
                step=kind.value,
                occurrence=occurrence,
                recipients=to if to is not None else recipients(kind, self._spec),
                facts=facts,
            )
        )

    def _enter(self, phase: Phase, *, actor: str, reason: str) -> None:
        self._state.phase = phase
        self._events += 1
        self._queue(PhaseEffect(phase=phase, at=workflow.now(), actor=actor, reason=reason))

    async def _perform_effects(self) -> None:
        """Perform queued effects in order; each leaves the queue only once it is done."""
        state = self._state
        while state.effects:
            effect = state.effects[0]
            await self._perform(effect)
            state.effects.pop(0)

    async def _perform(self, effect: Any) -> None:
        state = self._state
        if isinstance(effect, EmailEffect):
            await workflow.execute_activity_method(
                EmailActivities.send_email,
                EmailRequest(
                    engagement_id=self._id,
                    kind=effect.kind,
                    step=effect.step,
                    occurrence=effect.occurrence,
                    recipients=effect.recipients,
                    facts=effect.facts,
                ),
                **EMAIL,
            )
        elif isinstance(effect, AuditEffect):
            await workflow.execute_activity_method(
                EngagementActivities.append_audit,
                AuditInput(
                    engagement_id=self._id,
                    at=effect.at,
                    actor=effect.actor,
                    action=effect.action,
                    details=effect.details,
                ),
                **STORAGE,
            )
        elif isinstance(effect, PhaseEffect):
            await workflow.execute_activity_method(
                EngagementActivities.record_phase,
                PhaseChange(
                    engagement_id=self._id,
                    phase=effect.phase,
                    at=effect.at,
                    actor=effect.actor,
                    reason=effect.reason,
                    nda_signed_at=state.nda_signed_at,
                    notice_given_at=state.notice.given_at if state.notice else None,
                    end_date=state.end_date,
                    closed_at=state.closed_at,
                ),
                **STORAGE,
            )
        elif isinstance(effect, EngineerEffect):
            engineer = state.engineer(effect.email)
            assert engineer is not None
            await workflow.execute_activity_method(
                EngagementActivities.save_engineer,
                EngineerRecord(
                    engagement_id=self._id, engineer=engineer, at=effect.at, actor=effect.actor, action=effect.action
                ),
                **STORAGE,
            )
        elif isinstance(effect, RecordEffect):
            await self._perform_record(effect)

    async def _perform_record(self, effect: RecordEffect) -> None:
        state = self._state
        if effect.what == "document":
            record = next(d for d in state.documents if d.name.value == effect.key)
            await workflow.execute_activity_method(
                EngagementActivities.save_document, DocumentInput(engagement_id=self._id, record=record), **STORAGE
            )
        elif effect.what == "session":
            session = next(s for s in state.sessions if s.session_id == effect.key)
            await workflow.execute_activity_method(
                EngagementActivities.save_session,
                SessionInput(engagement_id=self._id, session=session, actor=effect.actor, at=effect.at),
                **STORAGE,
            )
        else:
            question = next(q for q in state.questions if q.question_id == effect.key)
            await workflow.execute_activity_method(
                EngagementActivities.save_question,
                QuestionInput(engagement_id=self._id, question=question, actor=effect.actor, at=effect.at),
                **STORAGE,
            )

    # ================================================================ facts for emails

    def _facts(self) -> dict[str, Any]:
        state = self._state
        return {
            "client": self._spec.client.name,
            "contract_id": self._spec.contract_id,
            "end_date": _iso(state.end_date),
            "transition_ends_at": _iso(state.transition_ends_at),
        }

    def _nda_facts(self) -> dict[str, Any]:
        return {
            **self._facts(),
            "nda_reference": self._spec.agreement.nda_reference,
            "ip_assignment_clause": self._spec.agreement.ip_assignment_clause,
            "deadline": _iso(self._state.contract_signed_at + self._spec.nda_deadline),
        }

    def _roster(self) -> str:
        lines = []
        for e in self._state.current_engineers():
            groups = ", ".join(e.groups) or "no groups"
            lines.append(f"- {e.spec.name} <{e.email}>, {e.spec.role}: {groups} (check: {e.check.value})")
        return "\n".join(lines)

    @staticmethod
    def _evidence_text(readbacks: list[EngineerAccessReadBack]) -> str:
        return "\n".join(
            f"- {r.email}: removed {', '.join(r.removed_groups) or 'nothing left'}; now holds "
            f"{', '.join(r.groups) or 'no group'}; identity {'ACTIVE' if r.identity_active else 'inactive'}"
            for r in readbacks
        )

    def _missing_documents(self) -> list[KnowledgeTransferDocument]:
        delivered = {d.name for d in self._state.documents}
        return [d for d in KnowledgeTransferDocument if d not in delivered]

    # ================================================================ commands: validators first

    def _require_phase(self, *phases: Phase) -> None:
        if self._state.phase not in phases:
            allowed = ", ".join(p.value for p in phases)
            raise ApplicationError(
                f"not allowed in phase {self._state.phase.value} (allowed in: {allowed})", type="IllegalInPhase"
            )

    def _require_engineer(self, email: str) -> EngineerState:
        engineer = self._state.engineer(email)
        if engineer is None or engineer.removed:
            raise ApplicationError(f"no engineer {email} on this engagement", type="UnknownEngineer")
        return engineer

    def _ack(self, accepted: str) -> Ack:
        self._events += 1
        return Ack(accepted=accepted, phase=self._state.phase)

    def _audit(self, actor: str, action: str, **details: Any) -> None:
        self._queue(AuditEffect(at=workflow.now(), actor=actor, action=action, details=details))

    @workflow.update(name="record_nda_signed")
    def record_nda_signed(self, command: RecordNdaSigned) -> Ack:
        state = self._state
        state.nda_signed_at = workflow.now()
        state.nda_signed_by = command.signed_by
        self._audit(command.actor, "nda_signed", signed_by=command.signed_by)
        self._email(
            EmailKind.NDA_RECORDED,
            {
                **self._facts(),
                "signed_by": command.signed_by,
                "signed_at": _iso(state.nda_signed_at),
                "engineer_count": len(state.engineers),
            },
        )
        self._enter(Phase.ONBOARDING, actor=command.actor, reason=f"NDA signed by {command.signed_by}")
        return self._ack("NDA recorded as signed; onboarding begins")

    @record_nda_signed.validator
    def _validate_nda(self, command: RecordNdaSigned) -> None:
        self._require_phase(Phase.AWAITING_NDA)

    @workflow.update(name="add_engineer")
    def add_engineer(self, command: AddEngineer) -> Ack:
        spec = command.engineer
        existing = self._state.engineer(str(spec.email))
        engineer = EngineerState(
            spec=spec,
            check=CheckStatus.PENDING if spec.production_access else CheckStatus.NOT_REQUIRED,
            announcements=[Announcement(kind="added", role=spec.role)],
            requested_by=command.actor,
        )
        if existing is not None:  # a removed engineer who comes back starts afresh
            self._state.engineers.remove(existing)
            engineer.scim_user_id = existing.scim_user_id
        self._state.engineers.append(engineer)
        self._audit(command.actor, "engineer_added", engineer=engineer.email, role=spec.role)
        return self._ack(f"{spec.email} added as {spec.role}; onboarding follows")

    @add_engineer.validator
    def _validate_add(self, command: AddEngineer) -> None:
        self._require_phase(Phase.ONBOARDING, Phase.DELIVERY)
        spec = command.engineer
        existing = self._state.engineer(str(spec.email))
        if existing is not None and not existing.removed:
            raise ApplicationError(f"{spec.email} is already on this engagement", type="DuplicateEngineer")
        self._validate_role(spec.role, spec.production_access)

    def _validate_role(self, role: str, production_access: bool) -> None:
        policy = self._spec.roles.get(role)
        if policy is None:
            raise ApplicationError(
                f"unknown role {role!r} (known: {', '.join(sorted(self._spec.roles))})", type="UnknownRole"
            )
        if production_access and not policy.production:
            raise ApplicationError(f"role {role!r} grants no production access", type="UnknownRole")

    @workflow.update(name="remove_engineer")
    def remove_engineer(self, command: RemoveEngineer) -> Ack:
        engineer = self._require_engineer(str(command.email))
        engineer.removed = True
        engineer.announcements.append(Announcement(kind="removed", role=engineer.spec.role))
        engineer.requested_by = command.actor
        self._audit(command.actor, "engineer_removed", engineer=engineer.email)
        return self._ack(f"{command.email} removed; every grant is being revoked")

    @remove_engineer.validator
    def _validate_remove(self, command: RemoveEngineer) -> None:
        self._require_phase(Phase.ONBOARDING, Phase.DELIVERY, Phase.NOTICE)
        self._require_engineer(str(command.email))

    @workflow.update(name="change_role")
    def change_role(self, command: ChangeRole) -> Ack:
        engineer = self._require_engineer(str(command.email))
        production = engineer.spec.production_access if command.production_access is None else command.production_access
        engineer.spec = engineer.spec.model_copy(update={"role": command.role, "production_access": production})
        if production and engineer.check in (CheckStatus.NOT_REQUIRED, CheckStatus.CANCELLED):
            engineer.check = CheckStatus.PENDING
        engineer.announcements.append(Announcement(kind="role_changed", role=command.role))
        engineer.requested_by = command.actor
        self._audit(command.actor, "role_changed", engineer=engineer.email, role=command.role)
        return self._ack(f"{command.email} is now {command.role}; grants follow the new role")

    @change_role.validator
    def _validate_change_role(self, command: ChangeRole) -> None:
        self._require_phase(Phase.ONBOARDING, Phase.DELIVERY, Phase.NOTICE)
        engineer = self._require_engineer(str(command.email))
        production = engineer.spec.production_access if command.production_access is None else command.production_access
        self._validate_role(command.role, production)
        if engineer.check is CheckStatus.FAILED and production:
            raise ApplicationError(f"{command.email} failed the background check", type="CheckFailed")
        if command.role == engineer.spec.role and production == engineer.spec.production_access:
            raise ApplicationError(f"{command.email} already has role {command.role}", type="NoChange")

    @workflow.update(name="record_check_result")
    async def record_check_result(self, command: RecordCheckResult) -> Ack:
        engineer = self._require_engineer(str(command.email))
        assert engineer.check_workflow_id is not None
        await workflow.get_external_workflow_handle(engineer.check_workflow_id).signal(
            BackgroundCheckWorkflow.record_result, command
        )
        return self._ack(f"check result for {command.email} recorded: {command.outcome}")

    @record_check_result.validator
    def _validate_check_result(self, command: RecordCheckResult) -> None:
        self._require_phase(Phase.ONBOARDING, Phase.DELIVERY, Phase.NOTICE)
        engineer = self._require_engineer(str(command.email))
        if engineer.check is not CheckStatus.IN_PROGRESS:
            raise ApplicationError(
                f"{command.email} has no background check in progress (check: {engineer.check.value})",
                type="NoCheckInProgress",
            )

    @workflow.signal(name="background_check_completed")
    def background_check_completed(self, result: CheckCompleted) -> None:
        engineer = self._state.engineer(result.email)
        if engineer is None or engineer.check_workflow_id != result.check_workflow_id:
            workflow.logger.warning("ignoring a result from a check that is no longer current: %s", result)
            return
        if engineer.check is not CheckStatus.IN_PROGRESS:
            return
        engineer.check = CheckStatus.CLEARED if result.outcome == "cleared" else CheckStatus.FAILED
        engineer.checks_performed = result.checks
        engineer.announcements.append(Announcement(kind="check_result", role=engineer.spec.role))
        engineer.requested_by = f"background-check ({engineer.check.value})"
        self._audit(
            "background-check", "check_completed", engineer=engineer.email, outcome=result.outcome, notes=result.notes
        )
        self._events += 1

    @workflow.update(name="give_notice")
    def give_notice(self, command: GiveNotice) -> Ack:
        state = self._state
        now = workflow.now()
        state.notice = Notice(given_by=command.given_by, given_at=now, actor=command.actor, reason=command.reason)
        state.end_date = now + self._spec.notice_period
        state.transition_ends_at = state.end_date + self._spec.transition_window
        self._audit(command.actor, "notice_given", given_by=command.given_by, end_date=state.end_date.isoformat())
        self._email(
            EmailKind.NOTICE_RECEIVED,
            {
                **self._facts(),
                "given_by": command.given_by,
                "notice_date": _iso(now),
                "documents": ", ".join(d.value.replace("_", " ") for d in KnowledgeTransferDocument),
            },
        )
        self._enter(Phase.NOTICE, actor=command.actor, reason=f"notice given by the {command.given_by}")
        return self._ack(f"notice recorded; the engagement ends {_fmt(state.end_date)}")

    @give_notice.validator
    def _validate_notice(self, command: GiveNotice) -> None:
        self._require_phase(Phase.ONBOARDING, Phase.DELIVERY)

    @workflow.update(name="move_end_date")
    def move_end_date(self, command: MoveEndDate) -> Ack:
        state = self._state
        previous = state.end_date
        state.end_date = command.end_date
        state.transition_ends_at = command.end_date + self._spec.transition_window
        self._audit(
            command.actor,
            "end_date_moved",
            previous=previous.isoformat() if previous else None,
            end_date=command.end_date.isoformat(),
        )
        self._email(
            EmailKind.END_DATE_MOVED,
            {
                **self._facts(),
                "previous_end_date": _iso(previous),
                "reason_note": f" ({command.reason})" if command.reason else "",
            },
        )
        return self._ack(f"the end date is now {_fmt(command.end_date)}")

    @move_end_date.validator
    def _validate_move(self, command: MoveEndDate) -> None:
        self._require_phase(Phase.NOTICE)
        if command.end_date.tzinfo is None:
            raise ApplicationError("end_date needs a time zone (e.g. 2027-03-01T17:00:00Z)", type="InvalidDate")
        if command.end_date <= workflow.now():
            raise ApplicationError(
                f"the end date cannot move into the past (now {_fmt(workflow.now())})", type="InvalidDate"
            )

    @workflow.update(name="record_document")
    def record_document(self, command: RecordDocument) -> Ack:
        state = self._state
        state.documents = [d for d in state.documents if d.name is not command.document]
        state.documents.append(
            DocumentRecord(
                name=command.document,
                location=command.location,
                delivered_at=workflow.now(),
                delivered_by=command.actor,
            )
        )
        self._queue(RecordEffect(what="document", key=command.document.value, at=workflow.now(), actor=command.actor))
        return self._ack(f"{command.document.value} recorded as delivered")

    @record_document.validator
    def _validate_document(self, command: RecordDocument) -> None:
        self._require_phase(Phase.NOTICE, Phase.TRANSITION)

    @workflow.update(name="schedule_session")
    def schedule_session(self, command: ScheduleSession) -> Ack:
        session = HandoverSession(
            session_id=command.session_id, title=command.title, starts_at=command.starts_at, duration=command.duration
        )
        self._state.sessions.append(session)
        self._queue(RecordEffect(what="session", key=session.session_id, at=workflow.now(), actor=command.actor))
        self._email(EmailKind.SESSION_INVITE, self._session_facts(session))
        return self._ack(f"session {session.session_id} scheduled for {_fmt(session.starts_at)}; invites sent")

    @schedule_session.validator
    def _validate_schedule(self, command: ScheduleSession) -> None:
        self._require_phase(Phase.NOTICE)
        if any(s.session_id == command.session_id for s in self._state.sessions):
            raise ApplicationError(f"session {command.session_id} already exists", type="DuplicateSession")
        if command.starts_at.tzinfo is None or command.starts_at <= workflow.now():
            raise ApplicationError("a session must start in the future, with a time zone", type="InvalidDate")
        if command.duration <= timedelta(0):
            raise ApplicationError("a session needs a positive duration", type="InvalidDuration")

    @workflow.update(name="record_session_held")
    def record_session_held(self, command: RecordSessionHeld) -> Ack:
        session = next(s for s in self._state.sessions if s.session_id == command.session_id)
        session.status = "held"
        session.held_at = workflow.now()
        session.notes = command.notes
        self._queue(RecordEffect(what="session", key=session.session_id, at=workflow.now(), actor=command.actor))
        return self._ack(f"session {session.session_id} recorded as held")

    @record_session_held.validator
    def _validate_held(self, command: RecordSessionHeld) -> None:
        self._require_phase(Phase.NOTICE, Phase.TRANSITION)
        session = next((s for s in self._state.sessions if s.session_id == command.session_id), None)
        if session is None:
            raise ApplicationError(f"no session {command.session_id}", type="UnknownSession")
        if session.status != "scheduled":
            raise ApplicationError(f"session {command.session_id} is already {session.status}", type="NoChange")

    @workflow.update(name="ask_question")
    def ask_question(self, command: AskQuestion) -> Ack:
        question = Question(
            question_id=command.question_id, text=command.text, asked_by=command.actor, asked_at=workflow.now()
        )
        self._state.questions.append(question)
        self._queue(RecordEffect(what="question", key=question.question_id, at=workflow.now(), actor=command.actor))
        return self._ack(f"question {question.question_id} recorded")

    @ask_question.validator
    def _validate_ask(self, command: AskQuestion) -> None:
        self._require_phase(Phase.TRANSITION)
        if any(q.question_id == command.question_id for q in self._state.questions):
            raise ApplicationError(f"question {command.question_id} already exists", type="DuplicateQuestion")

    @workflow.update(name="answer_question")
    def answer_question(self, command: AnswerQuestion) -> Ack:
        question = next(q for q in self._state.questions if q.question_id == command.question_id)
        question.answer = command.answer
        question.answered_by = command.actor
        question.answered_at = workflow.now()
        self._queue(RecordEffect(what="question", key=question.question_id, at=workflow.now(), actor=command.actor))
        return self._ack(f"question {question.question_id} answered")

    @answer_question.validator
    def _validate_answer(self, command: AnswerQuestion) -> None:
        self._require_phase(Phase.TRANSITION)
        question = next((q for q in self._state.questions if q.question_id == command.question_id), None)
        if question is None:
            raise ApplicationError(f"no question {command.question_id}", type="UnknownQuestion")
        if question.answer is not None:
            raise ApplicationError(f"question {command.question_id} is already answered", type="NoChange")

    @workflow.update(name="request_access_review")
    def request_access_review(self, command: RequestAccessReview) -> Ack:
        self._state.access_review_requested = True
        self._audit(command.actor, "access_review_requested")
        return self._ack("access review requested")

    @request_access_review.validator
    def _validate_review(self, command: RequestAccessReview) -> None:
        self._require_phase(Phase.DELIVERY)

    @workflow.update(name="cancel_engagement")
    def cancel_engagement(self, command: CancelEngagement) -> Ack:
        self._cancel(actor=command.actor, reason=command.reason)
        return self._ack("engagement cancelled; any access is being revoked")

    @cancel_engagement.validator
    def _validate_cancel(self, command: CancelEngagement) -> None:
        self._require_phase(Phase.AWAITING_NDA, Phase.ONBOARDING)

    def _cancel(self, *, actor: str, reason: str) -> None:
        self._state.cancelled_reason = reason
        self._email(EmailKind.CANCELLATION, {**self._facts(), "reason": reason})
        self._enter(Phase.CANCELLED, actor=actor, reason=reason)

    @workflow.update(name="revoke_access_now")
    def revoke_access_now(self, command: RevokeAccessNow) -> Ack:
        """The emergency brake: revoke now, in any phase, one engineer or everyone."""
        state = self._state
        if command.email is None:
            state.access_suspended = True
            targets = state.engineers
        else:
            targets = [self._require_engineer(str(command.email))]
            targets[0].suspended = True
        for engineer in targets:
            engineer.requested_by = command.actor
        affected = [e.email for e in targets]
        previous = state.emergency.emails if state.emergency else []
        state.emergency = EmergencyRevocation(
            actor=command.actor,
            reason=command.reason,
            requested_at=workflow.now(),
            emails=sorted(set(previous) | set(affected)),
        )
        self._audit(command.actor, "emergency_revocation", engineers=affected, reason=command.reason)
        who = "every engineer" if command.email is None else str(command.email)
        return self._ack(f"revoking {who}'s access now; the client is told once the IAM confirms it")

    @revoke_access_now.validator
    def _validate_revoke_now(self, command: RevokeAccessNow) -> None:
        self._require_phase(Phase.AWAITING_NDA, Phase.ONBOARDING, Phase.DELIVERY, Phase.NOTICE, Phase.TRANSITION)
        if command.email is not None:
            self._require_engineer(str(command.email))

    @workflow.update(name="restore_access")
    def restore_access(self, command: RestoreAccess) -> Ack:
        state = self._state
        targets = state.engineers if command.email is None else [self._require_engineer(str(command.email))]
        if command.email is None:
            state.access_suspended = False
        for engineer in targets:
            engineer.suspended = False
            engineer.requested_by = command.actor
        self._audit(command.actor, "access_restored", engineer=str(command.email) if command.email else "all")
        return self._ack("access restored to the policy")

    @restore_access.validator
    def _validate_restore(self, command: RestoreAccess) -> None:
        self._require_phase(Phase.ONBOARDING, Phase.DELIVERY, Phase.NOTICE)
        state = self._state
        if command.email is None:
            if not state.access_suspended and not any(e.suspended for e in state.engineers):
                raise ApplicationError("no access is suspended", type="NoChange")
        else:
            engineer = self._require_engineer(str(command.email))
            if state.access_suspended:
                raise ApplicationError(
                    "every engineer's access is suspended: restore the engagement first", type="NoChange"
                )
            if not engineer.suspended:
                raise ApplicationError(f"{command.email}'s access is not suspended", type="NoChange")

    @workflow.update(name="reschedule_session")
    def reschedule_session(self, command: RescheduleSession) -> Ack:
        session = next(s for s in self._state.sessions if s.session_id == command.session_id)
        session.starts_at = command.starts_at
        session.duration = command.duration or session.duration
        session.sequence += 1
        self._queue(RecordEffect(what="session", key=session.session_id, at=workflow.now(), actor=command.actor))
        self._email(EmailKind.SESSION_RESCHEDULED, self._session_facts(session))
        return self._ack(f"session {session.session_id} moved to {_fmt(session.starts_at)}; updated invites sent")

    @reschedule_session.validator
    def _validate_reschedule(self, command: RescheduleSession) -> None:
        self._require_phase(Phase.NOTICE)
        self._require_scheduled_session(command.session_id)
        if command.starts_at.tzinfo is None or command.starts_at <= workflow.now():
            raise ApplicationError("a session must start in the future, with a time zone", type="InvalidDate")
        if command.duration is not None and command.duration <= timedelta(0):
            raise ApplicationError("a session needs a positive duration", type="InvalidDuration")

    @workflow.update(name="cancel_session")
    def cancel_session(self, command: CancelSession) -> Ack:
        session = next(s for s in self._state.sessions if s.session_id == command.session_id)
        session.status = "cancelled"
        session.sequence += 1
        session.notes = command.reason
        self._queue(RecordEffect(what="session", key=session.session_id, at=workflow.now(), actor=command.actor))
        self._email(EmailKind.SESSION_CANCELLED, {**self._session_facts(session), "reason": command.reason or ""})
        return self._ack(f"session {session.session_id} cancelled; cancellations sent")

    @cancel_session.validator
    def _validate_cancel_session(self, command: CancelSession) -> None:
        self._require_phase(Phase.NOTICE)
        self._require_scheduled_session(command.session_id)

    def _require_scheduled_session(self, session_id: str) -> HandoverSession:
        session = next((s for s in self._state.sessions if s.session_id == session_id), None)
        if session is None:
            raise ApplicationError(f"no session {session_id}", type="UnknownSession")
        if session.status != "scheduled":
            raise ApplicationError(f"session {session_id} is already {session.status}", type="NoChange")
        return session

    def _session_facts(self, session: HandoverSession) -> dict[str, Any]:
        return {
            **self._facts(),
            "title": session.title,
            "starts_at": _iso(session.starts_at),
            "duration_minutes": int(session.duration.total_seconds() // 60),
            "session_uid": f"{self._id}/{session.session_id}",
            "session_sequence": session.sequence,
        }

    @workflow.signal(name="email_delivery_problem")
    def email_delivery_problem(self, problem: DeliveryProblem) -> None:
        """SendGrid says an email will not arrive: show it in status (duplicates are ignored)."""
        if any(p.message_key == problem.message_key for p in self._state.delivery_problems):
            return
        self._state.delivery_problems.append(problem)
        self._audit("sendgrid", "email_delivery_problem", **problem.model_dump(mode="json"))
        self._events += 1

    # ================================================================ the status query

    @workflow.query(name="status")
    def status(self) -> StatusView:
        state = self._state
        delivered = {d.name: d for d in state.documents}
        return StatusView(
            contract_id=self._spec.contract_id,
            client=self._spec.client.name,
            engagement_type=self._spec.engagement_type.value,
            phase=state.phase,
            timeline=Timeline(
                contract_signed_at=state.contract_signed_at,
                nda_signed_at=state.nda_signed_at,
                notice_given_at=state.notice.given_at if state.notice else None,
                end_date=state.end_date,
                transition_ends_at=state.transition_ends_at,
                closed_at=state.closed_at,
            ),
            engineers=[
                EngineerView(
                    name=e.spec.name,
                    email=e.email,
                    role=e.spec.role,
                    production_access=e.spec.production_access,
                    check=e.check,
                    removed=e.removed,
                    suspended=e.suspended,
                    identity_active=e.identity_active,
                    groups=e.groups,
                )
                for e in state.engineers
            ],
            documents=[
                DocumentView(
                    name=name,
                    delivered_at=delivered[name].delivered_at if name in delivered else None,
                    location=delivered[name].location if name in delivered else None,
                )
                for name in KnowledgeTransferDocument
            ],
            sessions=state.sessions,
            questions=state.questions,
            next_deadline=self._next_deadline(),
            cancelled_reason=state.cancelled_reason,
            revocation=state.revocation,
            last_access_review_at=state.last_access_review_at,
            access_suspended=state.access_suspended,
            delivery_problems=state.delivery_problems,
            pending_effects=len(state.effects),
            settled=self._settled(),
            runs=state.runs,
        )

    def _settled(self) -> bool:
        """Nothing decided is still waiting: no queued effect, every identity matches its plan."""
        state = self._state
        return (
            not state.effects
            and state.emergency is None
            and not state.access_review_requested
            and all(
                not e.announcements
                and not e.reconcile_requested
                and is_in_step(self._plan(e), e)
                and not (e.check is CheckStatus.PENDING and state.phase in ACCESS_PHASES)
                for e in state.engineers
            )
        )

    def _next_deadline(self) -> Deadline | None:
        state = self._state
        if state.phase is Phase.AWAITING_NDA:
            return Deadline(label="NDA deadline", at=state.contract_signed_at + self._spec.nda_deadline)
        if state.phase is Phase.DELIVERY and state.next_access_review_at:
            return Deadline(label="next access review", at=state.next_access_review_at)
        if state.phase is Phase.NOTICE and state.end_date:
            return Deadline(label="end date: all access revoked", at=state.end_date)
        if state.phase is Phase.TRANSITION and state.transition_ends_at:
            return Deadline(label="transition window closes", at=state.transition_ends_at)
        return None

    def _summary(self) -> EngagementSummary:
        state = self._state
        return EngagementSummary(
            contract_id=self._spec.contract_id,
            phase=state.phase,
            closed_at=state.closed_at,
            engineers=len(state.engineers),
            documents_delivered=len(state.documents),
            sessions_held=sum(1 for s in state.sessions if s.status == "held"),
            questions_answered=sum(1 for q in state.questions if q.answer),
            remaining_grants=sum(len(e.groups) for e in state.engineers),
            active_identities=sum(1 for e in state.engineers if e.identity_active),
            runs=state.runs,
        )
