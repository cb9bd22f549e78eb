"""A decision in progress, and the typed refusals a decision may raise.

Every decision is a plain function over a ``Change``: it reads the spec, the state and the time,
changes the state and queues the side effects (emails, audit entries, records) that follow. The
workflow runs it; the unit tests run it without any server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from domain.effects import AlertEffect, AuditEffect, Effect, EmailEffect, EngineerEffect, PhaseEffect, RecordEffect
from domain.email_facts import EmailFacts
from domain.email_kinds import Recipient, recipients
from domain.spec import EngagementSpec
from domain.state import EngagementState, EngineerState, HandoverSession, Question
from domain.vocabulary import Phase


class Refusal(Exception):
    """A command that is not accepted, with the reason; the class name is the refusal's type."""

    @property
    def type(self) -> str:
        return type(self).__name__

    @property
    def message(self) -> str:
        return str(self)


class IllegalInPhase(Refusal): ...


class UnknownEngineer(Refusal): ...


class DuplicateEngineer(Refusal): ...


class UnknownRole(Refusal): ...


class CheckFailed(Refusal): ...


class NoCheckInProgress(Refusal): ...


class InvalidDate(Refusal): ...


class InvalidDuration(Refusal): ...


class InvalidValue(Refusal): ...


class DuplicateSession(Refusal): ...


class UnknownSession(Refusal): ...


class DuplicateQuestion(Refusal): ...


class UnknownQuestion(Refusal): ...


class NoChange(Refusal): ...


class UnknownEffect(Refusal): ...


class LimitReached(Refusal):
    """The engagement holds as much of something as it may (``domain.decisions.capacity``)."""


class ContinuingAsNew(Refusal):
    """The workflow's run is full and about to continue as new: nothing was applied; send the command
    again and the next run takes it (``adapters.updates.execute`` does)."""


class Unexpected(Refusal):
    """A decision failed in a way no rule foresaw: refused, and nothing changed."""


SYSTEM = "engagement-workflow"
"""The actor of what the workflow decides by itself (timers, the end date)."""


@dataclass
class Change:
    spec: EngagementSpec
    state: EngagementState
    now: datetime
    engagement_id: str
    strict: bool = True
    """The rules of engagements started since the lanes patch (session bounds, checks closed on
    removal); an engagement started earlier replays with the rules it was decided by."""
    actor_source: str | None = None
    """How the sender of the command being decided is known (recorded with its audit entries)."""
    queued: list[Effect] = field(default_factory=list)
    """What this decision queued, in order (also appended to the state's queue)."""

    # ---------------------------------------------------------------- effects

    def queue(self, effect: Effect) -> None:
        self.state.effects_queued += 1
        effect.id = self.state.effects_queued
        self.state.effects.append(effect)
        self.queued.append(effect)

    def alert(self, kind: str, message: str, **details: Any) -> None:
        """An admin alert, in its own lane: it never waits behind a failing effect."""
        self.state.effects_queued += 1
        alert = AlertEffect(id=self.state.effects_queued, at=self.now, kind=kind, message=message, details=details)
        self.state.alerts.append(alert)

    def email(self, facts: EmailFacts, to: list[Recipient] | None = None) -> None:
        kind = facts.kind
        occurrence = self.state.email_occurrences.get(kind, 0) + 1
        self.state.email_occurrences[kind] = occurrence
        self.queue(
            EmailEffect(
                kind=kind,
                step=kind.value,
                occurrence=occurrence,
                recipients=to if to is not None else recipients(kind, self.spec),
                facts=facts.as_dict(),
            )
        )

    def audit(self, actor: str, action: str, **details: Any) -> None:
        if self.actor_source is not None:
            details = {**details, "actor_source": self.actor_source}
        self.queue(AuditEffect(at=self.now, actor=actor, action=action, details=details))

    def enter(self, phase: Phase, *, actor: str, reason: str) -> None:
        self.state.phase = phase
        self.queue(PhaseEffect(phase=phase, at=self.now, actor=actor, reason=reason))

    def record(self, what: Literal["document", "session", "question"], key: str, actor: str) -> None:
        self.queue(RecordEffect(what=what, key=key, at=self.now, actor=actor))

    def engineer_record(self, engineer: EngineerState, actor: str, action: str) -> None:
        self.queue(EngineerEffect(email=engineer.email, at=self.now, actor=actor, action=action))

    # ---------------------------------------------------------------- lookups that refuse

    def require_phase(self, phases: frozenset[Phase]) -> None:
        if self.state.phase not in phases:
            allowed = ", ".join(p.value for p in Phase if p in phases)
            raise IllegalInPhase(f"not allowed in phase {self.state.phase.value} (allowed in: {allowed})")

    def require_engineer(self, email: str) -> EngineerState:
        engineer = self.state.engineer(email)
        if engineer is None or engineer.removed:
            raise UnknownEngineer(f"no engineer {email} on this engagement")
        return engineer

    def require_role(self, role: str, production_access: bool) -> None:
        policy = self.spec.roles.get(role)
        if policy is None:
            raise UnknownRole(f"unknown role {role!r} (known: {', '.join(sorted(self.spec.roles))})")
        if production_access and not policy.production:
            raise UnknownRole(f"role {role!r} grants no production access")

    def require_session(self, session_id: str) -> HandoverSession:
        session = next((s for s in self.state.sessions if s.session_id == session_id), None)
        if session is None:
            raise UnknownSession(f"no session {session_id}")
        return session

    def require_scheduled_session(self, session_id: str) -> HandoverSession:
        session = self.require_session(session_id)
        if session.status != "scheduled":
            raise NoChange(f"session {session_id} is already {session.status}")
        return session

    def require_question(self, question_id: str) -> Question:
        question = next((q for q in self.state.questions if q.question_id == question_id), None)
        if question is None:
            raise UnknownQuestion(f"no question {question_id}")
        return question


def fmt(moment: datetime | None) -> str:
    """A moment in an acknowledgement: short, in UTC."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "not set"
