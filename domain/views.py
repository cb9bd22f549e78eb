"""What the status query answers: the engagement as an admin or a manager reads it."""

from __future__ import annotations

import zlib
from datetime import datetime

from pydantic import Field

from domain.access import is_in_step, plan_engineer
from domain.effects import describe
from domain.spec import EngagementSpec
from domain.state import (
    CertificationEntry,
    DeliveryProblem,
    EngagementState,
    HandoverSession,
    Question,
    RevocationEvidence,
)
from domain.vocabulary import ACCESS_PHASES, CheckStatus, KnowledgeTransferDocument, Model, Phase, describe_duration


class Deadline(Model):
    label: str
    at: datetime


class EngineerView(Model):
    name: str
    email: str
    role: str
    production_access: bool
    check: CheckStatus
    removed: bool
    suspended: bool = False
    suspended_for: str | None = None
    """Why (``emergency`` or ``access certification``), while suspended."""
    identity_active: bool
    groups: list[str]


class DocumentView(Model):
    name: KnowledgeTransferDocument
    delivered_at: datetime | None
    location: str | None


class Timeline(Model):
    contract_signed_at: datetime
    nda_signed_at: datetime | None
    notice_given_at: datetime | None
    end_date: datetime | None
    transition_ends_at: datetime | None
    closed_at: datetime | None


class ParkedView(Model):
    effect_id: int
    what: str
    """The effect in an admin's words (no personal data)."""
    parked_at: datetime
    last_error: str
    times_parked: int
    retry_at: datetime


STATUS_MEMO = "status"
"""The memo key under which an engagement's run keeps its status view (``status-memo`` runs)."""
STATUS_MEMO_BOUND = 8 * 1024
"""The most bytes the packed view may take. Temporal fails a workflow whose memo passes its limit
(32 KB by default, 40 KB on Temporal Cloud), so a larger view is not kept: `status` asks the worker."""


class StatusView(Model):
    contract_id: str
    client: str
    engagement_type: str
    phase: Phase
    timeline: Timeline
    engineers: list[EngineerView]
    documents: list[DocumentView]
    sessions: list[HandoverSession]
    questions: list[Question]
    next_deadline: Deadline | None
    cancelled_reason: str | None
    revocation: RevocationEvidence | None
    last_access_review_at: datetime | None = None
    access_suspended: bool = False
    delivery_problems: list[DeliveryProblem] = Field(default_factory=list)
    pending_effects: int
    """Side effects decided and not yet performed."""
    parked_effects: list[ParkedView] = Field(default_factory=list)
    """Side effects set aside after failing past the bound: retried later, or by an operator."""
    settled: bool = False
    """No effect pending and every identity in the IAM matches the plan."""
    runs: int


class EngagementSummary(Model):
    contract_id: str
    phase: Phase
    closed_at: datetime | None
    engineers: int
    documents_delivered: int
    sessions_held: int
    questions_answered: int
    remaining_grants: int
    active_identities: int
    runs: int


class CertificationView(Model):
    """The open access certification round, as the certification page shows it (query ``certification``)."""

    open: bool
    round: int = 0
    due_at: datetime | None = None
    client: str
    contract_id: str
    iam_owner_name: str
    iam_owner_email: str
    """The person the signed link was sent to: the actor of the decisions sent through it."""
    engineers: list[CertificationEntry] = Field(default_factory=list)


def certification_view(spec: EngagementSpec, state: EngagementState) -> CertificationView:
    owner = spec.client.contacts.iam_owner
    view = CertificationView(
        open=False,
        client=spec.client.name,
        contract_id=spec.contract_id,
        iam_owner_name=owner.name,
        iam_owner_email=str(owner.email),
    )
    current = state.certification
    if current is None or state.phase not in (Phase.DELIVERY, Phase.NOTICE):
        return view
    return view.model_copy(
        update={"open": True, "round": current.round, "due_at": current.due_at, "engineers": current.engineers}
    )


def settled(spec: EngagementSpec, state: EngagementState) -> bool:
    """Nothing decided is still waiting: no queued effect, every identity matches its plan."""
    return (
        not state.effects
        and not state.parked
        and not state.alerts
        and not state.checks_to_cancel
        and state.emergency is None
        and not state.access_review_requested
        and all(
            not e.announcements
            and not e.reconcile_requested
            and not (e.check_result_sent and e.check is CheckStatus.IN_PROGRESS)
            and is_in_step(plan_engineer(spec.roles, e, state.phase, all_suspended=state.access_suspended), e)
            and not (e.check is CheckStatus.PENDING and state.phase in ACCESS_PHASES)
            for e in state.engineers
        )
    )


def next_deadline(spec: EngagementSpec, state: EngagementState) -> Deadline | None:
    if state.phase is Phase.AWAITING_NDA:
        return Deadline(label="NDA deadline", at=state.contract_signed_at + spec.nda_deadline)
    due = state.certification.due_at if state.certification is not None else None
    if due is not None:
        review, end = state.next_access_review_at, state.end_date
        if (state.phase is Phase.DELIVERY and (review is None or due < review)) or (
            state.phase is Phase.NOTICE and end is not None and due < end
        ):
            return Deadline(label="access certification due", at=due)
    if state.phase is Phase.DELIVERY and state.next_access_review_at:
        return Deadline(label="next access review", at=state.next_access_review_at)
    if state.phase is Phase.NOTICE and state.end_date:
        return Deadline(label="end date: all access revoked", at=state.end_date)
    if state.phase is Phase.TRANSITION and state.transition_ends_at:
        return Deadline(label="transition window closes", at=state.transition_ends_at)
    return None


def status_view(spec: EngagementSpec, state: EngagementState) -> StatusView:
    delivered = {d.name: d for d in state.documents}
    return StatusView(
        contract_id=spec.contract_id,
        client=spec.client.name,
        engagement_type=spec.engagement_type.value,
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
                suspended_for=(e.suspended_for or "emergency") if e.suspended else None,
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
        next_deadline=next_deadline(spec, state),
        cancelled_reason=state.cancelled_reason,
        revocation=state.revocation,
        last_access_review_at=state.last_access_review_at,
        access_suspended=state.access_suspended,
        delivery_problems=state.delivery_problems,
        pending_effects=len(state.effects),
        parked_effects=[
            ParkedView(
                effect_id=p.effect.id,
                what=describe(p.effect),
                parked_at=p.parked_at,
                last_error=p.last_error,
                times_parked=p.times_parked,
                retry_at=p.retry_at,
            )
            for p in state.parked
        ],
        settled=settled(spec, state),
        runs=state.runs,
    )


def summary(spec: EngagementSpec, state: EngagementState) -> EngagementSummary:
    return EngagementSummary(
        contract_id=spec.contract_id,
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


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def _moment_line(name: str, moment: datetime | None) -> str:
    """A line of the status's timeline: the name, then the moment in a column of its own."""
    return f"  {name:<17} {_when(moment)}"


def format_status(view: StatusView) -> str:
    t = view.timeline
    state = "settled" if view.settled else f"converging ({view.pending_effects} step(s) pending)"
    lines = [
        f"{view.contract_id} · {view.client} · {view.engagement_type.replace('_', ' ')}",
        f"phase: {view.phase.value}" + (f" ({view.cancelled_reason})" if view.cancelled_reason else ""),
        f"state: {state}" + (" · ALL ACCESS SUSPENDED (emergency)" if view.access_suspended else ""),
        "",
        "timeline",
        *(
            _moment_line(name, at)
            for name, at in (
                ("contract signed", t.contract_signed_at),
                ("NDA signed", t.nda_signed_at),
                ("notice given", t.notice_given_at),
                ("end date", t.end_date),
                ("transition ends", t.transition_ends_at),
                ("closed", t.closed_at),
            )
        ),
    ]
    if view.next_deadline:
        lines.append(_moment_line("next deadline", view.next_deadline.at) + f"  {view.next_deadline.label}")
    if view.last_access_review_at:
        lines.append(_moment_line("last access review", view.last_access_review_at))
    lines += ["", "engineers"]
    for e in view.engineers:
        state = "removed" if e.removed else ("active" if e.identity_active else "no active identity")
        state += f", suspended ({e.suspended_for})" if e.suspended else ""
        groups = ", ".join(e.groups) or "no groups"
        lines.append(f"  {e.name} <{e.email}> {e.role}, check {e.check.value}, {state}: {groups}")
    lines += ["", "knowledge transfer"]
    for d in view.documents:
        lines.append(f"  {d.name.value:<30} {'delivered ' + _when(d.delivered_at) if d.delivered_at else 'missing'}")
    lines += ["", "handover sessions"]
    lines += [f"  {s.session_id}: {s.title} at {_when(s.starts_at)} ({s.status})" for s in view.sessions] or ["  none"]
    if view.delivery_problems:
        lines += ["", "emails that will not arrive"]
        lines += [
            f"  {p.kind} to {p.recipient}: {p.event} ({p.reason or 'no reason given'})" for p in view.delivery_problems
        ]
    if view.parked_effects:
        lines += ["", "parked side effects (retry-effect / drop-effect)"]
        lines += [
            f"  #{p.effect_id} {p.what}: parked {_when(p.parked_at)}, next try {_when(p.retry_at)} · {p.last_error}"
            for p in view.parked_effects
        ]
    lines += ["", "questions"]
    lines += [f"  {q.question_id}: {'answered' if q.answer else 'open'} · {q.text}" for q in view.questions] or [
        "  none"
    ]
    return "\n".join(lines)


def needs_attention(state: EngagementState) -> bool:
    """Something a person must look at: a parked side effect, an email that will not arrive, an
    IAM change not yet confirmed, or an alert still to be recorded."""
    return bool(state.parked or state.delivery_problems or state.alerts)


def current_details(spec: EngagementSpec, state: EngagementState) -> str:
    """What the Temporal UI shows on the engagement's page (markdown; no personal data)."""
    deadline = next_deadline(spec, state)
    active = [e for e in state.engineers if e.identity_active]
    lines = [
        f"**{state.phase.value.replace('_', ' ')}** · {spec.engagement_type.value.replace('_', ' ')}",
        f"- next: {deadline.label} at {_when(deadline.at)}" if deadline else "- next: nothing scheduled",
        f"- end date: {_when(state.end_date)}; transition until {_when(state.transition_ends_at)}",
        f"- access: {len(active)} of {len(state.current_engineers())} engineers active, "
        f"{sum(len(e.groups) for e in state.engineers)} group memberships"
        + (" · **all suspended (emergency)**" if state.access_suspended else ""),
        f"- handover: {len(state.documents)} of 5 documents, "
        f"{sum(1 for s in state.sessions if s.status == 'held')} of {len(state.sessions)} sessions held",
        f"- open questions: {sum(1 for q in state.questions if q.answer is None)}",
        f"- side effects: {len(state.effects)} queued, {len(state.parked)} parked",
        f"- notice {describe_duration(spec.notice_period)}, transition {describe_duration(spec.transition_window)}",
    ]
    if needs_attention(state):
        lines.insert(1, "- ⚠ **needs attention** (see `status`, `alerts`)")
    return "\n".join(lines)


def pack_status(view_json: str) -> bytes | None:
    """The view (its JSON) as the memo keeps it, zlib-packed: a few hundred bytes for most
    engagements, under Temporal's 2 KB memo warning once encrypted; None when even packed it passes
    the bound."""
    packed = zlib.compress(view_json.encode(), 6)
    return packed if len(packed) <= STATUS_MEMO_BOUND else None


def unpack_status(packed: bytes) -> StatusView | None:
    """The view a memo keeps; None for anything that is not one (or that unpacks past 4 MB)."""
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(packed, 4 * 1024 * 1024)
        if inflate.unconsumed_tail or inflate.unused_data or not inflate.eof:
            return None
        return StatusView.model_validate_json(data)
    except (zlib.error, ValueError):
        return None
