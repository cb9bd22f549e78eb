"""How the engagement workflow performs a queued side effect: one activity per effect, with the
retry policy of the system it touches, or (``batched-records`` runs) a run of records in one activity.
Orchestration only: the effects were decided elsewhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, NamedTuple, TypedDict

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities import payloads as p
    from activities.email import EmailActivities, EmailRequest
    from activities.engagement import EngagementActivities
    from domain.effects import (
        AuditEffect,
        Effect,
        EmailEffect,
        EngagementRecordEffect,
        EngineerEffect,
        LedgerEffect,
        PhaseEffect,
        RecordEffect,
        describe,
    )
    from domain.spec import EngagementSpec
    from domain.state import EngagementState


class ActivityOptions(TypedDict):
    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy


STORAGE = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
)
"""Writes to our own database: retried quickly, for as long as it takes."""
IAM = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=2)),
)
"""The client's IAM: retried through outages with backoff, never given up on (revocation must land)."""
EMAIL = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=30),
    retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=5)),
)
"""A send is bounded by the mail client's own timeout (SENDGRID_TIMEOUT_SECONDS) and two statements:
an attempt lost with its worker is retried after 30 s, not a minute, and the lane behind it waits no longer."""


def bounded(options: ActivityOptions, bound: timedelta | None, summary: str | None = None) -> dict[str, Any]:
    """The options of a side effect that gives up (and is parked) once it has failed for ``bound``,
    named in the UI by ``summary`` (engagements with lanes only: earlier runs replay as they ran)."""
    if bound is None:
        return dict(options)
    start_to_close = min(options["start_to_close_timeout"], bound)
    return {**options, "start_to_close_timeout": start_to_close, "schedule_to_close_timeout": bound, "summary": summary}


class _Step(NamedTuple):
    """The activity that performs one effect, its input, and the options of the system it touches."""

    activity: Callable[..., Awaitable[Any]]
    arg: Any
    options: ActivityOptions = STORAGE
    takes_bound: bool = True
    """False for the one step that has always run without the engagement's bound (a document record)."""


BATCH_MAX = 20
"""``batched-records`` runs: how many queued records one activity writes at the most."""


def batch_at_head(effects: list[Effect]) -> list[Effect]:
    """The records at the head of the queue that one activity writes: consecutive, each with an id (an
    effect queued before ids is keyed by its activity, so it keeps an activity of its own), no email."""
    batch: list[Effect] = []
    for effect in effects[:BATCH_MAX]:
        if isinstance(effect, EmailEffect) or not effect.id:
            break
        batch.append(effect)
    return batch


async def perform(
    engagement_id: str,
    state: EngagementState,
    spec: EngagementSpec,
    effect: Effect,
    bound: timedelta | None = None,
    *,
    cancellable: bool = False,
) -> None:
    """Perform one effect; with a ``bound`` it fails (ActivityError) once it has kept failing that long.

    ``cancellable`` (the ``burst-bound`` runs): a cancellation waits until the attempt in flight has
    ended, so the effect is either done (the activity completed) or not, never half-known, before the
    next run performs it again."""
    step = _step(engagement_id, state, spec, effect)
    options = bounded(step.options, bound, describe(effect)) if step.takes_bound else dict(step.options)
    if cancellable:
        options["cancellation_type"] = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
    await workflow.execute_activity_method(step.activity, step.arg, **options)


async def perform_all(
    engagement_id: str,
    state: EngagementState,
    spec: EngagementSpec,
    effects: list[Effect],
    bound: timedelta | None,
    *,
    cancellable: bool,
) -> int:
    """Perform one effect, or write several queued records in one activity, in order; how many were
    done. A batch fails (ActivityError once it has failed for ``bound``) only when its first record
    cannot be written: a later one that fails ends the batch early, and is the head of the next."""
    if len(effects) == 1:
        await perform(engagement_id, state, spec, effects[0], bound, cancellable=cancellable)
        return 1
    steps = [_step(engagement_id, state, spec, effect) for effect in effects]
    batch = p.RecordBatch(records=[p.RecordStep.of(step.arg) for step in steps])
    summary = f"{len(effects)} records, from {describe(effects[0])}"
    options = bounded(STORAGE, bound, summary)
    if cancellable:
        options["cancellation_type"] = ActivityCancellationType.WAIT_CANCELLATION_COMPLETED
    written: p.RecordsWritten = await workflow.execute_activity_method(
        EngagementActivities.record_effects, batch, **options
    )
    return written.written


def _step(engagement_id: str, state: EngagementState, spec: EngagementSpec, effect: Effect) -> _Step:
    """The table from an effect to the activity that performs it."""
    match effect:
        case LedgerEffect():
            return _Step(EngagementActivities.record_access, p.LedgerRecord(engagement_id=engagement_id, entry=effect))
        case EngagementRecordEffect():
            contract = p.RecordEngagementInput(
                engagement_id=engagement_id, effect_id=effect.id, spec=spec, at=effect.at
            )
            return _Step(EngagementActivities.record_engagement, contract)
        case EmailEffect():
            request = EmailRequest(
                engagement_id=engagement_id,
                kind=effect.kind,
                step=effect.step,
                occurrence=effect.occurrence,
                recipients=effect.recipients,
                facts=effect.facts,
            )
            return _Step(EmailActivities.send_email, request, EMAIL)
        case AuditEffect():
            entry = p.AuditInput(
                engagement_id=engagement_id,
                effect_id=effect.id,
                at=effect.at,
                actor=effect.actor,
                action=effect.action,
                details=effect.details,
            )
            return _Step(EngagementActivities.append_audit, entry)
        case PhaseEffect():
            change = p.PhaseChange(
                engagement_id=engagement_id,
                effect_id=effect.id,
                phase=effect.phase,
                at=effect.at,
                actor=effect.actor,
                reason=effect.reason,
                nda_signed_at=state.nda_signed_at,
                notice_given_at=state.notice.given_at if state.notice else None,
                end_date=state.end_date,
                closed_at=state.closed_at,
            )
            return _Step(EngagementActivities.record_phase, change)
        case EngineerEffect():
            engineer = state.engineer(effect.email)
            assert engineer is not None
            record = p.EngineerRecord(
                engagement_id=engagement_id,
                effect_id=effect.id,
                engineer=engineer,
                at=effect.at,
                actor=effect.actor,
                action=effect.action,
            )
            return _Step(EngagementActivities.save_engineer, record)
        case RecordEffect(what="document"):
            document = next(d for d in state.documents if d.name.value == effect.key)
            delivered = p.DocumentInput(engagement_id=engagement_id, effect_id=effect.id, record=document)
            return _Step(EngagementActivities.save_document, delivered, takes_bound=False)
        case RecordEffect(what="session"):
            session = next(s for s in state.sessions if s.session_id == effect.key)
            held = p.SessionInput(
                engagement_id=engagement_id, effect_id=effect.id, session=session, actor=effect.actor, at=effect.at
            )
            return _Step(EngagementActivities.save_session, held)
        case RecordEffect():
            question = next(q for q in state.questions if q.question_id == effect.key)
            asked = p.QuestionInput(
                engagement_id=engagement_id, effect_id=effect.id, question=question, actor=effect.actor, at=effect.at
            )
            return _Step(EngagementActivities.save_question, asked)
